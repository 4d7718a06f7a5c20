"""Build a GLT benchmark from any class-per-folder image tree (ROOT/<class>/<images>), the ImageNet-GLT
recipe (SPEC 2.1) with every size scaled to the data.

Steps: features of every image from a backbone (resumable per-class cache), k-means into 6 clusters per
class merged by size into 3 pretext attributes, classes ranked by size (label 0 = largest), then Test-GBL,
Test-CBL and the two tracks carved per class. Unless given, the sizes follow the smallest class:
Test-CBL = Test-GLT ~ 60/732 of it (ImageNet-GLT's proportion, a multiple of 10, 10 to 60), Val = half,
the class-balanced track as large as every class can fill, the long-tailed pool exponential from the
largest class down by --imbalance (or --counts FILE).

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
from glt.io import atomic_dir, read_json

HELP = "a GLT benchmark from any class-per-folder image tree (the ImageNet-GLT recipe, sizes scaled to the data)"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jpe")
NUM_ATTRIBUTES = len(recipe.RATIO)


def log(msg: str) -> None:
    print(f"glt: {msg}", file=sys.stderr, flush=True)


# ---- the image tree -----------------------------------------------------------------------------
def _walk(folder: Path, prefix: str, out: list[tuple[str, int]]) -> None:
    with os.scandir(folder) as it:
        entries = list(it)
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            _walk(Path(e.path), f"{prefix}{e.name}/", out)
        elif e.name.lower().endswith(IMAGE_EXTENSIONS):
            out.append((prefix + e.name, e.stat().st_size))


def scan_folder(root: str | os.PathLike) -> pretext.ImageList:
    """Every image under ROOT/<class>/ (subfolders included): classes sorted by folder name, inside a class
    the images sorted by their path relative to ROOT (the id). Hidden files and folders are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise GLTError(f"image folder not found: {root}")
    with os.scandir(root) as it:
        classes = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise GLTError(f"{root} has no class folders (expected {root}/<class>/<images>)")
    ids: list[str] = []
    sizes: list[int] = []
    index: list[int] = []
    for c, name in enumerate(classes):
        found: list[tuple[str, int]] = []
        _walk(root / name, f"{name}/", found)
        found.sort()  # by path relative to --root: the row order of a --features .npy
        if not found:
            raise GLTError(f"class folder {root / name} has no images ({', '.join(IMAGE_EXTENSIONS[:4])}, ...)")
        ids.extend(f for f, _ in found)
        sizes.extend(s for _, s in found)
        index.extend([c] * len(found))
    return pretext.ImageList(root, ids, classes, np.asarray(index, np.int64), np.asarray(sizes, np.int64))


# ---- options ----------------------------------------------------------------------------------------
@dataclass
class SizeOptions:
    """Recipe sizes; None = the preset's value (ImageNet) or scaled to the data (folder)."""

    test_cbl: int | None = None
    test_glt: int | None = None
    val_glt: int | None = None
    cbl_size: int | None = None
    val_cbl: int | None = None
    gbl_max: int = 20
    counts: str | None = None  # JSON file: the requested `glt` pool size per class rank
    imbalance: float = 10.0
    max_count: int | None = None


IMAGENET_SIZES = dict(test_cbl=60, test_glt=60, val_glt=30, cbl_size=145, val_cbl=30)


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


def resolve_sizes(opts: BuildOptions, group_sizes: np.ndarray) -> recipe.RecipeSizes:
    s = opts.sizes
    C = len(group_sizes)
    given = dict(test_cbl=s.test_cbl, test_glt=s.test_glt, val_glt=s.val_glt, cbl_size=s.cbl_size, val_cbl=s.val_cbl)
    counts = read_counts(s.counts) if s.counts else None
    if opts.preset == "imagenet":
        given = {k: IMAGENET_SIZES[k] if v is None else v for k, v in given.items()}
        if counts is None:
            counts = imagenet_counts()
            if len(counts) != C:
                raise GLTError(
                    f"the ImageNet-GLT class-count profile has {len(counts)} classes, {opts.root} has {C}; "
                    "use --counts FILE, or `glt build folder` for other datasets"
                )
    if counts is not None and len(counts) != C:
        raise GLTError(f"class-count file {s.counts} has {len(counts)} entries, {opts.root} has {C} classes")
    for key, v in list(given.items()) + [("gbl_max", s.gbl_max)]:
        if v is not None and v < 0:
            raise GLTError(f"--{key.replace('_', '-')} must be >= 0, got {v}")
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
        gbl_max=s.gbl_max,
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
    store = load_features(opts, images)
    bad = np.flatnonzero(~store.ok)
    if len(bad):
        log(f"skipped {len(bad)} unreadable images (first: {images.root / images.ids[bad[0]]}); --strict makes this an error")
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
    sizes = resolve_sizes(opts, group_sizes)

    rng = np.random.default_rng(np.random.SeedSequence([opts.seed, 2]))
    order_key = rng.permutation(len(keep))
    draw_key = rng.permutation(len(keep))
    carving = recipe.carve(label, attribute, order_key, draw_key, sizes, C, names)
    if carving.classes_without_gbl:
        c = carving.classes_without_gbl[0]
        log(f"{len(carving.classes_without_gbl)} classes get no Test-GBL images: a pretext attribute has fewer than "
            f"{sizes.gbl_divisor} images (e.g. '{names[c]}': {group_sizes[c].tolist()} images per attribute)")

    missing = np.flatnonzero(np.bincount(label[carving.splits["glt/train"]], minlength=C) == 0)
    if len(missing):
        log(f"{len(missing)} classes have no Train-GLT image after the i.i.d. draws (e.g. '{names[missing[0]]}'); "
            "raise their counts or lower --test-glt / --val-glt")
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
    manifest = Manifest(
        name=opts.name or (f"{opts.preset}-glt" if opts.preset == "imagenet" else f"{images.root.resolve().name}-glt"),
        classes=names,
        attribute_kind="index",
        num_attributes=NUM_ATTRIBUTES,
        attribute_names=[f"pretext attribute {a} (clusters {2 * a + 1}+{2 * a + 2} by size)" for a in range(NUM_ATTRIBUTES)]
        if opts.clusters == 6 else [f"pretext attribute {a}" for a in range(NUM_ATTRIBUTES)],
        image_style="imagenet",
        image_size=112,
        info={
            "builder": opts.preset,
            "recipe": "SPEC 2.1 (ImageNet-GLT)",
            **(info or {"root": str(images.root.resolve())}),
            "seed": opts.seed,
            "images": len(images),
            "unreadable_skipped": int(len(bad)),
            "features": _feature_info(opts),
            "clustering": {"method": opts.kmeans, "clusters": opts.clusters, "n_init": opts.n_init,
                           "merged_into": NUM_ATTRIBUTES},
            "sizes": sizes.to_dict(),
            "glt_pool": {"requested": carving.glt_requested, "obtained": carving.glt_pool},
            "classes_without_test_gbl": [names[c] for c in carving.classes_without_gbl],
            "frequency_rule": f"class rank < {recipe.FREQUENCY_BOUNDS[0]} C many, < {recipe.FREQUENCY_BOUNDS[1]} C medium, else few",
        },
    )
    write_benchmark(dest, manifest, tables)
    _write_reports(dest)
    return manifest


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
    with atomic_dir(opts.out, opts.overwrite) as tmp:
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
    g.add_argument("--test-gbl-max", dest="gbl_max", type=int, default=20,
                   help="Test-GBL: at most this many per attribute (and a quarter of the smallest attribute)")
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
