"""The split carving of the ImageNet-GLT recipe (docs/build.md, "The recipe, step by step", step 8),
given each image's class label and attribute.

Generic over the counts, so one code path serves ImageNet-GLT (the published sizes) and any
class-per-folder dataset (sizes scaled to the data). Everything is vectorised: each image gets its
position inside its (class, attribute) list, and every split is a range of positions.

Order conventions (what "the front of each attribute's list" means here): images are ordered inside
each (class, attribute) list by `order_key` (a seeded random permutation in the builders); the
i.i.d. draw of Test-GLT and Val out of the `glt` pool takes the pool in `draw_key` order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from glt.errors import GLTError

# intra-class attribute shape of Test-CBL, the `glt` pool and the `cbl` track (attribute 0 first)
RATIO = (7, 2, 1)
# frequency groups by class rank, as fractions of the number of classes: ImageNet-GLT's
# "<400 many, 400-849 medium, >=850 few" out of 1000 classes
FREQUENCY_BOUNDS = (0.4, 0.85)

GBL_MAX = 20  # ImageNet-GLT's Test-GBL: at most this many images per class and attribute

SPLITS = ("test_gbl", "test_cbl", "glt/train", "glt/val", "glt/test_glt", "cbl/train", "cbl/val")


@dataclass
class RecipeSizes:
    """Per-class sizes of the recipe (ImageNet-GLT values as defaults, except the class profile)."""

    glt_counts: list[int] = field(default_factory=list)  # requested `glt` pool size per class rank
    gbl_max: int = GBL_MAX  # Test-GBL: at most this many images per attribute...
    gbl_divisor: int = 4  # ...and at most len(attribute) // gbl_divisor
    test_cbl: int = 60  # per class, split by `ratio`
    test_glt: int = 60  # times #classes, drawn i.i.d. from the `glt` pool
    val_glt: int = 30  # times #classes, drawn i.i.d. from the `glt` pool
    cbl_cap: int = 145  # `cbl` track: every class capped at this many, split by `ratio`
    val_cbl: int = 30  # per class, split by `ratio`, out of the capped `cbl` pool
    ratio: tuple[int, ...] = RATIO

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = list(self.ratio)
        d["glt_counts"] = [int(x) for x in self.glt_counts]
        return d


def ratio_split(n, ratio=RATIO) -> np.ndarray:
    """Split `n` (scalar or array) by `ratio` with floor, in integers (145 -> 101/29/14)."""
    n = np.asarray(n, dtype=np.int64)
    r = np.asarray(ratio, dtype=np.int64)
    return n[..., None] * r // r.sum()


def rank_classes(counts: np.ndarray, names: list[str]) -> np.ndarray:
    """Label of each class: its rank by image count, largest first; ties by name."""
    counts = np.asarray(counts)
    order = sorted(range(len(names)), key=lambda i: (-int(counts[i]), names[i]))
    label = np.empty(len(names), dtype=np.int64)
    label[order] = np.arange(len(names))
    return label


def frequency_groups(num_classes: int, bounds: tuple[float, float] = FREQUENCY_BOUNDS) -> np.ndarray:
    """Frequency group (0 many, 1 medium, 2 few) of each class label (= rank)."""
    rank = np.arange(num_classes)
    return ((rank >= bounds[0] * num_classes).astype(np.int8) + (rank >= bounds[1] * num_classes)).astype(np.int8)


def exponential_counts(num_classes: int, max_count: int, imbalance: float) -> np.ndarray:
    """Exponential class profile: `max_count * imbalance ** (-rank / (C - 1))`, floored."""
    if num_classes == 1:
        return np.array([max_count], dtype=np.int64)
    rank = np.arange(num_classes)
    return np.floor(max_count * float(imbalance) ** (-rank / (num_classes - 1))).astype(np.int64)


def gbl_per_attribute(group_sizes: np.ndarray, gbl_max: int, divisor: int) -> np.ndarray:
    """Test-GBL images per attribute of each class: min over attributes of min(gbl_max, len // divisor)."""
    return np.minimum(gbl_max, group_sizes // divisor).min(axis=1)


def max_balanced_size(left: np.ndarray, ratio=RATIO) -> int:
    """The largest per-class size m whose `ratio` split (floor) fits in `left` (C, A) for every class."""
    r = np.asarray(ratio, dtype=np.int64)
    s = r.sum()
    # floor(m * r / s) <= L  <=>  m * r < s * (L + 1)
    return int(((s * (left.astype(np.int64) + 1) - 1) // r).min())


@dataclass
class Carving:
    """The recipe's result: image indices (ascending) per split, plus what was asked and obtained."""

    splits: dict[str, np.ndarray]
    glt_requested: int
    glt_pool: int
    classes_without_gbl: list[int] = field(default_factory=list)  # labels with an attribute too small for Test-GBL


def _class_name(names: list[str] | None, c: int) -> str:
    return f"'{names[c]}' (label {c})" if names else f"label {c}"


def _check_fits(need: np.ndarray, have: np.ndarray, what: str, names: list[str] | None, hint: str) -> None:
    """Fail with one line naming the first class/attribute short of images."""
    short = np.argwhere(need > have)
    if len(short):
        c, a = (int(x) for x in short[0])
        raise GLTError(
            f"class {_class_name(names, c)} has {int(have[c, a])} images left in pretext attribute {a}, "
            f"{what} needs {int(need[c, a])} there ({len(np.unique(short[:, 0]))} classes are short; {hint})"
        )


def carve(
    label: np.ndarray,
    attribute: np.ndarray,
    order_key: np.ndarray,
    draw_key: np.ndarray,
    sizes: RecipeSizes,
    num_classes: int,
    class_names: list[str] | None = None,
) -> Carving:
    """Carve Test-GBL, Test-CBL and the two tracks (docs/build.md, step 8) out of images with a class
    `label` (0 = largest) and an `attribute` in 0..len(ratio)-1. Returns indices into the inputs."""
    label = np.asarray(label, dtype=np.int64)
    attribute = np.asarray(attribute, dtype=np.int64)
    n = len(label)
    A = len(sizes.ratio)
    C = num_classes
    if len(sizes.glt_counts) != C:
        raise GLTError(f"the class-count profile has {len(sizes.glt_counts)} entries, the data has {C} classes")
    if n and (attribute.min() < 0 or attribute.max() >= A):
        raise ValueError(f"attributes must lie in 0..{A - 1}")

    # position of each image inside its (class, attribute) list
    perm = np.lexsort((order_key, attribute, label))
    group = label * A + attribute
    group_sizes = np.bincount(group, minlength=C * A).reshape(C, A)
    starts = np.concatenate([[0], np.cumsum(group_sizes.reshape(-1))[:-1]])
    pos = np.empty(n, dtype=np.int64)
    pos[perm] = np.arange(n) - starts[group[perm]]

    # Test-GBL: the same number of images from every attribute of a class
    gbl = gbl_per_attribute(group_sizes, sizes.gbl_max, sizes.gbl_divisor)
    # a class with an attribute of fewer than gbl_divisor images gets no Test-GBL images (reported, not fatal:
    # tiny clusters happen with small classes)
    no_gbl = [int(c) for c in np.flatnonzero(gbl == 0)] if sizes.gbl_max > 0 else []
    end_gbl = np.repeat(gbl[:, None], A, axis=1)
    left = group_sizes - end_gbl

    # Test-CBL: `test_cbl` images per class in the `ratio` shape
    q_cbl = np.broadcast_to(ratio_split(sizes.test_cbl, sizes.ratio), (C, A))
    _check_fits(q_cbl, left, f"Test-CBL ({sizes.test_cbl} per class)", class_names, "lower --test-cbl")
    end_cbl = end_gbl + q_cbl
    left = left - q_cbl

    # track `glt`: the class profile split by `ratio`, clipped by what is left
    req = ratio_split(np.asarray(sizes.glt_counts, dtype=np.int64), sizes.ratio)
    take_glt = np.minimum(req, left)
    # track `cbl`: every class capped at `cbl_cap` in the `ratio` shape (must fit: the track is balanced)
    q_cap = np.broadcast_to(ratio_split(sizes.cbl_cap, sizes.ratio), (C, A))
    _check_fits(q_cap, left, f"the class-balanced track ({sizes.cbl_cap} per class)", class_names, "lower --cbl-size")
    q_val_cbl = ratio_split(sizes.val_cbl, sizes.ratio)
    if (q_val_cbl > q_cap[0]).any():
        raise GLTError(f"--val-cbl {sizes.val_cbl} is larger than the class-balanced track ({sizes.cbl_cap} per class)")

    lab, att = label, attribute
    in_range = lambda lo, hi: (pos >= lo[lab, att]) & (pos < hi[lab, att])  # noqa: E731
    splits = {
        "test_gbl": np.flatnonzero(pos < end_gbl[lab, att]),
        "test_cbl": np.flatnonzero(in_range(end_gbl, end_cbl)),
        "cbl/val": np.flatnonzero(in_range(end_cbl, end_cbl + q_val_cbl)),
        "cbl/train": np.flatnonzero(in_range(end_cbl + q_val_cbl, end_cbl + q_cap)),
    }

    # Test-GLT and Val: i.i.d. draws out of the `glt` pool
    pool = np.flatnonzero(in_range(end_cbl, end_cbl + take_glt))
    n_test, n_val = C * sizes.test_glt, C * sizes.val_glt
    if n_test + n_val >= len(pool):
        raise GLTError(
            f"the long-tailed pool has {len(pool)} images, Test-GLT + Val take "
            f"{C} classes x ({sizes.test_glt} + {sizes.val_glt}) = {n_test + n_val} and leave no Train-GLT; "
            "lower --test-glt / --val-glt or raise the class counts"
        )
    drawn = pool[np.argsort(draw_key[pool], kind="stable")]
    splits["glt/test_glt"] = np.sort(drawn[:n_test])
    splits["glt/val"] = np.sort(drawn[n_test : n_test + n_val])
    splits["glt/train"] = np.sort(drawn[n_test + n_val :])
    return Carving(
        splits={k: splits[k] for k in SPLITS},
        glt_requested=int(np.asarray(sizes.glt_counts).sum()),
        glt_pool=len(pool),
        classes_without_gbl=no_gbl,
    )


# ImageNet-GLT's smallest class has 732 images and gets Test-CBL = Test-GLT = 60 per class: the
# folder defaults keep that proportion (in whole multiples of the ratio, 10 to 60).
_IMAGENET_SMALLEST = 732


def _shape(ratio) -> str:
    return ":".join(str(int(r)) for r in ratio)


def half_size(test_cbl: int, ratio=RATIO) -> int:
    """The folder default of Val (both tracks): half of Test-CBL, a multiple of sum(ratio), at least one."""
    step = int(sum(ratio))
    return max(step, step * ((test_cbl // 2) // step))


def smallest_cbl_cap(val_cbl: int, ratio=RATIO) -> int:
    """The smallest class-balanced track that still leaves one Train-CBL image after Val-CBL."""
    need = int(ratio_split(val_cbl, ratio).sum())
    m = val_cbl
    while int(ratio_split(m, ratio).sum()) <= need:
        m += 1
    return m


@dataclass
class ClassMinimum:
    """The fewest images a class can have for the recipe's per-class splits (docs/build.md, "How many
    images a class needs"): `per_attribute[a]` images in pretext attribute a, `total` in all."""

    total: int
    per_attribute: list[int]
    parts: dict[str, int]  # split -> images of the class it takes at the least

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.parts.items() if v)
        return f"{parts}; per pretext attribute {'/'.join(map(str, self.per_attribute))}"


def minimum_class_size(
    *,
    test_cbl: int | None = None,
    val_cbl: int | None = None,
    cbl_cap: int | None = None,
    gbl_max: int | None = None,
    gbl_divisor: int = 4,
    ratio: tuple[int, ...] = RATIO,
) -> ClassMinimum:
    """The fewest images a class can have and still get images in every split, with the given sizes and
    the smallest ones `scaled_sizes` can pick for the others: Test-CBL (given, else sum(ratio)), the
    class-balanced track (given, else Val-CBL plus one Train-CBL image) and Test-GBL, which takes
    g = min(gbl_max, smallest attribute // gbl_divisor) >= 1 images from every attribute (`gbl_max` None:
    at most 20). A necessary condition, checked before any feature is computed; the carving then checks
    every attribute of every class."""
    step = int(sum(ratio))
    tc = step if test_cbl is None else int(test_cbl)
    vc = half_size(tc, ratio) if val_cbl is None else int(val_cbl)
    cap = smallest_cbl_cap(vc, ratio) if cbl_cap is None else int(cbl_cap)
    q_tc, q_cap = ratio_split(tc, ratio), ratio_split(cap, ratio)
    need = q_tc + q_cap  # per attribute, besides Test-GBL
    parts = {"Test-CBL": int(q_tc.sum()), "class-balanced track": int(q_cap.sum())}
    if gbl_max == 0:
        return ClassMinimum(int(need.sum()), [int(x) for x in need], parts)
    top = GBL_MAX if gbl_max is None else int(gbl_max)
    best = None
    # the smallest attribute m fixes g; every attribute then needs need_a + g, and one of them must be m
    for m in range(gbl_divisor, int(need.max()) + top + gbl_divisor + 1):
        g = min(top, m // gbl_divisor)
        per = np.maximum(need + g, m)
        if per.min() == m and (best is None or per.sum() < best[1].sum()):
            best = (g, per)
    g, per = best
    return ClassMinimum(int(per.sum()), [int(x) for x in per], {"Test-GBL": g * len(ratio), **parts})


def scaled_sizes(
    group_sizes: np.ndarray,
    *,
    test_cbl: int | None = None,
    test_glt: int | None = None,
    val_glt: int | None = None,
    cbl_cap: int | None = None,
    val_cbl: int | None = None,
    glt_counts: list[int] | None = None,
    imbalance: float = 10.0,
    max_count: int | None = None,
    gbl_max: int | None = GBL_MAX,
    gbl_divisor: int = 4,
    ratio: tuple[int, ...] = RATIO,
    class_names: list[str] | None = None,
) -> RecipeSizes:
    """Recipe sizes fitted to a dataset: `group_sizes` (C, A) = images per (class label, attribute).
    Given values are kept; missing ones scale with the smallest class and what is left after the tests:
    Test-GBL (`gbl_max` None) the most images per attribute every class can give (at most 20 and a
    quarter of its smallest attribute), so that Test-GBL is balanced over classes too; Test-CBL ~ 60/732
    of the smallest class (the largest multiple of sum(ratio) every class can fill), Test-GLT = Test-CBL,
    Val = half of it, the `cbl` cap the largest balanced size every class can fill, the `glt` profile
    exponential from the largest class's remainder down by `imbalance`."""
    group_sizes = np.asarray(group_sizes, dtype=np.int64)
    step = int(sum(ratio))
    if gbl_max is None:
        per_class = gbl_per_attribute(group_sizes, GBL_MAX, gbl_divisor)
        # a class whose smallest attribute has fewer than gbl_divisor images gets none (reported); the others
        # all get the same number
        gbl_max = int(per_class[per_class > 0].min()) if (per_class > 0).any() else 0
    left = group_sizes - gbl_per_attribute(group_sizes, gbl_max, gbl_divisor)[:, None]
    if test_cbl is None:
        smallest = int(group_sizes.sum(axis=1).min())
        target = int(np.clip(round(60 * smallest / _IMAGENET_SMALLEST / step), 1, 60 // step)) * step
        test_cbl = step  # if even this does not fit, carve() names the class that is short
        for t in range(target, 0, -step):
            if (ratio_split(t, ratio) <= left).all():
                test_cbl = t
                break
    left = left - ratio_split(test_cbl, ratio)
    half = half_size(test_cbl, ratio)
    test_glt = test_cbl if test_glt is None else test_glt
    val_glt = half if val_glt is None else val_glt
    val_cbl = half if val_cbl is None else val_cbl
    if cbl_cap is None:
        free = np.maximum(left, 0)
        cbl_cap = max(max_balanced_size(free, ratio), 0)
        least = smallest_cbl_cap(val_cbl, ratio)
        if cbl_cap < least and (left >= 0).all():  # (a Test-CBL that does not fit: carve() names the class)
            r = np.asarray(ratio, dtype=np.int64)
            c = int(np.argmin(((r.sum() * (free + 1) - 1) // r).min(axis=1)))
            who = f"class {_class_name(class_names, c)}" if class_names else f"class label {c}"
            raise GLTError(
                f"{who} has {free[c].tolist()} images per pretext attribute left after Test-GBL and Test-CBL: "
                f"the class-balanced track gets {cbl_cap} per class, it needs at least {least} "
                f"(Val-CBL {val_cbl} + one Train-CBL image, {_shape(ratio)}); lower --test-cbl / --val-cbl or add images"
            )
    if glt_counts is None:
        top = int(np.maximum(left[0], 0).sum()) if max_count is None else max_count
        glt_counts = exponential_counts(len(group_sizes), top, imbalance).tolist()
    return RecipeSizes(
        glt_counts=[int(x) for x in glt_counts],
        gbl_max=gbl_max,
        gbl_divisor=gbl_divisor,
        test_cbl=test_cbl,
        test_glt=test_glt,
        val_glt=val_glt,
        cbl_cap=cbl_cap,
        val_cbl=val_cbl,
        ratio=tuple(ratio),
    )
