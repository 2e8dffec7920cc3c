"""A simulator of the FNE platform: an independent reading of SOURCES.md.

It imports nothing from the client side of this package nor from fiscalgate.core: it only uses
fiscalgate.simkit and third-party libraries, so contract tests between the two prove something.
"""
