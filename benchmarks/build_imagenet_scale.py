"""How long do clustering and split construction take at full ImageNet scale, and how much memory?

The requirement (issue 5): given precomputed features of ImageNet's shape (1,281,167 x 2048 float16,
1,000 classes), clustering + split construction within 15 minutes on a 2-core machine with
scikit-learn, the faiss speed-up reported (same run), split construction alone under 10 s, memory
under 8 GiB. This script

1. writes random features of that shape as a .npy (uniform [0, 1), ReLU-like; reused when present),
   with ImageNet-like class sizes (732 to 1,300 images, 1,281,167 in all);
2. runs the pretext-attribute step exactly as `glt build imagenet --features FILE` does (the .npy read
   class by class; per class k-means into 6 clusters merged by size into 3) with scikit-learn, then with
   faiss, each in a fresh process, timing each;
3. times the split construction alone (ranking, the published ImageNet-GLT sizes and class-count
   profile, the carving) given the attributes;
4. reports the peak resident memory of each process.

    python benchmarks/build_imagenet_scale.py [--rows 1281167] [--dim 2048] [--classes 1000]
        [--dir /tmp/glt-imagenet-bench] [--n-init 3] [--methods sklearn,faiss] [--json FILE]

With --rows smaller than ImageNet the class sizes are scaled down (a fraction of the full shape).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from glt.builders import folder, pretext, recipe

IMAGENET_ROWS = 1_281_167


def class_counts(rows: int, classes: int, seed: int = 0) -> np.ndarray:
    """ImageNet-like class sizes: most classes at the maximum (1,300 at full scale), the rest down to
    ~56% of it (732), summing to `rows`."""
    rng = np.random.default_rng(seed)
    top = int(round(1300 * rows / IMAGENET_ROWS * 1000 / classes))
    counts = np.full(classes, top, dtype=np.int64)
    deficit = int(counts.sum() - rows)
    floor = int(top * 732 / 1300)
    while deficit > 0:
        c = int(rng.integers(classes))
        cut = min(deficit, int(rng.integers(1, top - floor + 1)), int(counts[c] - floor))
        counts[c] -= max(cut, 0)
        deficit -= max(cut, 0)
    if deficit < 0:
        counts[0] -= deficit
    return counts


def make_features(path: Path, rows: int, dim: int, seed: int = 0, chunk: int = 65536) -> None:
    if path.is_file():
        arr = np.load(path, mmap_mode="r")
        if arr.shape == (rows, dim) and arr.dtype == np.float16:
            print(f"reusing {path} {arr.shape} {arr.dtype}")
            return
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, dim))
    t0 = time.perf_counter()
    for lo in range(0, rows, chunk):
        hi = min(rows, lo + chunk)
        out[lo:hi] = rng.random((hi - lo, dim), dtype=np.float32)
    out.flush()
    del out
    print(f"wrote {path} ({rows} x {dim} float16, {path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s")


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=IMAGENET_ROWS)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--dir", default="/tmp/glt-imagenet-bench")
    p.add_argument("--n-init", type=int, default=3)
    p.add_argument("--methods", default="sklearn,faiss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here too")
    p.add_argument("--cluster-only", metavar="METHOD", help=argparse.SUPPRESS)  # the child process
    args = p.parse_args()

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"features-{args.rows}x{args.dim}.npy"
    if not args.cluster_only:
        make_features(path, args.rows, args.dim)
    counts = class_counts(args.rows, args.classes)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    names = [f"n{c:08d}" for c in range(args.classes)]
    store = pretext.array_store(path, np.load(path, mmap_mode="r"), bounds)
    class_index = np.repeat(np.arange(args.classes), counts)
    if args.cluster_only:
        t0 = time.perf_counter()
        attrs = pretext.pretext_attributes(store, names, method=args.cluster_only, n_init=args.n_init, seed=args.seed)
        seconds = round(time.perf_counter() - t0, 1)
        np.save(d / f"attributes-{args.cluster_only}.npy", attrs)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        (d / f"attributes-{args.cluster_only}.json").write_text(json.dumps({
            "seconds": seconds, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_gib": round(peak_rss_gib(), 2), "load_average": [round(x, 1) for x in os.getloadavg()],
        }))
        print(f"clustering ({args.cluster_only}, n_init={args.n_init}): {seconds} s, peak RSS {peak_rss_gib():.2f} GiB", flush=True)
        return
    result: dict = {"rows": args.rows, "dim": args.dim, "classes": args.classes, "n_init": args.n_init,
                    "class_sizes": [int(counts.min()), int(counts.max())], "seconds": {}}

    # each k-means implementation in its own process: scikit-learn's and faiss's OpenMP runtimes in one
    # process leave idle threads spinning against each other (measured: faiss ~10x slower after sklearn)
    attributes = None
    for method in args.methods.split(","):
        child = d / f"attributes-{method}.json"
        cmd = [sys.executable, __file__, "--rows", str(args.rows), "--dim", str(args.dim), "--classes",
               str(args.classes), "--dir", str(d), "--n-init", str(args.n_init), "--seed", str(args.seed),
               "--cluster-only", method]
        subprocess.run(cmd, check=True)
        r = json.loads(child.read_text())
        result["seconds"][f"clustering_{method}"] = r["seconds"]
        result[f"peak_rss_gib_clustering_{method}"] = r["peak_rss_gib"]
        for key in ("cpu_seconds", "load_average"):  # CPU time: what the run needs of the machine, whatever else runs
            if key in r:
                result[f"{key}_clustering_{method}"] = r[key]
        if attributes is None:
            attributes = np.load(d / f"attributes-{method}.npy")
    # split construction alone, given the attributes: what build_into does after clustering
    t0 = time.perf_counter()
    label_of_class = recipe.rank_classes(np.bincount(class_index, minlength=args.classes), names)
    label = label_of_class[class_index]
    attribute = attributes.astype(np.int64)
    group_sizes = np.bincount(label * 3 + attribute, minlength=args.classes * 3).reshape(args.classes, 3)
    profile = folder.imagenet_counts()
    if args.classes != len(profile):  # a fraction of the classes: the profile resampled to their number
        profile = np.asarray(profile)[np.linspace(0, len(profile) - 1, args.classes).round().astype(int)].tolist()
    sizes = recipe.scaled_sizes(group_sizes, glt_counts=profile, **{k.replace("cbl_size", "cbl_cap"): v
                                                                    for k, v in folder.IMAGENET_SIZES.items()})
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 2]))
    carving = recipe.carve(label, attribute, rng.permutation(len(label)), rng.permutation(len(label)), sizes,
                           args.classes, names)
    result["seconds"]["split_construction"] = round(time.perf_counter() - t0, 2)
    result["split_sizes"] = {k: len(v) for k, v in carving.splits.items()}
    result["peak_rss_gib_splits"] = round(peak_rss_gib(), 2)
    s = result["seconds"]
    if "clustering_sklearn" in s:
        s["clustering_plus_splits_sklearn"] = round(s["clustering_sklearn"] + s["split_construction"], 1)
    if "clustering_sklearn" in s and "clustering_faiss" in s:
        result["faiss_speedup"] = round(s["clustering_sklearn"] / s["clustering_faiss"], 1)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
