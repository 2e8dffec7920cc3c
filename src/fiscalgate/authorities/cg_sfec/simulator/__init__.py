"""A second, independent reading of the SFEC spec: imports only fiscalgate.simkit and libraries."""
