"""Build a GLT benchmark from any class-per-folder image tree (ROOT/<class>/<images>), the ImageNet-GLT
recipe (docs/build.md) with every size scaled to the data.

Steps: features of every image from a backbone (resumable per-class cache), k-means into 6 clusters per
class merged by size into 3 pretext attributes, classes ranked by size (label 0 = largest), then Test-GBL,
Test-CBL and the two tracks carved per class. Unless given, the sizes follow the smallest class:
Test-CBL = Test-GLT ~ 60/732 of it (ImageNet-GLT's proportion, a multiple of 10, 10 to 60), Val = half,
the class-balanced track as large as every class can fill, the long-tailed pool exponential from the
largest class down by --imbalance (or --counts FILE), Test-GBL the most images per attribute every class can give.

What it could not balance is a warning on stderr and recorded in the manifest (info.balance); what cannot
make a benchmark (one class, a class with fewer images than the splits need) is refused before any
feature is computed. Symbolic links to folders are followed, a folder reached a second time (a link loop)
is skipped with a warning (docs/build.md, "What the builders check").

Writes the benchmark directory (manifest + split tables; ids are paths relative to --root), the
original-layout annotation files in OUT/original/, stats.json / stats.md and figures/ (class and
attribute distributions per split, example images per pretext attribute).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glt.benchmark import Manifest, SplitTable, write_benchmark
from glt.builders import pretext, recipe
from glt.errors import GLTError
from glt.benchmark.output import build_output
from glt.io import read_json

HELP = "a GLT benchmark from any class-per-folder image tree (the ImageNet-GLT recipe, sizes scaled to the data)"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jpe")
NUM_ATTRIBUTES = len(recipe.RATIO)


def log(msg: str) -> None:
    print(f"glt: {msg}", file=sys.stderr, flush=True)


# ---- the image tree -----------------------------------------------------------------------------------
def _scandir(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise GLTError(f"cannot read folder {folder}: {e.strerror or e}") from None


def _dir_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _walk(folder: str, prefix: str, out: list[tuple[str, int]], seen: set, notes: dict) -> None:
    """Image files below `folder` (depth first, names sorted). Links to folders are followed; a folder
    already seen (by device and inode: a link loop, or a second link to one folder) is skipped."""
    stack = [(folder, prefix)]
    while stack:
        here, pre = stack.pop()
        subdirs = []
        for e in _scandir(here):
            if e.name.startswith("."):
                continue
            try:
                is_dir = e.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                key = _dir_key(e.path)
                if key is None or key in seen:
                    notes["links_skipped"].append(f"{e.path} -> {os.path.realpath(e.path)}")
                    continue
                seen.add(key)
                subdirs.append((e.path, f"{pre}{e.name}/"))
            elif e.name.lower().endswith(IMAGE_EXTENSIONS):
                try:
                    size = e.stat().st_size
                except OSError:  # a broken link
                    notes["broken_links"].append(e.path)
                    continue
                out.append((pre + e.name, size))
        stack.extend(reversed(subdirs))


def scan_folder(root: str | os.PathLike) -> pretext.ImageList:
    """Every image under ROOT/<class>/ (subfolders included): classes sorted by folder name, inside a class
    the images sorted by their path relative to ROOT (the id). Hidden files and folders are skipped, and so
    are folders reached a second time through links (warned about). At least two classes."""
    root = Path(root)
    if not root.is_dir():
        raise GLTError(f"image folder not found: {root}")
    entries = [e for e in _scandir(str(root)) if not e.name.startswith(".") and e.is_dir()]
    classes = [e.name for e in entries]
    if not classes:
        raise GLTError(f"{root} has no class folders (expected {root}/<class>/<images>)")
    if len(classes) < 2:
        raise GLTError(f"{root} has one class folder ('{classes[0]}'): a GLT benchmark needs at least 2 classes")
    seen: dict[tuple[int, int], str] = {}
    for e in entries:  # every class folder belongs to its own class, whatever links point at it
        key = _dir_key(e.path)
        if key in seen:
            raise GLTError(f"class folders '{seen[key]}' and '{e.name}' in {root} are the same folder (a link)")
        seen[key] = e.name
    visited = set(seen) | {_dir_key(str(root))}  # a link up to ROOT would pull in every class again
    notes: dict[str, list[str]] = {"links_skipped": [], "broken_links": []}
    ids: list[str] = []
    sizes: list[int] = []
    index: list[int] = []
    for c, name in enumerate(classes):
        found: list[tuple[str, int]] = []
        _walk(str(root / name), f"{name}/", found, visited, notes)
        found.sort()  # by path relative to --root: the row order of a --features .npy
        if not found:
            raise GLTError(f"class folder {root / name} has no images ({', '.join(IMAGE_EXTENSIONS[:4])}, ...)")
        ids.extend(f for f, _ in found)
        sizes.extend(s for _, s in found)
        index.extend([c] * len(found))
    if notes["links_skipped"]:
        n = len(notes["links_skipped"])
        log(f"warning: skipped {n} linked folder{'s' if n > 1 else ''} already scanned (a link loop, or a second "
            f"link to the same folder), e.g. {notes['links_skipped'][0]}")
    if notes["broken_links"]:
        n = len(notes["broken_links"])
        log(f"warning: skipped {n} broken link{'s' if n > 1 else ''} to images, e.g. {notes['broken_links'][0]}")
    return pretext.ImageList(root, ids, classes, np.asarray(index, np.int64), np.asarray(sizes, np.int64),
                             skipped=notes)


# ---- options ----------------------------------------------------------------------------------------
@dataclass
class SizeOptions:
    """Recipe sizes; None = the preset's value (ImageNet) or scaled to the data (folder)."""

    test_cbl: int | None = None
    test_glt: int | None = None
    val_glt: int | None = None
    cbl_size: int | None = None
    val_cbl: int | None = None
    gbl_max: int | None = None  # None: the most every class can give (at most 20); the imagenet preset: 20
    counts: str | None = None  # JSON file: the requested `glt` pool size per class rank
    imbalance: float = 10.0
    max_count: int | None = None


IMAGENET_SIZES = dict(test_cbl=60, test_glt=60, val_glt=30, cbl_size=145, val_cbl=30, gbl_max=recipe.GBL_MAX)


@dataclass
class BuildOptions:
    root: str
    out: str
    seed: int = 0
    name: str | None = None
    overwrite: bool = False
    features: str | None = None  # a .npy file or a feature-cache folder of an earlier build
    cache: str | None = None  # default: OUT.cache next to OUT
    strict: bool = False
    extractor: pretext.ExtractorConfig = field(default_factory=pretext.ExtractorConfig)
    kmeans: str = "sklearn"
    n_init: int = 3
    clusters: int = 6
    jobs: int | None = None  # classes clustered in parallel (default: one per CPU)
    sizes: SizeOptions = field(default_factory=SizeOptions)
    preset: str = "folder"  # "imagenet": the published sizes and class-count profile
    progress: bool = True


def read_counts(path: str | os.PathLike) -> list[int]:
    """A class-count profile: a JSON list of ints, or an object with a 'counts' list (the packaged format)."""
    obj = read_json(path, "class-count file")
    counts = obj.get("counts") if isinstance(obj, dict) else obj
    if not isinstance(counts, list) or not all(isinstance(x, int) and x >= 0 for x in counts) or not counts:
        raise GLTError(f"class-count file {path}: expected a list of non-negative integers (or {{\"counts\": [...]}})")
    return counts


def imagenet_counts() -> list[int]:
    """The published ImageNet-GLT class-count profile shipped in the package (1,000 classes, 214,005 images)."""
    import importlib.resources
    import json

    text = importlib.resources.files("glt.resources").joinpath("imagenet_glt_class_counts.json").read_text()
    return json.loads(text)["counts"]


def given_sizes(opts: BuildOptions) -> dict:
    """The sizes fixed before the data is seen: given on the command line, or the imagenet preset's."""
    s = opts.sizes
    given = dict(test_cbl=s.test_cbl, test_glt=s.test_glt, val_glt=s.val_glt, cbl_size=s.cbl_size, val_cbl=s.val_cbl,
                 gbl_max=s.gbl_max)
    if opts.preset == "imagenet":
        given = {k: IMAGENET_SIZES[k] if v is None else v for k, v in given.items()}
    for key, v in given.items():
        if v is not None and v < 0:
            name = "test-gbl-max" if key == "gbl_max" else key.replace("_", "-")
            raise GLTError(f"--{name} must be >= 0, got {v}")
    return given


def class_minimum(opts: BuildOptions) -> recipe.ClassMinimum:
    """The fewest images a class may have with these options (docs/build.md, "How many images a class needs")."""
    g = given_sizes(opts)
    return recipe.minimum_class_size(test_cbl=g["test_cbl"], val_cbl=g["val_cbl"], cbl_cap=g["cbl_size"],
                                     gbl_max=g["gbl_max"])


def check_class_sizes(counts: np.ndarray, names: list[str], opts: BuildOptions, what: str = "images") -> None:
    """Refuse a class with fewer images than the per-class splits need (or than k-means has clusters)."""
    need = class_minimum(opts)
    least = max(need.total, opts.clusters)
    short = np.flatnonzero(np.asarray(counts) < least)
    if len(short):
        c = int(short[np.argmin(np.asarray(counts)[short])])
        others = f"; {len(short) - 1} more classes are short" if len(short) > 1 else ""
        why = need.describe() if need.total >= opts.clusters else "one per k-means cluster"
        raise GLTError(
            f"class '{names[c]}' has {int(counts[c])} {what}, a class needs at least {least} for the splits "
            f"({why}){others}; see docs/build.md, 'How many images a class needs'"
        )


def resolve_sizes(opts: BuildOptions, group_sizes: np.ndarray, class_names: list[str] | None = None) -> recipe.RecipeSizes:
    s = opts.sizes
    C = len(group_sizes)
    given = given_sizes(opts)
    counts = read_counts(s.counts) if s.counts else None
    if opts.preset == "imagenet" and counts is None:
        counts = imagenet_counts()
        if len(counts) != C:
            raise GLTError(
                f"the ImageNet-GLT class-count profile has {len(counts)} classes, {opts.root} has {C}; "
                "use --counts FILE, or `glt build folder` for other datasets"
            )
    if counts is not None and len(counts) != C:
        raise GLTError(f"class-count file {s.counts} has {len(counts)} entries, {opts.root} has {C} classes")
    if s.imbalance < 1:
        raise GLTError(f"--imbalance must be >= 1 (largest / smallest class), got {s.imbalance}")
    return recipe.scaled_sizes(
        group_sizes,
        test_cbl=given["test_cbl"],
        test_glt=given["test_glt"],
        val_glt=given["val_glt"],
        cbl_cap=given["cbl_size"],
        val_cbl=given["val_cbl"],
        glt_counts=counts,
        imbalance=s.imbalance,
        max_count=s.max_count,
        gbl_max=given["gbl_max"],
        class_names=class_names,
    )


# ---- the build ----------------------------------------------------------------------------------------
TRACK_LAYOUT = {  # benchmark split -> what the recipe carved
    "glt/train": "glt/train",
    "glt/val": "glt/val",
    "glt/test_glt": "glt/test_glt",
    "glt/test_cbl": "test_cbl",
    "glt/test_gbl": "test_gbl",
    "cbl/train": "cbl/train",
    "cbl/val": "cbl/val",
    "cbl/test_cbl": "test_cbl",
    "cbl/test_gbl": "test_gbl",
}


def load_features(opts: BuildOptions, images: pretext.ImageList) -> pretext.FeatureStore:
    if opts.features:
        path = Path(opts.features)
        if path.is_dir():
            return pretext.load_feature_cache(path, images)
        if not path.is_file():
            raise GLTError(f"feature file not found: {path}")
        return pretext.load_feature_array(path, images)
    cache = Path(opts.cache) if opts.cache else Path(str(Path(opts.out)) + ".cache")
    return pretext.extract_features(images, cache, opts.extractor, strict=opts.strict, progress=opts.progress)


def build_into(
    dest: Path, opts: BuildOptions, images: pretext.ImageList, path_prefix: str | None = None, info: dict | None = None
) -> Manifest:
    """Run the recipe on `images` and write the benchmark into `dest` (an existing, empty folder).
    Split paths are `path_prefix + id` when given (images inside the benchmark), else absolute."""
    preflight(opts, images)
    store = load_features(opts, images)
    bad = np.flatnonzero(~store.ok)
    if len(bad):
        log(f"skipped {len(bad)} unreadable images (first: {images.root / images.ids[bad[0]]}); --strict makes this an error")
        readable = np.bincount(images.class_index[store.ok], minlength=images.num_classes)
        check_class_sizes(readable, images.class_names, opts, "readable images")
    attr_all = pretext.pretext_attributes(
        store, images.class_names, k=opts.clusters, groups=NUM_ATTRIBUTES, method=opts.kmeans,
        n_init=opts.n_init, seed=opts.seed, jobs=opts.jobs, progress=opts.progress,
    )
    keep = np.flatnonzero(store.ok)
    C = images.num_classes
    counts = np.bincount(images.class_index[keep], minlength=C)
    label_of_class = recipe.rank_classes(counts, images.class_names)
    names = [""] * C
    for c, lab in enumerate(label_of_class):
        names[lab] = images.class_names[c]
    label = label_of_class[images.class_index[keep]]
    attribute = attr_all[keep].astype(np.int64)
    group_sizes = np.bincount(label * NUM_ATTRIBUTES + attribute, minlength=C * NUM_ATTRIBUTES).reshape(C, -1)
    sizes = resolve_sizes(opts, group_sizes, names)

    rng = np.random.default_rng(np.random.SeedSequence([opts.seed, 2]))
    order_key = rng.permutation(len(keep))
    draw_key = rng.permutation(len(keep))
    carving = recipe.carve(label, attribute, order_key, draw_key, sizes, C, names)
    balance = balance_report(carving, label, sizes, names)
    for name, entry in balance.items():
        if not entry["images"]:
            raise GLTError(f"{SPLIT_TITLES[name]} would be empty: {_empty_reason(name, sizes)}")
    warn_balance(balance, sizes, names, group_sizes, given_sizes(opts)["gbl_max"] is None)

    freq = recipe.frequency_groups(C)
    ids = np.asarray(images.ids, dtype=object)[keep]
    if path_prefix is None:
        root = images.root.resolve()
        paths = np.asarray([str(root / i) for i in ids], dtype=object)
    else:
        paths = np.asarray([path_prefix + i for i in ids], dtype=object)
    carved = {
        k: SplitTable(ids[v], paths[v], label[v], freq[label[v]], attribute[v]) for k, v in carving.splits.items()
    }
    tables = {split: carved[src] for split, src in TRACK_LAYOUT.items()}
    pool = sum(np.bincount(label[carving.splits[k]], minlength=C) for k in ("glt/train", "glt/val", "glt/test_glt"))
    requested = recipe.ratio_split(np.asarray(sizes.glt_counts, dtype=np.int64), sizes.ratio).sum(axis=1)
    manifest = Manifest(
        name=opts.name or (f"{opts.preset}-glt" if opts.preset == "imagenet" else f"{images.root.resolve().name}-glt"),
        classes=names,
        attribute_kind="index",
        num_attributes=NUM_ATTRIBUTES,
        attribute_names=[f"pretext attribute {a} (clusters {2 * a + 1}+{2 * a + 2} by size)" for a in range(NUM_ATTRIBUTES)]
        if opts.clusters == 6 else [f"pretext attribute {a}" for a in range(NUM_ATTRIBUTES)],
        image_style="imagenet",
        image_size=112,
        kind="imagenet_glt",  # the ImageNet-GLT recipe, whatever the images (imagenet, folder, torchvision)
        info={
            "builder": opts.preset,
            "recipe": "ImageNet-GLT (docs/build.md)",
            **(info or {"root": str(images.root.resolve())}),
            "seed": opts.seed,
            "images": len(images),
            "unreadable_skipped": int(len(bad)),
            "links_skipped": len(images.skipped.get("links_skipped", [])),
            "features": _feature_info(opts),
            "clustering": {"method": opts.kmeans, "clusters": opts.clusters, "n_init": opts.n_init,
                           "merged_into": NUM_ATTRIBUTES},
            "sizes": sizes.to_dict(),
            "glt_pool": {"requested": carving.glt_requested, "obtained": carving.glt_pool,
                         "short": {names[c]: [int(pool[c]), int(requested[c])] for c in np.flatnonzero(pool < requested)}},
            "classes_without_test_gbl": [names[c] for c in carving.classes_without_gbl],
            "balance": balance,
            "frequency_rule": f"class rank < {recipe.FREQUENCY_BOUNDS[0]} C many, < {recipe.FREQUENCY_BOUNDS[1]} C medium, else few",
        },
    )
    write_benchmark(dest, manifest, tables, unique_ids=True)
    _write_reports(dest)
    return manifest


SPLIT_TITLES = {
    "glt/train": "Train-GLT", "glt/val": "Val (track glt)", "glt/test_glt": "Test-GLT", "glt/test_cbl": "Test-CBL",
    "glt/test_gbl": "Test-GBL", "cbl/train": "Train-CBL", "cbl/val": "Val (track cbl)", "cbl/test_cbl": "Test-CBL",
    "cbl/test_gbl": "Test-GBL",
}
LONG_TAILED = ("glt/train", "glt/val", "glt/test_glt")  # drawn i.i.d. from the long-tailed pool: no per-class target


def _empty_reason(split: str, sizes: recipe.RecipeSizes) -> str:
    if split.endswith("test_gbl"):
        return (f"every class has a pretext attribute of fewer than {sizes.gbl_divisor} images"
                if sizes.gbl_max else "--test-gbl-max is 0")
    if split == "cbl/train":
        return (f"the class-balanced track ({sizes.cbl_cap} per class) leaves nothing after Val-CBL "
                f"({sizes.val_cbl}); raise --cbl-size or lower --val-cbl")
    option = {"glt/val": "--val-glt", "glt/test_glt": "--test-glt", "cbl/val": "--val-cbl",
              "glt/test_cbl": "--test-cbl", "cbl/test_cbl": "--test-cbl"}.get(split)
    return f"{option} is 0" if option else "the class sizes leave it no image"


def balance_report(carving: recipe.Carving, label: np.ndarray, sizes: recipe.RecipeSizes, names: list[str]) -> dict:
    """Per benchmark split: images, the smallest and largest class, largest / smallest present class, the
    classes it misses and, for the splits with a per-class target, that target and the classes short of it."""
    C, A = len(names), len(sizes.ratio)
    q = lambda n: int(recipe.ratio_split(n, sizes.ratio).sum())  # noqa: E731
    targets = {
        "test_gbl": sizes.gbl_max * A,
        "test_cbl": q(sizes.test_cbl),
        "cbl/val": q(sizes.val_cbl),
        "cbl/train": q(sizes.cbl_cap) - q(sizes.val_cbl),
    }
    out = {}
    for split, src in TRACK_LAYOUT.items():
        counts = np.bincount(label[carving.splits[src]], minlength=C)
        present = counts[counts > 0]
        entry = {
            "images": int(counts.sum()),
            "min": int(counts.min()),
            "max": int(counts.max()),
            "imbalance": round(float(present.max() / present.min()), 3) if len(present) else None,
            "missing": [names[c] for c in np.flatnonzero(counts == 0)],
        }
        if src in targets:
            entry["target"] = targets[src]
            entry["short"] = {names[c]: int(counts[c]) for c in np.flatnonzero(counts < targets[src])}
        out[split] = entry
    return out


def _listing(items: dict[str, int] | list[str], limit: int = 8) -> str:
    keys = list(items)
    text = ", ".join(f"'{k}' {items[k]}" if isinstance(items, dict) else f"'{k}'" for k in keys[:limit])
    return text + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def warn_balance(balance: dict, sizes: recipe.RecipeSizes, names: list[str], group_sizes: np.ndarray,
                 scaled_gbl: bool) -> None:
    """One stderr line for each thing the recipe could not balance (all of it is in info.balance too)."""
    C, A = len(names), len(sizes.ratio)
    gbl = balance["glt/test_gbl"]
    if scaled_gbl and 0 < sizes.gbl_max < recipe.GBL_MAX:
        per = recipe.gbl_per_attribute(group_sizes, recipe.GBL_MAX, sizes.gbl_divisor)
        c = int(np.argmin(np.where(per > 0, per, 1 << 30)))
        log(f"Test-GBL: {sizes.gbl_max} images per class and attribute, the most every class can give (at most "
            f"{recipe.GBL_MAX}, and a quarter of a class's smallest attribute: '{names[c]}' has "
            f"{group_sizes[c].tolist()} per attribute)")
    if gbl["short"]:
        per = recipe.gbl_per_attribute(group_sizes, sizes.gbl_max, sizes.gbl_divisor)
        common = int(per[per > 0].min()) if (per > 0).any() else 0
        if scaled_gbl or not common or common == sizes.gbl_max:
            hint = f"a class gets none when its smallest pretext attribute has fewer than {sizes.gbl_divisor} images"
        else:
            hint = f"--test-gbl-max {common} gives every class that can give any the same {A * common}"
        log(f"warning: Test-GBL is not class-balanced: {len(gbl['short'])} of {C} classes have fewer than "
            f"{gbl['target']} images ({sizes.gbl_max} per attribute): {_listing(gbl['short'])}; {hint}")
    train = balance["glt/train"]
    for split in LONG_TAILED:
        b = balance[split]
        if b["missing"]:
            hint = ("lower --test-glt / --val-glt or --imbalance" if split == "glt/train" else
                    "raise --test-glt / --val-glt, or lower --imbalance")
            log(f"warning: {SPLIT_TITLES[split]} has no image of {len(b['missing'])} of {C} classes "
                f"({_listing(b['missing'])}) after the i.i.d. draws from the long-tailed pool; {hint}")
    for split in ("glt/test_glt", "glt/val"):
        b = balance[split]
        if b["imbalance"] is not None and train["imbalance"] is not None and b["imbalance"] > train["imbalance"]:
            log(f"warning: {SPLIT_TITLES[split]} is more imbalanced than Train-GLT ({b['imbalance']:.1f} vs "
                f"{train['imbalance']:.1f}, largest / smallest class present; {b['images']} images drawn i.i.d., "
                f"{b['min']} to {b['max']} per class)")


def preflight(opts: BuildOptions, images: pretext.ImageList) -> None:
    """Everything checkable before features are computed (nothing is written before it passes)."""
    C = images.num_classes
    if opts.sizes.counts:
        counts = read_counts(opts.sizes.counts)
        if len(counts) != C:
            raise GLTError(f"class-count file {opts.sizes.counts} has {len(counts)} entries, {opts.root} has {C} classes")
    elif opts.preset == "imagenet" and len(imagenet_counts()) != C:
        raise GLTError(
            f"the ImageNet-GLT class-count profile has {len(imagenet_counts())} classes, {opts.root} has {C}; "
            "use --counts FILE, or `glt build folder` for other datasets"
        )
    if opts.sizes.imbalance < 1:
        raise GLTError(f"--imbalance must be >= 1 (largest / smallest class), got {opts.sizes.imbalance}")
    check_class_sizes(np.bincount(images.class_index, minlength=C), images.class_names, opts)


def _feature_info(opts: BuildOptions) -> dict:
    if opts.features:
        return {"file": str(Path(opts.features).resolve())}
    e = opts.extractor
    return {**e.key(), "weights_file": e.weights_file}


def _write_reports(dest: Path) -> None:
    from glt.benchmark.original import export_original
    from glt.benchmark.stats import write_example_grid, write_statistics

    export_original(dest, dest / "original", name=None)
    write_example_grid(dest)
    write_statistics(dest)


def build_folder(opts: BuildOptions) -> Path:
    """Build the benchmark of `opts.root` into `opts.out` (atomically) and return its path."""
    _check_options(opts)
    images = scan_folder(opts.root)
    preflight(opts, images)
    with build_output(opts.out, opts.overwrite, log) as tmp:
        build_into(tmp, opts, images)
    return Path(opts.out)


def _check_options(opts: BuildOptions) -> None:
    if opts.seed < 0:
        raise GLTError(f"--seed must be >= 0, got {opts.seed}")
    if opts.jobs is not None and opts.jobs < 1:
        raise GLTError(f"--jobs must be >= 1, got {opts.jobs}")
    if opts.n_init < 1:
        raise GLTError(f"--n-init must be >= 1, got {opts.n_init}")
    if opts.clusters < NUM_ATTRIBUTES or opts.clusters % NUM_ATTRIBUTES:
        raise GLTError(f"--clusters must be a multiple of {NUM_ATTRIBUTES} (they are merged by size into {NUM_ATTRIBUTES} attributes)")
    e = opts.extractor
    if e.random_init and e.weights_file:
        raise GLTError("--random-init and --weights-file exclude each other")
    if e.batch_size < 1 or e.workers < 0:
        raise GLTError("--batch-size must be >= 1 and --workers >= 0")


# ---- command line -------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser, preset: str = "folder") -> None:
    imagenet = preset == "imagenet"
    p.add_argument("--root", required=True, help="the image tree: ROOT/<class>/<images>" + (
        " (the ImageNet train folder)" if imagenet else ""))
    p.add_argument("--out", required=True, help="output benchmark directory")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed and inputs give the same bytes")
    p.add_argument("--name", help="benchmark name; None: " + ("imagenet-glt" if imagenet else "<root folder>-glt"))
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")

    g = p.add_argument_group("features")
    g.add_argument("--backbone", default="resnet50", help="torchvision model name or timm:<name>")
    g.add_argument("--weights", default="IMAGENET1K_V1", help="published weights by name (needs internet once)")
    g.add_argument("--weights-file", help="a local state dict for the backbone (loaded safely, no unpickling)")
    g.add_argument("--random-init", action="store_true",
                   help="a randomly initialised backbone (seeded): ONLY for tests and demos, its clusters mean little")
    g.add_argument("--resize", type=int, default=260, help="resize the shorter side to this")
    g.add_argument("--crop", type=int, default=256, help="then centre-crop to this")
    g.add_argument("--no-normalize", action="store_true",
                   help="skip the ImageNet mean/std normalisation (the original release did)")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader worker processes")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    g.add_argument("--features", metavar="PATH",
                   help="reuse features: an (N, D) .npy (rows = images in folder order; FILE.ids.txt checked if present) "
                   "or the feature-cache folder of an earlier build")
    g.add_argument("--cache", metavar="DIR", help="per-class feature cache, resumable; None: OUT.cache")
    g.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")

    g = p.add_argument_group("clustering")
    g.add_argument("--kmeans", choices=["sklearn", "faiss"], default="sklearn", help="k-means implementation")
    g.add_argument("--n-init", type=int, default=3, help="k-means restarts per class (best inertia kept)")
    g.add_argument("--clusters", type=int, default=6, help="clusters per class, merged by size into 3 attributes")
    g.add_argument("--jobs", type=int, help="classes clustered in parallel; None: one per CPU (same result for any value)")

    scaled = "scaled to the data"
    g = p.add_argument_group("split sizes (per class unless said otherwise)")
    dflt = (lambda k: IMAGENET_SIZES[k]) if imagenet else (lambda k: None)
    g.add_argument("--test-gbl-max", dest="gbl_max", type=int, default=recipe.GBL_MAX if imagenet else None,
                   help="Test-GBL: at most this many per attribute (and a quarter of the class's smallest attribute)"
                   + ("" if imagenet else "; None: the most every class can give, at most 20 (class-balanced)"))
    g.add_argument("--test-cbl", type=int, default=dflt("test_cbl"), help="Test-CBL, split 7:2:1" + ("" if imagenet else f"; None: {scaled}"))
    g.add_argument("--test-glt", type=int, default=dflt("test_glt"), help="Test-GLT = #classes x this, i.i.d. from the long-tailed pool" + ("" if imagenet else "; None: = --test-cbl"))
    g.add_argument("--val-glt", type=int, default=dflt("val_glt"), help="track glt Val = #classes x this, i.i.d." + ("" if imagenet else "; None: half of --test-cbl"))
    g.add_argument("--cbl-size", type=int, default=dflt("cbl_size"), help="track cbl: every class capped at this, split 7:2:1" + ("" if imagenet else "; None: the most every class can fill"))
    g.add_argument("--val-cbl", type=int, default=dflt("val_cbl"), help="track cbl Val, split 7:2:1" + ("" if imagenet else "; None: half of --test-cbl"))
    g.add_argument("--counts", metavar="FILE", help="requested long-tailed pool size per class rank (JSON list)"
                   + ("; None: the published ImageNet-GLT profile" if imagenet else "; None: exponential, see --imbalance"))
    if not imagenet:
        g.add_argument("--imbalance", type=float, default=10.0, help="largest / smallest class of the exponential profile")
        g.add_argument("--max-count", type=int, help="largest class of the profile; None: what the largest class has left after the test splits")


def options_from_args(args: argparse.Namespace, preset: str = "folder") -> BuildOptions:
    return BuildOptions(
        root=args.root,
        out=args.out,
        seed=args.seed,
        name=args.name,
        overwrite=args.overwrite,
        features=args.features,
        cache=args.cache,
        strict=args.strict,
        extractor=pretext.ExtractorConfig(
            backbone=args.backbone, weights=args.weights, weights_file=args.weights_file, random_init=args.random_init,
            seed=args.seed, resize=args.resize, crop=args.crop, normalize=not args.no_normalize,
            batch_size=args.batch_size, workers=args.workers, device=args.device,
        ),
        kmeans=args.kmeans,
        n_init=args.n_init,
        clusters=args.clusters,
        jobs=args.jobs,
        sizes=SizeOptions(
            test_cbl=args.test_cbl, test_glt=args.test_glt, val_glt=args.val_glt, cbl_size=args.cbl_size,
            val_cbl=args.val_cbl, gbl_max=args.gbl_max, counts=args.counts,
            imbalance=getattr(args, "imbalance", 10.0), max_count=getattr(args, "max_count", None),
        ),
        preset=preset,
        progress=True,
    )


def summary(out: Path, seconds: float) -> str:
    from glt.benchmark import Benchmark

    bench = Benchmark(out)
    sizes = ", ".join(f"{name} {len(bench.split(name))}" for name in bench.manifest.split_names)
    return f"built {bench.name} in {out} ({seconds:.1f} s): {sizes}"


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = build_folder(options_from_args(args))
    print(summary(out, time.perf_counter() - t0))
    return 0
