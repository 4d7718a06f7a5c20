"""Small helpers on nested dicts (config tables), light enough for the start-up path of the CLI."""

from __future__ import annotations

import copy


def deep_update(base: dict, other: dict) -> dict:
    """Update `base` in place with `other`, merging nested dicts key by key (values are copied); returns `base`."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base
