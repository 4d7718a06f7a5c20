"""Figures of a report: per-class accuracy against training class size (figure_per_class.py), accuracy by
attribute (here), and IFL's environments (figure_environments.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from glt.evaluation.protocols import PROTOCOLS
from glt.report.figure_environments import environment_records, environment_stats
from glt.report.figure_per_class import SPLIT_TITLES, per_class_accuracy

__all__ = ["attribute_accuracy", "draw_attribute_accuracy", "environment_records", "environment_stats",
           "per_class_accuracy"]


def _by_method(runs):
    out: dict[str, list[dict]] = {}
    for _, r in runs:
        out.setdefault(r["method"], []).append(r)
    return out


def draw_attribute_accuracy(runs) -> Figure:
    """Accuracy per attribute (group), mean over seeds, one bar group per method and protocol."""
    protocols = [p for p in PROTOCOLS if any(p in r for _, r in runs)]
    methods = _by_method(runs)
    fig = Figure(figsize=(5 * max(1, len(protocols)), 4), layout="constrained")
    axes = fig.subplots(1, max(1, len(protocols)), squeeze=False)
    for ax, p in zip(axes[0], protocols):
        track, test_split = PROTOCOLS[p]
        width = 0.8 / max(1, len(methods))
        for i, (method, rs) in enumerate(methods.items()):
            rs = [r for r in rs if p in r and "by_attribute" in r[p]]
            if not rs:
                continue
            keys = list(rs[0][p]["by_attribute"])
            acc = np.nanmean(np.array([[r[p]["by_attribute"][k]["accuracy"] for k in keys] for r in rs], dtype=float), axis=0)
            x = np.arange(len(keys)) + i * width
            ax.bar(x, acc, width, label=method if ax is axes[0][0] else None, color=f"C{i}")
            ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, [f"attribute {k}" for k in keys])
        ax.set_ylabel("accuracy")
        ax.set_xlabel("attribute (0 = the head attribute of its class)")
        ax.set_title(f"{p}: trained on {SPLIT_TITLES[track + '/train']}, tested on "
                     f"{SPLIT_TITLES.get(test_split, test_split)}", fontsize=10)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    if methods:
        fig.legend(loc="outside upper center", ncol=min(len(methods), 6), fontsize=8, title="method")
    return fig


def attribute_accuracy(runs, path: Path) -> Path:
    fig = draw_attribute_accuracy(runs)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path
