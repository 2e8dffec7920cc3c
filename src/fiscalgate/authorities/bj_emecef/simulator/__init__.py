"""A faithful simulator of the DGI Bénin e-MCF API v1.0 (a second, independent reading of the spec:
nothing here imports the client side of this package or fiscalgate.core)."""
