"""fiscalgate: one neutral invoice in, the right tax authority's certification out."""

__version__ = "0.1.0"
