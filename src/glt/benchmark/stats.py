"""Statistics of any benchmark directory: class and attribute counts per split, the imbalance of each,
and the figures a reader expects.

`write_statistics(root)` writes into the benchmark directory:
    stats.json                        every number below, per split
    stats.md                          the same as tables
    figures/class_distribution.png    images per class label, one line per split, one panel per track
    figures/attribute_distribution.png   index benchmarks: attribute shares per split;
                                      multilabel ones: the normalised attribute-vector histogram per split
`write_example_grid(root)` adds figures/examples.png: a few images per attribute for a few classes.

Class imbalance is the largest / smallest class count over the classes present in the split.
Attribute imbalance is given three ways: `attribute_imbalance` (largest / smallest count of the scalar
attribute, null when a value is absent), `attribute_std` (population std of the normalised histogram of
the scalar attribute) and `intra_class_attribute_std` (the same std inside each class, averaged over
the classes present: ~0 for Test-GBL, large for long-tailed splits). Multilabel benchmarks add the
histogram of the binary attribute vectors (`attribute_histogram`, A bins) and its normalised std
(`attribute_histogram_std`, the number the MSCOCO-GLT paper quotes, docs/coco.md: lower for Test-GBL than for Train-GLT).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from glt.benchmark.directory import Benchmark
from glt.benchmark.manifest import FREQUENCY_GROUPS
from glt.benchmark.split import SplitTable
from glt.io import atomic_path, write_json, write_text

FIGURES = "figures"


# ---- numbers ------------------------------------------------------------------------------------
def _normalised_std(hist: np.ndarray) -> float | None:
    total = hist.sum()
    return float(np.std(hist / total)) if total > 0 else None


def _ratio(counts: np.ndarray) -> float | None:
    counts = np.asarray(counts)
    return float(counts.max() / counts.min()) if len(counts) and counts.min() > 0 else None


def _per_class_sum(label: np.ndarray, rows: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, B) sums of the rows of each class (vectorised: one sort and one reduceat)."""
    counts = np.bincount(label, minlength=num_classes)
    out = np.zeros((num_classes, rows.shape[1]), dtype=np.float64)
    present = counts > 0
    if present.any():
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
        out[present] = np.add.reduceat(rows[np.argsort(label, kind="stable")], starts, axis=0, dtype=np.int64)
    return out


def _intra_class_std(per_class: np.ndarray) -> float | None:
    """Mean over the classes present of the std of the class's normalised attribute histogram."""
    totals = per_class.sum(axis=1)
    present = totals > 0
    if not present.any():
        return None
    return float(np.std(per_class[present] / totals[present, None], axis=1).mean())


def split_statistics(table: SplitTable, num_classes: int, num_attributes: int, multilabel: bool) -> dict:
    class_counts = table.class_counts(num_classes)
    attr_counts = np.bincount(table.attribute.astype(np.int64), minlength=num_attributes)[:num_attributes]
    freq = np.bincount(table.frequency.astype(np.int64), minlength=3)[:3]
    attr = np.clip(table.attribute.astype(np.int64), 0, num_attributes - 1)
    per_class = np.bincount(table.label * num_attributes + attr, minlength=num_classes * num_attributes)
    out = {
        "size": len(table),
        "classes_present": int((class_counts > 0).sum()),
        "class_counts": class_counts.tolist(),
        "class_imbalance": _ratio(class_counts[class_counts > 0]),  # over the classes present
        "frequency_counts": dict(zip(FREQUENCY_GROUPS, freq.tolist())),
        "attribute_counts": attr_counts.tolist(),
        "attribute_imbalance": _ratio(attr_counts),
        "attribute_std": _normalised_std(attr_counts),
        "intra_class_attribute_std": _intra_class_std(per_class.reshape(num_classes, num_attributes)),
    }
    if multilabel and table.attributes is not None:
        vec = table.attributes  # uint8 (N, A): sums are taken in int64
        hist = vec.sum(axis=0, dtype=np.int64)
        out["attribute_histogram"] = hist.tolist()
        out["attribute_histogram_std"] = _normalised_std(hist)
        out["intra_class_attribute_histogram_std"] = _intra_class_std(_per_class_sum(table.label, vec, num_classes))
    return out


def benchmark_statistics(bench: Benchmark) -> dict:
    m = bench.manifest
    multilabel = m.attribute_kind == "multilabel"
    return {
        "name": m.name,
        "num_classes": m.num_classes,
        "attribute_kind": m.attribute_kind,
        "num_attributes": m.num_attributes,
        "attribute_vector_length": m.attribute_vector_length,
        "splits": {
            name: split_statistics(bench.split(name), m.num_classes, m.num_attributes, multilabel)
            for name in m.split_names
        },
    }


# ---- report ---------------------------------------------------------------------------------------
def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def statistics_markdown(stats: dict) -> str:
    multilabel = stats["attribute_kind"] == "multilabel"
    lines = [
        f"# {stats['name']}: statistics",
        "",
        f"{stats['num_classes']} classes; attributes: {stats['attribute_kind']} "
        f"({stats['num_attributes']} {'groups' if multilabel else 'values'}"
        + (f", vectors of {stats['attribute_vector_length']}" if multilabel else "")
        + "). Imbalance = largest / smallest count; std = population std of the normalised histogram "
        "(intra-class: inside each class, averaged over classes).",
        "",
        "| split | images | classes | class imbalance | many / medium / few | attribute counts "
        "| attribute imbalance | attribute std | intra-class attribute std |"
        + (" attribute-vector histogram std |" if multilabel else ""),
        "|---|---:|---:|---:|---|---|---:|---:|---:|" + ("---:|" if multilabel else ""),
    ]
    for name, s in stats["splits"].items():
        freq = " / ".join(str(v) for v in s["frequency_counts"].values())
        row = (
            f"| {name} | {s['size']} | {s['classes_present']} | {_fmt(s['class_imbalance'])} | {freq} "
            f"| {', '.join(map(str, s['attribute_counts']))} | {_fmt(s['attribute_imbalance'])} "
            f"| {_fmt(s['attribute_std'])} | {_fmt(s['intra_class_attribute_std'])} |"
        )
        if multilabel:
            row += f" {_fmt(s.get('attribute_histogram_std'))} |"
        lines.append(row)
    lines += ["", "Figures: `figures/class_distribution.png`, `figures/attribute_distribution.png`"
              + (", `figures/examples.png`." if stats.get("examples") else "."), ""]
    return "\n".join(lines)


def _tracks(split_names: list[str]) -> dict[str, list[str]]:
    tracks: dict[str, list[str]] = {}
    for name in split_names:
        tracks.setdefault(name.split("/")[0], []).append(name)
    return tracks


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})


SPLIT_ORDER = ("train", "val", "test_glt", "test_cbl", "test_gbl")  # one colour and marker per split kind
SPLIT_LABELS = {"train": "Train", "val": "Val", "test_glt": "Test-GLT", "test_cbl": "Test-CBL", "test_gbl": "Test-GBL"}


def plot_class_distribution(stats: dict, path: Path) -> None:
    _save(draw_class_distribution(stats), path)


def draw_class_distribution(stats: dict):
    """Images per class of every split, a panel per track. The y axis is linear from 0 to 1 and logarithmic
    above (symlog), so a class with no image in a split is drawn at a marked 0, not left off a log axis."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    tracks = _tracks(list(stats["splits"]))
    fig = Figure(figsize=(8.5, 3.4 * len(tracks)), layout="constrained")
    axes = fig.subplots(len(tracks), 1, squeeze=False)[:, 0]
    for ax, (track, names) in zip(axes, tracks.items()):
        drawn: dict[str, np.ndarray] = {}
        top = 1.0
        for name in names:
            split = name.split("/")[1]
            k = SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER) + len(drawn)
            counts = np.asarray(stats["splits"][name]["class_counts"], dtype=np.float64)
            x = np.arange(len(counts))
            label = SPLIT_LABELS.get(split, split) + (f"-{track.upper()}" if split == "train" else "")
            same = [n for n, c in drawn.items() if np.array_equal(c, counts)]
            if same:  # identical counts would hide this line: a hollow, larger marker and a note
                label += f" (= {same[0]})"
            ax.plot(x, counts, marker="osDv^"[k % 5], ms=8 if same else 4, mfc="none" if same else None,
                    lw=1, color=f"C{k}", label=label)
            zero = counts == 0
            if zero.any():  # a class missing from the split
                ax.plot(x[zero], counts[zero], ls="none", marker="x", ms=9, mew=2, color=f"C{k}", clip_on=False)
            drawn[label] = counts
            top = max(top, float(counts.max(initial=0)))
        ax.set_yscale("symlog", linthresh=1, linscale=0.4)
        ax.set_ylim(0, top * 2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.axhspan(0, 1, color="0.93", zorder=0)  # the linear band that holds the zeros
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("class label (0 = largest class of Train-GLT)")
        ax.set_ylabel("images of the class\n(0, then log scale)")
        ax.set_title(f"track {track}: images per class in each split (x at 0: no image)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="split", title_fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_attribute_distribution(stats: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    tracks = _tracks(list(stats["splits"]))
    multilabel = stats["attribute_kind"] == "multilabel"
    fig = Figure(figsize=(7, 3.2 * len(tracks)), layout="constrained")
    axes = fig.subplots(len(tracks), 1, squeeze=False)[:, 0]
    for ax, (track, names) in zip(axes, tracks.items()):
        if multilabel and all("attribute_histogram" in stats["splits"][n] for n in names):
            ref = np.asarray(stats["splits"][names[0]]["attribute_histogram"], dtype=np.float64)
            order = np.argsort(-ref, kind="stable")
            for name in names:
                s = stats["splits"][name]
                h = np.asarray(s["attribute_histogram"], dtype=np.float64)
                share = h / h.sum() if h.sum() else h
                ax.plot(share[order], label=f"{name.split('/')[1]} (std {_fmt(s['attribute_histogram_std'], 3)})")
            ax.set_xlabel(f"attribute (sorted by {names[0].split('/')[1]} frequency)")
            ax.set_ylabel("share of attribute occurrences")
        else:
            A = stats["num_attributes"]
            width = 0.8 / A
            x = np.arange(len(names))
            for a in range(A):
                share = []
                for name in names:
                    c = np.asarray(stats["splits"][name]["attribute_counts"], dtype=np.float64)
                    share.append(c[a] / c.sum() if c.sum() else 0.0)
                ax.bar(x + (a - (A - 1) / 2) * width, share, width, label=f"attribute {a}")
            ax.set_xticks(x, [n.split("/")[1] for n in names])
            ax.set_ylabel("share of images")
        ax.set_title(f"track {track}: attribute distribution")
        ax.legend(fontsize=8)
    _save(fig, path)


def write_statistics(root: str | os.PathLike) -> dict:
    """Compute the statistics of the benchmark at `root`; write stats.json, stats.md and figures/*.png
    into it. Returns the statistics (the content of stats.json)."""
    root = Path(root)
    bench = Benchmark(root)
    stats = benchmark_statistics(bench)
    stats["examples"] = (root / FIGURES / "examples.png").is_file()
    write_json(root / "stats.json", stats)
    write_text(root / "stats.md", statistics_markdown(stats))
    plot_class_distribution(stats, root / FIGURES / "class_distribution.png")
    plot_attribute_distribution(stats, root / FIGURES / "attribute_distribution.png")
    return stats


# ---- example images ---------------------------------------------------------------------------------
def _thumbnail(path: Path, size: int) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.fit(im.convert("RGB"), (size, size)))
    except (OSError, ValueError, SyntaxError):
        return np.full((size, size, 3), 200, dtype=np.uint8)  # missing / unreadable: a grey cell


def write_example_grid(
    root: str | os.PathLike,
    path: str | os.PathLike | None = None,
    split: str | None = None,
    classes: list[int] | None = None,
    num_classes: int = 3,
    per_attribute: int = 6,
    thumb: int = 64,
) -> Path:
    """A grid of example images: for a few classes (default: head, middle and tail labels present in the
    split), one row per attribute value (scalar attribute / group) holding the first `per_attribute`
    images of that class and attribute in split order. Written to `path` (default
    ROOT/figures/examples.png); returns the path."""
    from matplotlib.figure import Figure

    bench = Benchmark(root)
    m = bench.manifest
    split = split or ("glt/train" if bench.has_split("glt/train") else m.split_names[0])
    table = bench.split(split)
    if classes is None:
        present = np.unique(table.label)
        pick = np.linspace(0, len(present) - 1, min(num_classes, len(present))).round().astype(int)
        classes = sorted({int(present[i]) for i in pick})
    rows = [(c, a) for c in classes for a in range(m.num_attributes)]
    # one mosaic in one axes: far cheaper to lay out than an axes per image
    pad = 4
    cell = thumb + pad
    mosaic = np.full((max(len(rows), 1) * cell, per_attribute * cell, 3), 255, dtype=np.uint8)
    labels = []
    for r, (c, a) in enumerate(rows):
        members = np.flatnonzero((table.label == c) & (table.attribute == a))
        for j, i in enumerate(members[:per_attribute]):
            y, x = r * cell + pad // 2, j * cell + pad // 2
            mosaic[y : y + thumb, x : x + thumb] = _thumbnail(bench.image_path(str(table.path[i])), thumb)
        labels.append(f"{m.classes[c][:24]} / attribute {a} ({len(members)})")
    fig = Figure(figsize=(per_attribute * 0.8 + 2.4, max(len(rows), 1) * 0.8 + 0.5))
    ax = fig.add_axes((0.3, 0.02, 0.68, 0.9))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks(np.arange(len(rows)) * cell + cell / 2, labels, fontsize=7)
    ax.set_xticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title(f"{m.name}: example images per attribute ({split})", fontsize=9)
    out = Path(path) if path else Path(root) / FIGURES / "examples.png"
    _save(fig, out)
    return out
