"""The per-class accuracy figure of a report: for each protocol, the accuracy of every class on the
protocol's test split (top) above the number of images the class had in the protocol's training split
(bottom: Train-GLT for CLT and GLT, Train-CBL for ALT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from glt.evaluation.protocols import PROTOCOLS

# what the reader sees for a split name
SPLIT_TITLES = {"glt/train": "Train-GLT", "cbl/train": "Train-CBL", "glt/test_cbl": "Test-CBL",
                "glt/test_gbl": "Test-GBL", "cbl/test_gbl": "Test-GBL", "cbl/test_cbl": "Test-CBL",
                "glt/test_glt": "Test-GLT"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
MAX_NAMED_CLASSES = 30  # above this, tick labels would overlap: the axis shows the class rank instead


def _by_method(runs) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for _, r in runs:
        out.setdefault(r["method"], []).append(r)
    return out


def class_names(runs, num_classes: int) -> list[str] | None:
    """The class names in label order, from the manifest of the first run's benchmark (None if unreadable)."""
    for _, r in runs:
        try:
            names = json.loads((Path(r["benchmark"]) / "manifest.json").read_text())["classes"]
        except (KeyError, OSError, ValueError, TypeError):
            continue
        if len(names) == num_classes:
            return [str(n) for n in names]
    return None


def _train_counts(runs, track: str) -> np.ndarray | None:
    for _, r in runs:
        counts = r.get("train_class_counts", {}).get(track)
        if counts is not None:
            return np.asarray(counts, dtype=float)
    return None


def draw_per_class_accuracy(runs) -> Figure:
    """The figure (not saved). Mean over seeds per class, with the std as an error bar when a method has
    several seeds; one marker shape and colour per method, side by side inside each class's slot."""
    protocols = [p for p in PROTOCOLS if any(p in r for _, r in runs)]
    methods = _by_method(runs)
    num_classes = max((len(r[p]["per_class"]["accuracy"]) for _, r in runs for p in protocols if p in r), default=0)
    names = class_names(runs, num_classes) if num_classes <= MAX_NAMED_CLASSES else None
    panel_width = max(5.0, 0.42 * num_classes + 1.5) if names else 5.5
    fig = Figure(figsize=(panel_width * max(1, len(protocols)), 6.2), layout="constrained")
    axes = fig.subplots(2, max(1, len(protocols)), squeeze=False, sharex="col", height_ratios=(2.2, 1))
    x = np.arange(num_classes)
    slot = 0.7 / max(1, len(methods))  # each method's offset inside a class's slot
    small = num_classes > MAX_NAMED_CLASSES
    labelled: set[str] = set()  # one legend entry per method, from the first panel that has it
    for col, p in enumerate(protocols):
        track, test_split = PROTOCOLS[p]
        train_name = SPLIT_TITLES[f"{track}/train"]
        ax, cnt = axes[0][col], axes[1][col]
        for i, (method, rs) in enumerate(methods.items()):
            rs = [r for r in rs if p in r]
            if not rs:
                continue
            acc = np.array([r[p]["per_class"]["accuracy"] for r in rs], dtype=float)
            mean = np.nanmean(acc, axis=0)
            std = np.nanstd(acc, axis=0) if len(rs) > 1 and not small else None  # bars would hide many classes
            off = 0.0 if small else (i - (len(methods) - 1) / 2) * slot
            ax.errorbar(x[: len(mean)] + off, mean, yerr=std, ls="none", marker=MARKERS[i % len(MARKERS)],
                        ms=2.5 if small else 5, color=f"C{i}", capsize=0 if small else 2, alpha=0.7 if small else 1,
                        label=None if method in labelled else f"{method} ({len(rs)} seed{'s' if len(rs) > 1 else ''})")
            labelled.add(method)
        ax.set_title(f"{p}: trained on {train_name}, tested on {SPLIT_TITLES.get(test_split, test_split)}"
                     f" ({test_split})", fontsize=10)
        ax.set_ylabel("accuracy of the class")
        ax.set_ylim(top=1.015)  # room for a marker at 1.0, no tick above it
        ax.grid(axis="y", alpha=0.3)
        if not small:  # mark each class's slot, so a marker is read against its own class only
            for k in range(1, num_classes):
                ax.axvline(k - 0.5, color="0.85", lw=0.8, zorder=0)
        counts = _train_counts(runs, track)
        if counts is not None:
            cnt.bar(np.arange(len(counts)), counts, width=0.8, color="0.6")
            if counts.min() > 0 and counts.max() / counts.min() > 30:  # a long tail reads better on a log axis
                cnt.set_yscale("log")
                cnt.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            cnt.set_ylabel(f"{train_name} images")
            cnt.set_title(f"training images per class ({train_name}, {track}/train)", fontsize=9)
            cnt.grid(axis="y", alpha=0.3)
        if names:
            cnt.set_xticks(x, names, rotation=45 if num_classes > 8 else 0, ha="right" if num_classes > 8 else "center")
            cnt.set_xlabel("class (label order: largest Train-GLT class first)")
        else:
            cnt.xaxis.set_major_locator(MaxNLocator(integer=True))
            cnt.set_xlabel("class rank (label; 0 = largest class of Train-GLT)")
        cnt.set_xlim(-0.6, num_classes - 0.4)
    if methods:
        fig.legend(loc="outside upper center", ncol=min(len(methods), 6), fontsize=8, title="method")
    return fig


def per_class_accuracy(runs, path: Path) -> Path:
    """Draw the figure of `draw_per_class_accuracy` into `path` (PNG)."""
    fig = draw_per_class_accuracy(runs)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path
