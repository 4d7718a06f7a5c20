"""Build MSCOCO-GLT (docs/coco.md) from COCO 2014 and the COCO-Attributes labels.

  glt build coco --coco-root /data/coco2014 --attributes cocottributes_py3.jbl --trust-pickle --out benchmarks/mscoco-glt

--coco-root holds the COCO 2014 layout: annotations/instances_{train,val}2014.json, train2014/, val2014/.
--attributes is the COCO-Attributes file: the safe .npz written by `glt convert-attributes`, or the authors'
joblib pickle, read only with --trust-pickle (unpickling runs code from the file).

Recipe: classes ranked by object count (label 0 = largest; frequency group by 0-based rank: <=10 many, 11-22
medium, >=23 few); Test-GBL by exact greedy attribute balancing per class; Test-CBL drawn at random per
class from what is left; a training pool per track (glt: exponential profile max * imbalance^(rank/(C-1)),
cbl: every class at the smallest class size), from which Test-GLT (glt only) and Val are drawn i.i.d.; the
rest is the training set. Test sizes T / Val sizes V per class: 200/100 for glt, 100/50 for cbl. Every
object gets its binary attribute vector (column `attributes`) and an attribute group (column `attribute`):
the top / middle / bottom third of its split by the dot product of its normalised vector with the
normalised training histogram of its class.

Every object of the benchmark is cropped from its COCO image (in parallel, resumable: crops are kept in a
cache folder, by default OUT.crops-cache, until the build succeeds). The output holds the benchmark
(manifest + split tables + crops/), original/ (the authors' annotation layout), statistics and figures/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from glt.benchmark import Manifest, SplitTable, write_benchmark
from glt.builders.coco_attributes import CocoAttributes, load_attributes
from glt.builders.coco_gbl import histogram_std, select_gbl
from glt.errors import GLTError
from glt.benchmark.output import build_output

HELP = "MSCOCO-GLT from COCO 2014 + COCO-Attributes (204 real attributes; objects cropped from their images)"
NAME = "mscoco-glt"
COCO_SPLITS = ("train2014", "val2014")  # annotation files and image folders, in this order
# test size T and val size V per class, per track (docs/coco.md, "The recipe")
DEFAULT_SIZES = {"glt": (200, 100), "cbl": (100, 50)}
IMBALANCE = 0.005
# 0-based rank thresholds of the original code (`i <= 10` many, `i <= 22` medium, else few)
MANY_MAX_RANK, MEDIUM_MAX_RANK = 10, 22
CROP_STYLES = ("context", "box")
CROP_FORMATS = {"jpg": "JPEG", "png": "PNG"}
JPEG_QUALITY = 95
CROPS_MARKER = ".glt-crops-cache"  # in a default crop cache glt created: it may remove that folder


def frequency_of_rank(rank: np.ndarray) -> np.ndarray:
    rank = np.asarray(rank)
    return np.where(rank <= MANY_MAX_RANK, 0, np.where(rank <= MEDIUM_MAX_RANK, 1, 2)).astype(np.int8)


# ---- reading COCO ------------------------------------------------------------------------------------


@dataclass
class CocoObjects:
    """The labelled objects, in the order of the attribute file."""

    ids: np.ndarray  # str: patch id
    category_ids: np.ndarray  # int64: COCO category id
    images: np.ndarray  # str: image path relative to the COCO root (train2014/COCO_train2014_....jpg)
    boxes: np.ndarray  # float64 (N, 4): COCO box x, y, w, h
    present: np.ndarray  # uint8 (N, A)
    category_names: dict[int, str]
    attribute_names: list[str]


def _load_instances(path: Path):
    from pycocotools.coco import COCO

    if not path.is_file():
        raise GLTError(f"COCO annotation file not found: {path}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints timings
            return COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GLTError(f"malformed COCO annotation file {path}: {e}") from None
    except (KeyError, TypeError, AssertionError) as e:
        raise GLTError(f"malformed COCO annotation file {path}: missing or bad field {e}") from None


def load_coco_objects(coco_root: str | os.PathLike, attrs: CocoAttributes) -> CocoObjects:
    """Join COCO-Attributes with the COCO 2014 instance annotations (category, image, box of each object)."""
    root = Path(coco_root)
    if not root.is_dir():
        raise GLTError(f"COCO root folder not found: {root}")
    sources = []  # (image folder, annotation file, COCO index), train2014 first
    categories: dict[int, str] = {}
    for split in COCO_SPLITS:
        path = root / "annotations" / f"instances_{split}.json"
        coco = _load_instances(path)
        sources.append((split, path, coco))
        for cid, cat in coco.cats.items():
            categories.setdefault(int(cid), str(cat.get("name", cid)))
    n = len(attrs)
    category_ids = np.empty(n, dtype=np.int64)
    images = np.empty(n, dtype=object)
    boxes = np.empty((n, 4), dtype=np.float64)
    missing = []
    for i, aid in enumerate(attrs.ann_ids.tolist()):
        for split, path, coco in sources:
            ann = coco.anns.get(aid)
            if ann is not None:
                break
        else:
            missing.append(i)
            continue
        img = coco.imgs.get(ann.get("image_id"))
        if img is None or "file_name" not in img:
            raise GLTError(f"COCO annotation file {path}: annotation {aid} refers to an unknown image")
        try:
            category_ids[i] = int(ann["category_id"])
            boxes[i] = [float(x) for x in ann["bbox"]]
        except (KeyError, TypeError, ValueError):
            raise GLTError(f"COCO annotation file {path}: annotation {aid} lacks a valid category_id / bbox") from None
        if category_ids[i] not in categories:
            raise GLTError(f"COCO annotation file {path}: annotation {aid} has unknown category {category_ids[i]}")
        images[i] = f"{split}/{img['file_name']}"
    if missing:
        first = ", ".join(f"patch {attrs.patch_ids[i]} -> annotation {attrs.ann_ids[i]}" for i in missing[:3])
        raise GLTError(
            f"{len(missing)} of {n} COCO-Attributes objects match no annotation in {root / 'annotations'} "
            f"(instances_train2014.json / instances_val2014.json): {first}"
        )
    return CocoObjects(
        ids=attrs.patch_ids,
        category_ids=category_ids,
        images=images,
        boxes=boxes,
        present=attrs.present,
        category_names=categories,
        attribute_names=attrs.attribute_names,
    )


# ---- the splits ---------------------------------------------------------------------------------------


def rank_classes(category_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category ids by object count, largest first (ties: smaller category id first), and the label of
    every object (its category's rank)."""
    cats, inverse, counts = np.unique(category_ids, return_inverse=True, return_counts=True)
    order = np.lexsort((cats, -counts))
    rank_of = np.empty(len(cats), dtype=np.int64)
    rank_of[order] = np.arange(len(cats))
    return cats[order], rank_of[inverse.reshape(-1)]


def _draw(rng: np.random.Generator, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k items drawn uniformly without replacement, and the rest; both keep the order of `items`."""
    take = np.zeros(len(items), dtype=bool)
    take[rng.choice(len(items), size=k, replace=False)] = True
    return items[take], items[~take]


def training_profile(available: np.ndarray, track: str, imbalance: float) -> np.ndarray:
    """Objects per class rank in the training pool (docs/coco.md, "The recipe"), clipped by what is available."""
    c = len(available)
    if track == "cbl":
        return np.full(c, int(available.min()), dtype=np.int64)
    top = int(available.max())
    # the original's float expression, int() truncation included
    want = [int(top * (imbalance ** (r / (c - 1.0)))) if c > 1 else top for r in range(c)]
    return np.minimum(np.array(want, dtype=np.int64), available)


def check_sizes(sizes: dict[str, tuple[int, int]] | None) -> dict[str, tuple[int, int]]:
    """track -> (T, V) per class for both tracks, all >= 1 (None: the published 200/100 and 100/50)."""
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    if set(sizes) != set(DEFAULT_SIZES):
        raise GLTError(f"sizes must give (test, val) for both tracks glt and cbl, got {sorted(sizes)}")
    for track, (t, v) in sizes.items():
        if t < 1 or v < 1:
            raise GLTError(f"track {track}: test and val sizes per class must be >= 1, got {t} / {v}")
    return sizes


def plan_splits(
    labels: np.ndarray,
    present: np.ndarray,
    class_names: list[str],
    sizes: dict[str, tuple[int, int]] | None = None,
    imbalance: float = IMBALANCE,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Row indices of every split (`TRACK/SPLIT` -> indices sorted by label, then input order).

    Each track is carved from all objects independently (as the two annotation files of the original).
    Test-GBL is deterministic and a prefix of a longer greedy run is the shorter run, so the selection is
    computed once with the largest T and each track takes its first T picks.
    """
    sizes = check_sizes(sizes)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = len(class_names)
    rows = [np.flatnonzero(labels == c) for c in range(num_classes)]
    t_max = max(t for t, _ in sizes.values())
    has_attr = np.asarray(present).any(axis=1)
    for c, r in enumerate(rows):
        usable = int(has_attr[r].sum())
        if usable < t_max:
            raise GLTError(
                f"category '{class_names[c]}' has {usable} objects with a present attribute, fewer than the "
                f"{t_max} Test-GBL needs per class (lower --glt-test / --cbl-test)"
            )
    gbl = [
        r[select_gbl(present[r], t_max)]
        for r in tqdm(rows, desc="Test-GBL selection", unit="class", disable=not progress)
    ]
    out: dict[str, np.ndarray] = {}
    for track_index, track in enumerate(DEFAULT_SIZES):
        t, v = sizes[track]
        rng = np.random.default_rng([seed, track_index])
        test_gbl, test_cbl, left = [], [], []
        for c, r in enumerate(rows):
            picked = np.sort(gbl[c][:t])
            test_gbl.append(picked)
            rest = np.setdiff1d(r, picked)
            if len(rest) < t:
                raise GLTError(
                    f"category '{class_names[c]}' has {len(r)} objects, fewer than the {2 * t} that Test-GBL and "
                    f"Test-CBL of track {track} need (lower --{track}-test)"
                )
            chosen, rest = _draw(rng, rest, t)
            test_cbl.append(chosen)
            left.append(rest)
        available = np.array([len(x) for x in left], dtype=np.int64)
        profile = training_profile(available, track, imbalance)
        empty = np.flatnonzero(profile == 0)
        if len(empty):
            raise GLTError(
                f"track {track}: category '{class_names[empty[0]]}' gets no training objects "
                f"(--imbalance {imbalance} on {int(available.max())} objects; raise --imbalance)"
            )
        pool = np.concatenate([_draw(rng, left[c], int(profile[c]))[0] for c in range(num_classes)])
        n_test = t * num_classes if track == "glt" else 0
        n_val = v * num_classes
        if len(pool) <= n_test + n_val:
            raise GLTError(
                f"track {track}: the training pool has {len(pool)} objects, too few for Test-GLT ({n_test}) "
                f"+ Val ({n_val}) and a training set (lower --{track}-test / --{track}-val)"
            )
        test_glt, pool = _draw(rng, pool, n_test)
        val, train = _draw(rng, pool, n_val)
        splits = {"train": train, "val": val}
        splits.update(test_cbl=np.concatenate(test_cbl), test_gbl=np.concatenate(test_gbl))
        if track == "glt":
            splits["test_glt"] = test_glt
        for name in ("train", "val", "test_glt", "test_cbl", "test_gbl"):
            if name in splits:
                idx = splits[name]
                out[f"{track}/{name}"] = idx[np.lexsort((idx, labels[idx]))]
    return out


def class_attribute_counts(labels: np.ndarray, present: np.ndarray, rows: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, A) int64: how many of the objects `rows` of each class have each attribute."""
    counts = np.zeros((num_classes, present.shape[1]), dtype=np.int64)
    y = labels[rows]
    for c in range(num_classes):
        counts[c] = present[rows[y == c]].sum(axis=0, dtype=np.int64)
    return counts


def attribute_groups(
    labels: np.ndarray, present: np.ndarray, split_rows: np.ndarray, train_counts: np.ndarray, chunk: int = 8192
) -> np.ndarray:
    """The attribute groups (docs/coco.md, "The recipe"): score = dot(normalised training histogram of the class, normalised binary vector);
    inside the split, scores above the (n//3)-th largest are group 0, above the (2(n//3))-th group 1, the rest
    group 2 (the original's thresholds). The score is the exact ratio dot(counts, v) / (|counts| |v|) rounded
    once to float (the original added 1e-9 to both norms), so equal scores are equal floats."""
    y = labels[split_rows]
    n = len(split_rows)
    num = np.zeros(n, dtype=np.float64)
    counts = train_counts.astype(np.float64)  # integer sums below 2^53: exact in float64
    for s in range(0, n, chunk):  # in chunks: a (rows, A) float copy of a whole training split is large
        v = present[split_rows[s : s + chunk]].astype(np.float64)
        num[s : s + chunk] = np.einsum("ij,ij->i", v, counts[y[s : s + chunk]])
    den = train_counts.sum(axis=1)[y] * present[split_rows].sum(axis=1, dtype=np.int64)
    score = np.divide(num, den, out=np.zeros(n), where=den > 0)
    groups = np.full(n, 2, dtype=np.int16)
    if n:
        s = np.sort(score)[::-1]
        hi, lo = s[n // 3], s[n // 3 * 2]
        groups[score > lo] = 1
        groups[score > hi] = 0
    return groups


# ---- crops ----------------------------------------------------------------------------------------------


def crop_box(bbox, width: int, height: int, style: str = "context") -> tuple[int, int, int, int]:
    """Integer pixel box (left, top, right, bottom) of an object's crop, inside the image and at least 1 px.

    'box': the COCO box rounded outwards and clipped to the image. 'context' (the original recipe): the box
    widened by 50 px on each side where it is under 100 px, else by 20 % of its size, then clipped (the crop
    is afterwards padded to a square, see `crop_object`)."""
    x, y, w, h = (float(b) for b in bbox)
    if style == "box":
        x0, y0, x1, y1 = x, y, x + w, y + h
    elif style == "context":
        mx = 50.0 if w < 100 else 0.2 * w
        my = 50.0 if h < 100 else 0.2 * h
        x0, y0, x1, y1 = x - mx, y - my, x + w + mx, y + h + my
    else:
        raise ValueError(f"unknown crop style {style}")
    left = min(max(math.floor(x0), 0), width - 1)
    top = min(max(math.floor(y0), 0), height - 1)
    right = max(min(math.ceil(x1), width), left + 1)
    bottom = max(min(math.ceil(y1), height), top + 1)
    return left, top, right, bottom


def crop_object(image: Image.Image, bbox, style: str = "context") -> Image.Image:
    """The object's crop; style 'context' centres it on a black square, as the original padding did
    (the padding is black even where the image would continue)."""
    crop = image.crop(crop_box(bbox, image.width, image.height, style))
    if style == "context" and crop.width != crop.height:
        side = max(crop.size)
        square = Image.new(crop.mode, (side, side))
        square.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
        crop = square
    return crop


def _crop_one_image(task: tuple[str, list[tuple[str, list[float]]], str, str]) -> str | None:
    """Worker: crop every listed object of one source image. Returns an error line or None."""
    src, items, style, fmt = task
    try:
        with Image.open(src) as im:
            im = im.convert("RGB")
            for dest, bbox in items:
                crop = crop_object(im, bbox, style)
                tmp = f"{dest}.tmp"
                # written under a temporary name: a killed build never leaves a truncated crop behind
                if fmt == "JPEG":
                    crop.save(tmp, format=fmt, quality=JPEG_QUALITY)
                else:
                    crop.save(tmp, format=fmt)
                os.replace(tmp, dest)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return f"cannot crop from image {src}: {e}"
    return None


def write_crops(
    objects: CocoObjects,
    rows: np.ndarray,
    coco_root: Path,
    cache: Path,
    style: str = "context",
    fmt: str = "jpg",
    workers: int | None = None,
    progress: bool = False,
) -> dict[int, Path]:
    """Crop the objects `rows` into `cache` (one file per patch id), skipping crops already there.
    Returns row -> crop file."""
    cache.mkdir(parents=True, exist_ok=True)
    files = {int(i): cache / f"{objects.ids[i]}.{fmt}" for i in rows}
    todo = [i for i, f in files.items() if not f.is_file()]
    by_image: dict[str, list[tuple[str, list[float]]]] = {}
    for i in todo:
        by_image.setdefault(objects.images[i], []).append((str(files[i]), objects.boxes[i].tolist()))
    missing = [img for img in by_image if not (coco_root / img).is_file()]
    if missing:
        raise GLTError(f"{len(missing)} COCO images are missing, first: {coco_root / missing[0]}")
    tasks = [(str(coco_root / img), items, style, CROP_FORMATS[fmt]) for img, items in sorted(by_image.items())]
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(32, cpus)
    bar = tqdm(total=len(todo), desc="crop objects", unit="obj", disable=not progress)
    errors = []
    with bar:
        if workers <= 1 or len(tasks) <= 1:
            results = map(_crop_one_image, tasks)
            for task, err in zip(tasks, results):
                errors.append(err)
                bar.update(len(task[1]))
        else:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                for task, err in zip(tasks, ex.map(_crop_one_image, tasks, chunksize=16)):
                    errors.append(err)
                    bar.update(len(task[1]))
    errors = [e for e in errors if e]
    if errors:
        raise GLTError(f"{len(errors)} COCO images could not be cropped, first: {errors[0]}")
    return files


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or no hard links
        shutil.copyfile(src, dst)


# ---- figures --------------------------------------------------------------------------------------------


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same inputs, same bytes


def write_figures(
    root: Path, tables: dict[str, SplitTable], attribute_names: list[str], classes: list[str], distribution: bool = True
) -> None:
    """figures/rare_attribute_examples.png (crops of objects with the rarest attributes of Train-GLT) and, with
    `distribution` (the statistics report draws its own otherwise), figures/attribute_distribution.png
    (normalised attribute histogram per split, attributes ordered by Train-GLT frequency)."""
    train = tables["glt/train"].attributes.sum(axis=0, dtype=np.int64)
    if distribution:
        _plot_distribution(root, tables, train)
    _plot_rare_examples(root, tables, train, attribute_names, classes)


def _plot_distribution(root: Path, tables: dict[str, SplitTable], train: np.ndarray) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = np.argsort(-train, kind="stable")
    tracks = sorted({n.split("/")[0] for n in tables}, key=["glt", "cbl"].index)
    fig = Figure(figsize=(12, 3.5 * len(tracks)))
    FigureCanvasAgg(fig)
    for k, track in enumerate(tracks):
        ax = fig.add_subplot(len(tracks), 1, k + 1)
        for name, table in tables.items():
            if not name.startswith(track + "/"):
                continue
            counts = table.attributes.sum(axis=0, dtype=np.int64)[order]
            total = max(int(counts.sum()), 1)
            ax.plot(counts / total, lw=1, label=f"{name} (std {histogram_std(table.attributes):.4f})")
        ax.set_title(f"track {track}: attribute distribution per split (attributes by Train-GLT frequency)")
        ax.set_xlabel("attribute rank in Train-GLT")
        ax.set_ylabel("share of attribute occurrences")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, root / "figures" / "attribute_distribution.png")


def _plot_rare_examples(
    root: Path, tables: dict[str, SplitTable], train: np.ndarray, attribute_names: list[str], classes: list[str]
) -> None:
    """The rarest attributes of Train-GLT that some object of the benchmark has, a few crops of each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    per_attr, shown, thumb = 4, 6, 96
    everything = SplitTable.concat(list(tables.values()))
    _, first = np.unique(everything.id, return_index=True)
    everything = everything.take(np.sort(first))
    seen = everything.attributes.sum(axis=0) > 0
    rare = [int(j) for j in np.argsort(train, kind="stable") if seen[j]][:shown]
    rows = max(len(rare), 1)
    height = 1.9 * rows + 0.7
    fig = Figure(figsize=(1.6 * per_attr, height))
    FigureCanvasAgg(fig)
    # a fixed grid (no tight_layout: measuring text is most of the drawing time)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.7 / height, hspace=0.45, wspace=0.05)
    axes = fig.subplots(rows, per_attr, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, j in enumerate(rare):
        for c, i in enumerate(np.flatnonzero(everything.attributes[:, j])[:per_attr]):
            with Image.open(root / everything.path[i]) as im:
                im = im.convert("RGB")
                im.thumbnail((thumb, thumb))
            axes[r, c].imshow(np.asarray(im))
            axes[r, c].set_title(f"{attribute_names[j]} ({int(train[j])})\n{classes[everything.label[i]]}", fontsize=7)
    title = "objects with the rarest Train-GLT attributes (their count in Train-GLT)"
    fig.suptitle(title, fontsize=9, y=1 - 0.1 / height)
    _save(fig, root / "figures" / "rare_attribute_examples.png")


# ---- the build ----------------------------------------------------------------------------------------


def build_coco(
    coco_root: str | os.PathLike,
    attributes: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trust_pickle: bool = False,
    seed: int = 0,
    sizes: dict[str, tuple[int, int]] | None = None,
    imbalance: float = IMBALANCE,
    crop: str = "context",
    crop_format: str = "jpg",
    workers: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    name: str = NAME,
    original: bool = True,
    statistics: bool = True,
    figures: bool = True,
    progress: bool = False,
) -> Path:
    """Build MSCOCO-GLT into `out`; returns `out`. `sizes`: track -> (T, V), default glt 200/100, cbl 100/50.

    Crops go to `cache_dir` (default OUT.crops-cache) first, so an interrupted build resumes without
    re-cropping; the default cache is removed once the build succeeds, an explicit one is kept."""
    sizes = check_sizes(sizes)
    if not 0 < imbalance <= 1:
        raise GLTError(f"--imbalance must be in (0, 1] (smallest / largest class of Train-GLT), got {imbalance}")
    if crop not in CROP_STYLES:
        raise GLTError(f"unknown crop style '{crop}' (known: {', '.join(CROP_STYLES)})")
    if workers is not None and workers < 1:
        raise GLTError(f"--workers must be >= 1, got {workers}")
    if crop_format not in CROP_FORMATS:
        raise GLTError(f"unknown crop format '{crop_format}' (known: {', '.join(CROP_FORMATS)})")
    out = Path(out)
    coco_root = Path(coco_root)
    default_cache = cache_dir is None
    cache = Path(f"{out}.crops-cache") if default_cache else Path(cache_dir)

    # read (and so check) both inputs before anything is written: a bad file leaves no folder behind
    attrs = load_attributes(attributes, trust_pickle)
    objects = load_coco_objects(coco_root, attrs)
    with build_output(out, overwrite) as tmp:
        if default_cache and not cache.exists():
            cache.mkdir(parents=True)
            (cache / CROPS_MARKER).write_text("crops cut by `glt build coco`; removed when the build succeeds\n")
        cat_order, labels = rank_classes(objects.category_ids)
        classes = [objects.category_names[int(c)] for c in cat_order]
        frequency = frequency_of_rank(labels)
        rows = plan_splits(labels, objects.present, classes, sizes, imbalance, seed, progress)

        needed = np.unique(np.concatenate(list(rows.values())))
        crops = write_crops(
            objects, needed, coco_root, cache / f"{crop}-{crop_format}", crop, crop_format, workers, progress
        )
        (tmp / "crops").mkdir()
        paths = np.empty(len(objects.ids), dtype=object)
        for i in tqdm(needed.tolist(), desc="link crops", unit="obj", disable=not progress):
            rel = f"crops/{crops[i].name}"
            _link_or_copy(crops[i], tmp / rel)
            paths[i] = rel

        tables = {}
        train_counts = {
            track: class_attribute_counts(labels, objects.present, rows[f"{track}/train"], len(classes))
            for track in DEFAULT_SIZES
        }
        for split, idx in rows.items():
            groups = attribute_groups(labels, objects.present, idx, train_counts[split.split("/")[0]])
            tables[split] = SplitTable(
                objects.ids[idx], paths[idx], labels[idx], frequency[idx], groups, objects.present[idx]
            )
        class_sizes = np.bincount(labels, minlength=len(classes))
        manifest = Manifest(
            name=name,
            classes=classes,
            attribute_kind="multilabel",
            kind="mscoco_glt",
            num_attributes=3,
            attribute_names=list(objects.attribute_names),
            attribute_vector_length=objects.present.shape[1],
            image_style="imagenet",
            image_size=112,
            info={
                "builder": "coco",
                "recipe": "MSCOCO-GLT (docs/coco.md)",
                "seed": seed,
                "sizes": {track: {"test": t, "val": v} for track, (t, v) in sizes.items()},
                "imbalance": imbalance,
                "crop": crop,
                "crop_format": crop_format,
                "coco_root": str(coco_root),
                "attributes_file": str(attributes),
                "objects": int(len(objects.ids)),
                "class_sizes": {c: int(n) for c, n in zip(classes, class_sizes)},
                "coco_category_ids": [int(c) for c in cat_order],
                "frequency_groups": "0-based class rank <= 10 many, 11-22 medium, >= 23 few",
                "attribute_groups": "per split: thirds of dot(normalised Train histogram of the class, "
                "normalised binary vector), 0 = head",
                "attribute_histogram_std": {s: histogram_std(t.attributes) for s, t in tables.items()},
            },
        )
        write_benchmark(tmp, manifest, tables, unique_ids=True)
        if original:
            from glt.benchmark.original import export_original

            export_original(tmp, tmp / "original")
        if statistics:
            from glt.benchmark.stats import write_statistics

            write_statistics(tmp)
        if figures:
            write_figures(tmp, tables, objects.attribute_names, classes, distribution=not statistics)
    if default_cache and (cache / CROPS_MARKER).is_file():  # only a cache folder this tool made
        shutil.rmtree(cache, ignore_errors=True)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coco-root", required=True, help="COCO 2014 folder: annotations/, train2014/, val2014/")
    p.add_argument(
        "--attributes", required=True, help="COCO-Attributes: the .npz of `glt convert-attributes`, or the pickle"
    )
    p.add_argument(
        "--trust-pickle", action="store_true", help="allow reading --attributes as a pickle (runs code from the file)"
    )
    p.add_argument("--out", required=True, help="output benchmark directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (same inputs and seed, same bytes)")
    g = p.add_argument_group("split sizes (per class)")
    g.add_argument(
        "--glt-test", type=int, default=DEFAULT_SIZES["glt"][0],
        help="track glt: Test-GBL / Test-CBL per class, Test-GLT = classes x this",
    )
    g.add_argument("--glt-val", type=int, default=DEFAULT_SIZES["glt"][1], help="track glt: Val = classes x this")
    g.add_argument(
        "--cbl-test", type=int, default=DEFAULT_SIZES["cbl"][0], help="track cbl: Test-GBL / Test-CBL per class"
    )
    g.add_argument("--cbl-val", type=int, default=DEFAULT_SIZES["cbl"][1], help="track cbl: Val = classes x this")
    g.add_argument("--imbalance", type=float, default=IMBALANCE, help="Train-GLT pool: smallest / largest class")
    c = p.add_argument_group("crops")
    c.add_argument(
        "--crop", choices=CROP_STYLES, default="context",
        help="context: the original's widened square crop; box: the tight box",
    )
    c.add_argument("--crop-format", choices=sorted(CROP_FORMATS), default="jpg", help="image format of the crops")
    c.add_argument("--workers", type=int, default=None, help="crop processes (default: one per CPU)")
    c.add_argument(
        "--cache-dir", default=None,
        help="where crops wait until the build succeeds (default OUT.crops-cache, removed after success)",
    )
    o = p.add_argument_group("extra outputs")
    o.add_argument("--no-original", action="store_true", help="skip OUT/original/ (the authors' annotation layout)")
    o.add_argument("--no-stats", action="store_true", help="skip the statistics report")
    o.add_argument("--no-figures", action="store_true", help="skip OUT/figures/")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = build_coco(
        args.coco_root,
        args.attributes,
        args.out,
        trust_pickle=args.trust_pickle,
        seed=args.seed,
        sizes={"glt": (args.glt_test, args.glt_val), "cbl": (args.cbl_test, args.cbl_val)},
        imbalance=args.imbalance,
        crop=args.crop,
        crop_format=args.crop_format,
        workers=args.workers,
        cache_dir=args.cache_dir,
        overwrite=args.overwrite,
        original=not args.no_original,
        statistics=not args.no_stats,
        figures=not args.no_figures,
        progress=True,
    )
    from glt.benchmark import Benchmark

    bench = Benchmark(out)
    counts = ", ".join(f"{s} {len(bench.split(s))}" for s in bench.manifest.split_names)
    print(f"built {bench.name} in {out} ({time.perf_counter() - t0:.1f} s): {counts}")
    return 0
