"""A small aligned text table of a split's metrics, for people (`glt score --summary`); programs read the JSON."""

from __future__ import annotations

import math

HEADLINE = ("accuracy", "precision", "f1", "worst_class_accuracy", "worst_attribute_accuracy", "worst_group_accuracy",
            "top5_accuracy", "expected_calibration_error")
GROUP_COLUMNS = ("accuracy", "precision", "f1", "num_samples")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def summary_table(metrics: dict, title: str = "") -> str:
    """The headline numbers, then by_frequency and by_attribute as one row per group ('-' for an empty
    group or a number the input cannot give)."""
    lines = [title] if title else []
    head = [[key, _cell(metrics[key])] for key in HEADLINE if key in metrics]
    for key in ("num_samples", "num_groups", "top_k", "score_kind"):
        if key in metrics:
            head.append([key, str(metrics[key])])
    lines += _table([["metric", "value"], *head])
    for breakdown in ("by_frequency", "by_attribute"):
        groups = metrics.get(breakdown)
        if groups:
            rows = [[breakdown, *GROUP_COLUMNS]]
            rows += [[name, *(_cell(m.get(c)) for c in GROUP_COLUMNS)] for name, m in groups.items()]
            lines += ["", *_table(rows)]
    return "\n".join(lines) + "\n"
