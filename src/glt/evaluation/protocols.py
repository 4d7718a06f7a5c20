"""The three GLT protocols (docs/metrics.md, "Protocols"): which training track is scored on which test split."""

from __future__ import annotations

# protocol -> (training track, test split of the same track)
PROTOCOLS: dict[str, tuple[str, str]] = {
    "CLT": ("glt", "glt/test_cbl"),
    "GLT": ("glt", "glt/test_gbl"),
    "ALT": ("cbl", "cbl/test_gbl"),
}
