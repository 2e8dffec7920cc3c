"""Bénin DGI e-MECeF (e-MCF API v1.0): the two-step certification, its tax engine and a simulator."""
