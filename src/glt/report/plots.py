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
    """Per-class accuracy (mean over seeds) against the class rank (label 0 = the largest class of
    Train-GLT), one panel per protocol; the Train-GLT class sizes are drawn on a second axis."""
    protocols = [p for p in PROTOCOLS if any(p in r for _, r in runs)]
    fig, axes = plt.subplots(1, len(protocols), figsize=(5 * len(protocols), 4), squeeze=False)
    for ax, p in zip(axes[0], protocols):
        sizes = None
        for method, rs in _by_method(runs).items():
            rs = [r for r in rs if p in r]
            if not rs:
                continue
            acc = np.nanmean(np.array([r[p]["per_class"]["accuracy"] for r in rs], dtype=float), axis=0)
            ax.plot(np.arange(len(acc)), acc, marker="o", ms=3, label=method)
            sizes = rs[0].get("train_class_counts", {}).get("glt", sizes)
        if sizes is not None:
            twin = ax.twinx()
            twin.bar(np.arange(len(sizes)), sizes, color="grey", alpha=0.15)
            twin.set_yscale("log")
            twin.set_ylabel("Train-GLT images of the class", color="grey")
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
        ax.set_xlabel("class rank (0 = largest in Train-GLT)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{p}: per-class accuracy")
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


def environment_records(run_folder: Path, track: str = "glt") -> list[dict]:
    """The IFL environment statistics logged at each rebuild of a run (empty for other methods)."""
    path = Path(run_folder) / track / "metrics.jsonl"
    if not path.is_file():
        return []
    import json

    return [rec["ifl_environments"] for rec in map(json.loads, path.read_text().splitlines()) if "ifl_environments" in rec]


def environment_stats(runs, path: Path) -> Path | None:
    """For the first run of each IFL-style method: per rebuild, each environment's effective size, class
    imbalance and attribute shares (the rare attributes' share should grow in the built environments)."""
    picked = {}
    for folder, r in runs:
        recs = environment_records(folder)
        if recs and r["method"] not in picked:
            picked[r["method"]] = recs
    if not picked:
        return None
    fig, axes = plt.subplots(len(picked), 3, figsize=(13, 3.2 * len(picked)), squeeze=False)
    for row, (method, recs) in zip(axes, picked.items()):
        epochs = [rec["epoch"] for rec in recs]
        num_envs = len(recs[0]["environments"])
        for e in range(num_envs):
            envs = [rec["environments"][e] for rec in recs]
            row[0].plot(epochs, [x["effective_size"] for x in envs], marker="o", label=f"e{e + 1}")
            row[1].plot(epochs, [x["class_imbalance"] for x in envs], marker="o", label=f"e{e + 1}")
            if "attribute_share" in envs[0]:
                shares = np.array([x["attribute_share"] for x in envs])
                for a in range(shares.shape[1]):
                    row[2].plot(epochs, shares[:, a], marker="o", ls=["-", "--", ":"][e % 3], color=f"C{a}",
                                label=f"e{e + 1} attr {a}")
        row[0].set_title(f"{method}: effective sample size")
        row[1].set_title(f"{method}: class imbalance (max/min class mass)")
        row[1].set_yscale("log")
        row[2].set_title(f"{method}: attribute share")
        for ax in row:
            ax.set_xlabel("rebuild after epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
