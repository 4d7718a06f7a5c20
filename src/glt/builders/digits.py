"""Build ColorDigits-GLT, the small embedded GLT benchmark (no download).

Source: scikit-learn's bundled handwritten digits (1,797 8x8 images, ~180 per digit). Each image is
upscaled (default 32x32 RGB, small random shift / scale / rotation / stroke thickness) and colourised.
The attribute is the stroke colour (with --background, a stroke + background colour scheme), one of
K colours; each class has its own head colour (the colours rotate over the classes), so colour is
spuriously tied to the class in training, as pretext attributes are in ImageNet-GLT. Attribute k =
the class's k-th most frequent colour.

Classes are long-tailed (exponential profile, --imbalance), colours long-tailed inside every class
(--attribute-ratio). Splits follow the ImageNet-GLT recipe (docs/colordigits.md): Test-GBL (balanced over class
and colour), Test-CBL (class-balanced, training colour ratio), track glt (a long-tailed pool from which
Test-GLT and Val are drawn i.i.d., the rest is Train-GLT), track cbl (class-balanced Train-CBL + Val).
The source digits of every class are first partitioned into held-out sources (all test and val splits)
and training sources, so no handwritten digit seen in training appears in an evaluation split.
"""

from __future__ import annotations

import argparse
import colorsys
import importlib.util
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from glt.benchmark import Manifest, SplitTable, write_benchmark
from glt.benchmark.arrays import ARRAYS_DIR, INDEX, array_file, table_digest
from glt.errors import GLTError
from glt.io import write_json
from glt.benchmark.output import build_output

HELP = "ColorDigits-GLT: the small embedded benchmark (scikit-learn digits, colourised; no download)"
NAME = "colordigits-glt"
NUM_CLASSES = 10

# 12 fully saturated hues, 30 degrees apart; a build with K colours uses K of them evenly spread around
# the wheel (K=3: red, green, blue).
COLOUR_NAMES = (
    "red", "orange", "yellow", "lime", "green", "mint",
    "cyan", "azure", "blue", "violet", "magenta", "rose",
)  # fmt: skip
PALETTE = np.array([colorsys.hsv_to_rgb(i / 12, 1.0, 1.0) for i in range(12)], dtype=np.float64)
# --background: a dark, desaturated complementary colour behind each stroke colour
BACKGROUND = np.array([colorsys.hsv_to_rgb(((i + 6) % 12) / 12, 0.7, 0.35) for i in range(12)], dtype=np.float64)

# Frequency groups by class rank, the ImageNet-GLT rule (<400 / 400-849 / >=850 of ~1000 classes) scaled
# to 10 classes and rounded so that every group has at least 3 classes: ranks 0-3 many, 4-6 medium, 7-9 few.
FREQUENCY_OF_RANK = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2], dtype=np.int8)

# Rendering: the 8x8 digit spans this fraction of the output side (margin for shift / scale / rotation).
DIGIT_SPAN = 0.8
JITTER = {"shift": 0.06, "scale": (0.9, 1.1), "rotate_deg": 10.0, "threshold": (0.25, 0.5), "brightness": (0.8, 1.0)}
EDGE_WIDTH = 0.2  # intensity range over which the stroke fades in (anti-aliasing)

# The split sizes of the default build (all per class unless said otherwise).
DEFAULT_SIZES = {
    "pool_head": 960,  # track glt: images of the largest class in the long-tailed pool
    "test_per_class": 60,  # Test-CBL per class; Test-GLT holds NUM_CLASSES * this (drawn from the pool)
    "gbl_per_colour": 20,  # Test-GBL per class and colour
    "val_per_class": 30,  # Val holds NUM_CLASSES * this, in both tracks
    "cbl_per_class": 300,  # Train-CBL per class
    "heldout_sources": 60,  # source digits per class reserved for test and val splits
    "max_renders": 16,  # at most this many renders of one source digit (over all splits)
}


@dataclass
class _Requests:
    """Images to render for one split: class rank and attribute of each."""

    rank: np.ndarray
    attr: np.ndarray


def apportion(total: int, ratio: np.ndarray) -> np.ndarray:
    """Split `total` over the entries of `ratio` by largest remainder: exact total, and a non-increasing
    ratio stays non-increasing (ties go to the earlier entry)."""
    share = total * ratio / ratio.sum()
    base = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    return base


def class_profile(head: int, imbalance: float, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Exponential long-tail profile: head * imbalance^(-rank / (C - 1)), rounded half up."""
    exact = head * imbalance ** (-np.arange(num_classes) / (num_classes - 1))
    return np.floor(exact + 0.5).astype(np.int64)


def benchmark_colours(num_colours: int) -> np.ndarray:
    """Palette indices of the K colours of a build: evenly spread hues, as far apart as possible."""
    return (len(COLOUR_NAMES) // num_colours) * np.arange(num_colours)


def class_colours(num_colours: int) -> np.ndarray:
    """(NUM_CLASSES, K) palette index of attribute k of class rank r: colour (r + k) mod K.

    Every class has its own head colour among the K (rank r's head is colour r mod K) and the K colours
    rotate through the attribute ranks. A probe with one distinct head hue per class (12 hues) made colour
    an almost perfect shortcut (CE: 93% Test-CBL, 46% Test-GBL, 3% on the rarest colour): too strong to be
    a useful benchmark; sharing K colours between classes leaves the shape as the real cue."""
    k = np.arange(num_colours)
    return benchmark_colours(num_colours)[(np.arange(NUM_CLASSES)[:, None] + k[None, :]) % num_colours]


def _grid(counts: np.ndarray) -> _Requests:
    """Requests from a (class rank, attribute) count matrix, class-major order."""
    r, a = np.indices(counts.shape).reshape(2, -1)
    n = counts.reshape(-1)
    return _Requests(np.repeat(r, n), np.repeat(a, n))


def _occurrence_index(keys: np.ndarray) -> np.ndarray:
    """k-th occurrence of each key in order (0 for the first), vectorised."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sk)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(sk)]))
    out = np.empty(len(keys), dtype=np.int64)
    out[order] = np.arange(len(sk)) - run_start
    return out


def _cycle(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n items from `pool`, a fresh shuffle per pass: every item is used floor/ceil(n / len) times."""
    passes = -(-n // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(passes)])[:n]


# ---- rendering --------------------------------------------------------------------------------------


def load_source_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: (1797, 8, 8) intensities in [0, 1] and the digit of each.

    Reads the data file shipped inside scikit-learn directly: importing sklearn.datasets costs seconds
    (scipy.stats, ...) and the build should take a few. Falls back to load_digits if the file moved."""
    spec = importlib.util.find_spec("sklearn")
    data = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if data is not None and data.is_file():
        raw = np.loadtxt(data, delimiter=",")
        images, target = raw[:, :-1].reshape(-1, 8, 8), raw[:, -1]
    else:  # pragma: no cover - depends on the installed scikit-learn
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, target = bunch.images, bunch.target
    return (images / 16.0).astype(np.float32), target.astype(np.int64)


def _upsample_sources(images: np.ndarray, image_size: int) -> tuple[np.ndarray, int]:
    """Smooth (bicubic) upsampling of the zero-padded 8x8 sources once, so each render is a cheap
    bilinear lookup. Returns (N, 10F, 10F) float32 intensities in [0, 1] and the factor F."""
    factor = int(min(8, max(2, math.ceil(image_size * DIGIT_SPAN / 8))))
    width = 10 * factor
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1))).astype(np.float32)
    up = np.stack([np.asarray(Image.fromarray(p, "F").resize((width, width), Image.BICUBIC)) for p in padded])
    up = np.clip(up, 0.0, 1.0)
    up[:, [0, -1], :] = 0.0  # exact zero border: coordinates outside the digit are clipped onto it
    up[:, :, [0, -1]] = 0.0
    return up, factor


def render(
    up: np.ndarray,
    factor: int,
    source: np.ndarray,
    jitter: dict[str, np.ndarray],
    stroke_rgb: np.ndarray,
    background_rgb: np.ndarray,
    image_size: int,
) -> np.ndarray:
    """Render images (uint8, (n, S, S, 3)) of the given sources with per-image jitter and colours.
    float32 throughout: half the memory traffic of float64, and 8-bit output needs no more."""
    f32 = {key: np.asarray(v, np.float32)[:, None, None] for key, v in jitter.items()}
    size, width = image_size, up.shape[1]
    centre = np.arange(size, dtype=np.float32) + np.float32(0.5 - size / 2)
    qx = centre[None, None, :] - f32["dx"] * size
    qy = centre[None, :, None] - f32["dy"] * size
    cos, sin = np.cos(f32["angle"]), np.sin(f32["angle"])
    unit = f32["scale"] * np.float32(size * DIGIT_SPAN / 8)  # output pixels per source pixel
    # output pixel -> source pixel (8x8 frame, centre 4; +1 for the padding) -> upsampled pixel centre
    u = ((cos * qx + sin * qy) / unit + 5) * factor - 0.5
    v = ((cos * qy - sin * qx) / unit + 5) * factor - 0.5
    # outside the frame the clipped weights land on the zero border
    x0, y0 = np.clip(np.floor(u), 0, width - 2), np.clip(np.floor(v), 0, width - 2)
    fx, fy = np.clip(u - x0, 0, 1), np.clip(v - y0, 0, 1)
    x0, y0 = x0.astype(np.intp), y0.astype(np.intp)
    flat = up.reshape(-1)
    index = (source * width * width)[:, None, None] + y0 * width + x0
    top = flat[index] * (1 - fx) + flat[index + 1] * fx
    bottom = flat[index + width] * (1 - fx) + flat[index + width + 1] * fx
    value = top * (1 - fy) + bottom * fy
    # stroke thickness: a lower threshold on the intensity keeps more of the pen trace
    alpha = np.clip((value - f32["threshold"]) / np.float32(EDGE_WIDTH), 0, 1)
    alpha = (alpha * alpha * (3 - 2 * alpha))[..., None]
    stroke = (stroke_rgb * jitter["brightness"][:, None]).astype(np.float32)[:, None, None, :]
    rgb = background_rgb.astype(np.float32)[:, None, None, :] * (1 - alpha) + stroke * alpha
    return np.floor(rgb * 255 + 0.5).astype(np.uint8)


# ---- validation -------------------------------------------------------------------------------------


def _check_options(seed, imbalance, ratio, colours, image_size, sizes) -> np.ndarray:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GLTError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(colours, (int, np.integer)) or not 2 <= colours <= len(COLOUR_NAMES):
        raise GLTError(f"colours must be between 2 and {len(COLOUR_NAMES)} (the palette size), got {colours!r}")
    try:
        imbalance = float(imbalance)
    except (TypeError, ValueError):
        raise GLTError(f"imbalance must be a number, got {imbalance!r}") from None
    if not math.isfinite(imbalance) or imbalance < 1:
        raise GLTError(f"imbalance must be a finite number >= 1 (largest / smallest class), got {imbalance}")
    try:
        r = np.asarray([float(x) for x in ratio], dtype=np.float64)
    except (TypeError, ValueError):
        raise GLTError(f"attribute ratio must be a list of numbers, got {ratio!r}") from None
    if len(r) != colours:
        raise GLTError(f"attribute ratio {_fmt(r)} has {len(r)} entries but colours is {colours}: give one per colour")
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise GLTError(f"attribute ratio {_fmt(r)} must hold positive numbers")
    if np.any(np.diff(r) > 0):
        raise GLTError(f"attribute ratio {_fmt(r)} must be non-increasing (attribute 0 is the most frequent colour)")
    if not isinstance(image_size, (int, np.integer)) or not 8 <= image_size <= 256:
        raise GLTError(f"image size must be an integer between 8 and 256, got {image_size!r}")
    for key, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise GLTError(f"{key} must be a positive integer, got {value!r}")
    return r


def _fmt(ratio) -> str:
    return ",".join(f"{x:g}" for x in ratio)


def _check_supply(what: str, counts: np.ndarray, digits_of_rank: np.ndarray, hint: str) -> None:
    """Every training pool must hold every colour of every class at least once."""
    rank, attr = np.nonzero(counts == 0)
    if len(rank):
        r, a = int(rank[0]), int(attr[0])
        raise GLTError(
            f"{what}: class 'digit {digits_of_rank[r]}' (rank {r}) gets {int(counts[r].sum())} images, "
            f"too few to hold colour {a} at the attribute ratio; {hint}"
        )


# ---- the build --------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Every image to render, split after split in the order of `_split_requests`: its class rank, colour
    (attribute), source digit, hue, jitter, id and path."""

    rank: np.ndarray
    attr: np.ndarray
    source: np.ndarray
    hue: np.ndarray
    jitter: dict[str, np.ndarray]
    ids: np.ndarray
    paths: np.ndarray


def build_digits(
    out,
    *,
    seed: int = 0,
    imbalance: float = 10.0,
    attribute_ratio=(90, 8, 2),
    colours: int = 3,
    background: bool = False,
    image_size: int = 32,
    overwrite: bool = False,
    pool_head: int = DEFAULT_SIZES["pool_head"],
    test_per_class: int = DEFAULT_SIZES["test_per_class"],
    gbl_per_colour: int = DEFAULT_SIZES["gbl_per_colour"],
    val_per_class: int = DEFAULT_SIZES["val_per_class"],
    cbl_per_class: int = DEFAULT_SIZES["cbl_per_class"],
    heldout_sources: int = DEFAULT_SIZES["heldout_sources"],
    max_renders: int = DEFAULT_SIZES["max_renders"],
    progress: bool = False,
) -> Path:
    """Build ColorDigits-GLT into `out` (a benchmark directory) and return its path.

    Deterministic: the same arguments give byte-identical tables and PNGs. See the module docstring
    and docs/colordigits.md for the recipe; the size arguments are documented in DEFAULT_SIZES.
    The steps below draw from one generator in a fixed order (sources, splits, renders, jitter).
    """
    sizes = dict(
        pool_head=pool_head,
        test_per_class=test_per_class,
        gbl_per_colour=gbl_per_colour,
        val_per_class=val_per_class,
        cbl_per_class=cbl_per_class,
        heldout_sources=heldout_sources,
        max_renders=max_renders,
    )
    ratio = _check_options(seed, imbalance, attribute_ratio, colours, image_size, sizes)
    imbalance = float(imbalance)
    images, target = load_source_digits()
    rng = np.random.default_rng(seed)
    digit_of_rank, held, train_src = _split_sources(target, heldout_sources, rng)
    order, glt_train_counts = _split_requests(ratio, imbalance, colours, sizes, digit_of_rank, rng)
    rows = _render_rows(order, held, train_src, colours, max_renders, digit_of_rank, rng)

    # labels: rank by Train-GLT class size (the i.i.d. draws may, in principle, swap neighbours)
    label_of_rank = np.empty(NUM_CLASSES, dtype=np.int64)
    label_of_rank[np.argsort(-glt_train_counts, kind="stable")] = np.arange(NUM_CLASSES)
    class_names = [f"digit {digit_of_rank[r]}" for r in np.argsort(label_of_rank)]
    tables, blocks = _split_tables(order, rows, label_of_rank)
    info = _digits_info(seed, imbalance, ratio, colours, background, image_size, sizes, class_names,
                        label_of_rank, held)
    manifest = Manifest(
        name=NAME,
        classes=class_names,
        attribute_kind="index",
        num_attributes=colours,
        attribute_names=[f"colour rank {a}" for a in range(colours)],
        image_style="small",
        image_size=int(image_size),
        info=info,
        kind="colordigits_glt",
    )
    with build_output(out, overwrite) as tmp:
        _write_images(tmp, images, rows, blocks, tables, background, image_size, progress)
        write_benchmark(tmp, manifest, tables, unique_ids=True)
    return Path(out)


def _split_sources(target: np.ndarray, heldout_sources: int, rng):
    """Which digit gets which place on the long-tail profile, and per class rank its held-out source
    digits (they feed every test / val split) and its training sources."""
    digit_of_rank = rng.permutation(NUM_CLASSES)
    held, train_src = [], []
    for r in range(NUM_CLASSES):
        src = rng.permutation(np.flatnonzero(target == digit_of_rank[r]))
        if heldout_sources >= len(src):
            raise GLTError(
                f"heldout_sources={heldout_sources} leaves no training sources for 'digit {digit_of_rank[r]}' "
                f"({len(src)} source images)"
            )
        held.append(np.sort(src[:heldout_sources]))
        train_src.append(np.sort(src[heldout_sources:]))
    return digit_of_rank, held, train_src


def _split_requests(ratio, imbalance: float, colours: int, sizes: dict, digit_of_rank, rng):
    """The (class, colour) requests of every split, in ImageNet-GLT order, as (split names sharing the
    rendered images, requests, uses held-out sources); and Train-GLT's class counts."""
    C, K = NUM_CLASSES, colours
    test_gbl = _grid(np.full((C, K), sizes["gbl_per_colour"], dtype=np.int64))
    test_cbl = _grid(np.tile(apportion(sizes["test_per_class"], ratio), (C, 1)))
    pool_counts = np.stack([apportion(int(n), ratio) for n in class_profile(sizes["pool_head"], imbalance)])
    _check_supply("the glt pool", pool_counts, digit_of_rank, "lower --imbalance or raise pool_head")
    pool = _grid(pool_counts)
    n_test, n_val = C * sizes["test_per_class"], C * sizes["val_per_class"]
    if n_test + n_val >= len(pool.rank):
        raise GLTError(
            f"the long-tailed pool holds {len(pool.rank)} images, too few for Test-GLT ({n_test}) + Val ({n_val}) "
            f"and a training set; raise pool_head or lower test_per_class / val_per_class"
        )
    drawn = rng.permutation(len(pool.rank))  # Test-GLT and Val drawn i.i.d. out of the pool
    pick = {
        "test_glt": np.sort(drawn[:n_test]),
        "val": np.sort(drawn[n_test : n_test + n_val]),
        "train": np.sort(drawn[n_test + n_val :]),
    }
    glt = {k: _Requests(pool.rank[v], pool.attr[v]) for k, v in pick.items()}
    glt_train_counts = np.bincount(glt["train"].rank, minlength=C)
    if glt_train_counts.min() == 0:
        r = int(np.argmin(glt_train_counts))
        raise GLTError(
            f"Train-GLT has no image of class 'digit {digit_of_rank[r]}' after drawing Test-GLT and Val; "
            f"raise pool_head or lower --imbalance"
        )
    cbl_counts = np.tile(apportion(sizes["cbl_per_class"], ratio), (C, 1))
    _check_supply("Train-CBL", cbl_counts, digit_of_rank, "raise cbl_per_class")
    cbl_val = _grid(np.tile(apportion(sizes["val_per_class"], ratio), (C, 1)))
    order = [
        (("glt/test_gbl", "cbl/test_gbl"), test_gbl, True),
        (("glt/test_cbl", "cbl/test_cbl"), test_cbl, True),
        (("glt/test_glt",), glt["test_glt"], True),
        (("glt/val",), glt["val"], True),
        (("cbl/val",), cbl_val, True),
        (("glt/train",), glt["train"], False),
        (("cbl/train",), _grid(cbl_counts), False),
    ]
    return order, glt_train_counts


def _render_rows(order, held, train_src, colours: int, max_renders: int, digit_of_rank, rng) -> _Rows:
    """Every image of every split: a source digit (held-out sources for the test / val splits, the others
    for the training sets, each rendered at most `max_renders` times), its hue, jitter, id and path."""
    all_rank = np.concatenate([req.rank for _, req, _ in order])
    all_attr = np.concatenate([req.attr for _, req, _ in order])
    all_held = np.concatenate([np.full(len(req.rank), h) for _, req, h in order])
    source = np.empty(len(all_rank), dtype=np.int64)
    for r in range(NUM_CLASSES):
        for is_held, pool_src in ((True, held[r]), (False, train_src[r])):
            rows = np.flatnonzero((all_rank == r) & (all_held == is_held))
            need = -(-len(rows) // len(pool_src))
            if need > max_renders:
                kind = "held-out" if is_held else "training"
                raise GLTError(
                    f"the requested split sizes need {len(rows)} images of 'digit {digit_of_rank[r]}' from "
                    f"{len(pool_src)} {kind} source digits, {need} renders each (max_renders={max_renders}); "
                    f"lower the split sizes or change heldout_sources"
                )
            source[rows] = _cycle(pool_src, len(rows), rng)
    hue = class_colours(colours)[all_rank, all_attr]
    n = len(all_rank)
    jitter = {
        "dx": rng.uniform(-JITTER["shift"], JITTER["shift"], n),
        "dy": rng.uniform(-JITTER["shift"], JITTER["shift"], n),
        "scale": rng.uniform(*JITTER["scale"], n),
        "angle": np.deg2rad(rng.uniform(-JITTER["rotate_deg"], JITTER["rotate_deg"], n)),
        "threshold": rng.uniform(*JITTER["threshold"], n),
        "brightness": rng.uniform(*JITTER["brightness"], n),
    }
    k = _occurrence_index(source * len(COLOUR_NAMES) + hue)  # makes ids unique across all splits
    stems = [f"{s}_{COLOUR_NAMES[h]}_{j}" for s, h, j in zip(source.tolist(), hue.tolist(), k.tolist())]
    ids = np.array([f"digits/{s}" for s in stems], dtype=object)
    paths = np.array([f"images/{s}.png" for s in stems], dtype=object)
    return _Rows(all_rank, all_attr, source, hue, jitter, ids, paths)


def _split_tables(order, rows: _Rows, label_of_rank: np.ndarray):
    """The split tables (splits sharing rendered images share a table) and, per distinct table, its rows
    of `rows` and the split names."""
    label = label_of_rank[rows.rank]
    tables: dict[str, SplitTable] = {}
    blocks: list[tuple[slice, tuple[str, ...]]] = []
    start = 0
    for names, req, _ in order:
        sl = slice(start, start + len(req.rank))
        start = sl.stop
        table = SplitTable(rows.ids[sl], rows.paths[sl], label[sl], FREQUENCY_OF_RANK[label[sl]], rows.attr[sl])
        blocks.append((sl, names))
        for name in names:
            tables[name] = table
    return tables, blocks


def _digits_info(seed, imbalance, ratio, colours, background, image_size, sizes, class_names, label_of_rank,
                 held) -> dict:
    """The manifest's `info`: every option and size, the colours, the held-out sources."""
    palette = class_colours(colours)
    info = {
        "builder": "digits",
        "source": "sklearn.datasets.load_digits",
        "seed": int(seed),
        "options": {
            "imbalance": imbalance,
            "attribute_ratio": [float(x) for x in ratio],
            "colours": colours,
            "background": bool(background),
            "image_size": int(image_size),
            **{key: int(v) for key, v in sizes.items()},
        },
        "colours": [COLOUR_NAMES[h] for h in benchmark_colours(colours)],
        "class_colours": {class_names[label_of_rank[r]]: [COLOUR_NAMES[h] for h in palette[r]]
                          for r in range(NUM_CLASSES)},
        "colour_rgb": {name: [int(round(255 * c)) for c in PALETTE[i]] for i, name in enumerate(COLOUR_NAMES)},
        "frequency_rule": "class rank 0-3 many, 4-6 medium, 7-9 few",
        "heldout_source_indices": {class_names[label_of_rank[r]]: held[r].tolist() for r in range(NUM_CLASSES)},
        "jitter": JITTER,
    }
    if background:
        info["background_rgb"] = {
            name: [int(round(255 * c)) for c in BACKGROUND[i]] for i, name in enumerate(COLOUR_NAMES)
        }
    return info


def _write_images(tmp: Path, images, rows: _Rows, blocks, tables, background: bool, image_size: int,
                  progress: bool) -> None:
    """Render every image into tmp/images (PNG) and, once more, into one uint8 (N, 3, S, S) array per distinct
    split table (benchmark/arrays.py): training reads one array instead of decoding every PNG (the PNG
    pixels, losslessly)."""
    (tmp / "images").mkdir()
    (tmp / ARRAYS_DIR).mkdir()
    arrays, index = [], {}
    for sl, names in blocks:
        file = array_file(names[0])
        shape = (sl.stop - sl.start, 3, image_size, image_size)
        arr = np.lib.format.open_memmap(tmp / ARRAYS_DIR / file, mode="w+", dtype=np.uint8, shape=shape)
        arrays.append((sl, arr))
        for name in names:
            index[name] = {"file": file, "rows": shape[0], "ids_sha256": table_digest(tables[name]),
                           "shape": list(shape)}
    n = len(rows.rank)
    up, factor = _upsample_sources(images, image_size)
    bg = BACKGROUND[rows.hue] if background else np.zeros((n, 3))
    chunk = max(1, 2**18 // (image_size * image_size))  # small chunks stay in cache
    with tqdm(total=n, desc="render colordigits", unit="img", disable=not progress) as bar:
        for lo in range(0, n, chunk):
            sl = slice(lo, min(n, lo + chunk))
            part = {key: v[sl] for key, v in rows.jitter.items()}
            batch = render(up, factor, rows.source[sl], part, PALETTE[rows.hue[sl]], bg[sl], image_size)
            # PNG encoding dominates the build time (~0.3 ms an image); threads did not help (GIL)
            for img, path in zip(batch, rows.paths[sl]):
                buf = io.BytesIO()  # encode in memory, then one write: fewer system calls per file
                Image.fromarray(img, "RGB").save(buf, format="PNG")
                (tmp / path).write_bytes(buf.getvalue())
            for block, arr in arrays:
                a, b = max(block.start, sl.start), min(block.stop, sl.stop)
                if a < b:
                    arr[a - block.start : b - block.start] = batch[a - sl.start : b - sl.start].transpose(0, 3, 1, 2)
            bar.update(len(batch))
    for _, mapped in arrays:
        mapped.flush()
    arrays.clear()
    write_json(tmp / ARRAYS_DIR / INDEX, index)


# ---- command line -----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output benchmark directory")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--imbalance", type=float, default=10.0, help="largest / smallest class in the long-tailed pool")
    p.add_argument(
        "--attribute-ratio", default="90,8,2", help="intra-class colour ratio, one entry per colour, head first"
    )
    p.add_argument("--colours", type=int, default=3, help=f"colours = attribute values (2..{len(COLOUR_NAMES)})")
    p.add_argument("--background", action="store_true", help="colour the background too (one scheme per colour)")
    p.add_argument("--image-size", type=int, default=32, help="side of the square RGB images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    g = p.add_argument_group("split sizes")
    helps = {
        "pool_head": "images of the largest class in the glt pool",
        "test_per_class": "Test-CBL per class; Test-GLT holds 10x this",
        "gbl_per_colour": "Test-GBL per class and colour",
        "val_per_class": "Val holds 10x this, both tracks",
        "cbl_per_class": "Train-CBL per class",
        "heldout_sources": "source digits per class kept for test and val",
        "max_renders": "most renders of one source digit",
    }
    for key, text in helps.items():
        g.add_argument(f"--{key.replace('_', '-')}", type=int, default=DEFAULT_SIZES[key], help=text)


def parse_ratio(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise GLTError(f"--attribute-ratio must be comma-separated numbers such as 90,8,2, got '{text}'") from None


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = build_digits(
        args.out,
        seed=args.seed,
        imbalance=args.imbalance,
        attribute_ratio=parse_ratio(args.attribute_ratio),
        colours=args.colours,
        background=args.background,
        image_size=args.image_size,
        overwrite=args.overwrite,
        pool_head=args.pool_head,
        test_per_class=args.test_per_class,
        gbl_per_colour=args.gbl_per_colour,
        val_per_class=args.val_per_class,
        cbl_per_class=args.cbl_per_class,
        heldout_sources=args.heldout_sources,
        max_renders=args.max_renders,
        progress=True,
    )
    from glt.benchmark import Benchmark

    bench = Benchmark(out)
    sizes = ", ".join(f"{name} {len(bench.split(name))}" for name in bench.manifest.split_names)
    print(f"built {NAME} in {out} ({time.perf_counter() - t0:.1f} s): {sizes}")
    return 0
