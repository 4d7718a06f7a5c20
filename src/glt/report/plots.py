"""Figures of a report: per-class accuracy against training class size, accuracy by attribute."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from glt.evaluation import PROTOCOLS  # noqa: E402


def _by_method(runs):
    out: dict[str, list[dict]] = {}
    for _, r in runs:
        out.setdefault(r["method"], []).append(r)
    return out


def per_class_accuracy(runs, path: Path) -> Path:
    """Per-class accuracy (mean over seeds) against the class's training size, one panel per protocol."""
    protocols = [p for p in PROTOCOLS if any(p in r for _, r in runs)]
    fig, axes = plt.subplots(1, len(protocols), figsize=(5 * len(protocols), 4), squeeze=False)
    for ax, p in zip(axes[0], protocols):
        track = PROTOCOLS[p][0]
        for method, rs in _by_method(runs).items():
            rs = [r for r in rs if p in r]
            if not rs:
                continue
            acc = np.nanmean(np.array([r[p]["per_class"]["accuracy"] for r in rs], dtype=float), axis=0)
            size = np.asarray(rs[0]["train_class_counts"][track])
            order = np.argsort(-size, kind="stable")
            ax.plot(size[order], acc[order], marker="o", ms=3, label=method)
        ax.set_xscale("log")
        ax.set_xlabel(f"training images of the class ({track}/train)")
        ax.set_ylabel("accuracy")
        ax.set_title(p)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def attribute_accuracy(runs, path: Path) -> Path:
    """Accuracy per attribute (group), mean over seeds, one bar group per method and protocol."""
    protocols = [p for p in PROTOCOLS if any(p in r for _, r in runs)]
    methods = _by_method(runs)
    fig, axes = plt.subplots(1, len(protocols), figsize=(5 * len(protocols), 4), squeeze=False)
    for ax, p in zip(axes[0], protocols):
        width = 0.8 / max(1, len(methods))
        for i, (method, rs) in enumerate(methods.items()):
            rs = [r for r in rs if p in r and "by_attribute" in r[p]]
            if not rs:
                continue
            keys = list(rs[0][p]["by_attribute"])
            acc = np.nanmean(np.array([[r[p]["by_attribute"][k]["accuracy"] for k in keys] for r in rs], dtype=float), axis=0)
            x = np.arange(len(keys)) + i * width
            ax.bar(x, acc, width, label=method)
            ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, [f"attr {k}" for k in keys])
        ax.set_ylabel("accuracy")
        ax.set_title(f"{p}: accuracy by attribute (0 = head)")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
