"""Simulator-side infrastructure shared by the authority simulators (fault injection, serving).

Nothing here knows any authority's rules: each simulator reads its spec on its own.
"""
