"""Hyper-parameter search: the search-space types methods declare their ranges with (`space`)."""
