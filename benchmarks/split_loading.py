"""How long does `SplitTable.read` take on a split of a million rows?

The requirement (DESIGN.md): "a columnar or line format that loads a million rows in well under a
second". This script writes two synthetic split tables with `SplitTable.write` and times
`SplitTable.read` (best of --repeat runs, after one warm-up read so the page cache is hot):

- ``index``: ImageNet-like ids/paths (``n01440764/n01440764_10026.JPEG`` under an absolute root),
  1,000 classes, one attribute index per row;
- ``multilabel``: the same plus a 204-long binary attribute vector per row (MSCOCO-GLT style).

    python benchmarks/split_loading.py [--rows 1000000] [--repeat 5] [--dir /tmp/glt-split-bench]
    python benchmarks/split_loading.py --import-export   # instead: `glt import` / `glt export` at full size

It also times the pieces of `read` separately (Parquet decode, string columns to numpy, the
attribute vector column, stored bit-packed) so a slow total points at its cause.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from glt.benchmark import SplitTable
from glt.benchmark.original import export_original, run_import

ROOT = "/data4/imagenet/ILSVRC/Data/CLS-LOC/train"


def make_table(rows: int, vector_length: int, seed: int = 0) -> SplitTable:
    rng = np.random.default_rng(seed)
    wnids = np.array([f"n{n:08d}" for n in rng.choice(10**8, size=1000, replace=False)], dtype=object)
    label = np.sort(rng.integers(0, 1000, size=rows))
    image = rng.integers(0, 10**6, size=rows)
    ids = np.array([f"{wnids[c]}/{wnids[c]}_{i}.JPEG" for c, i in zip(label.tolist(), image.tolist())], dtype=object)
    paths = np.array([f"{ROOT}/{i}" for i in ids.tolist()], dtype=object)
    frequency = np.digitize(label, [400, 850]).astype(np.int8)
    attributes = None
    if vector_length:  # ~5% of the attributes present, as in COCO-Attributes
        attributes = (rng.integers(0, 20, size=(rows, vector_length), dtype=np.uint8) == 0).view(np.uint8)
    attribute = rng.integers(0, 3, size=rows)
    return SplitTable(ids, paths, label, frequency, attribute, attributes)


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up: page cache, imports
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def profile(path: Path, repeat: int) -> dict[str, float]:
    """Time `SplitTable.read` and the steps it is made of."""
    out = {"SplitTable.read": best_of(lambda: SplitTable.read(path, 1000), repeat)}
    out["pq.read_table"] = best_of(lambda: pq.read_table(path), repeat)
    table = pq.read_table(path)
    out["id+path to numpy"] = best_of(
        lambda: (table.column("id").to_numpy(), table.column("path").to_numpy()), repeat
    )
    if "attributes" in table.column_names:
        out["pq.read_table(attributes only)"] = best_of(lambda: pq.read_table(path, columns=["attributes"]), repeat)
        out["pq.read_table(without attributes)"] = best_of(
            lambda: pq.read_table(path, columns=[c for c in table.column_names if c != "attributes"]), repeat
        )
    return out


# ---- import / export of original files at the published ImageNet-GLT sizes ------------------------
def imagenet_glt_files(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Synthetic files in the original ImageNet-GLT layout with the published split sizes (docs/benchmarks.md, ImageNet-GLT)."""
    rnd = random.Random(seed)
    wnids = [f"n{n:08d}" for n in rnd.sample(range(10**8), 1000)]
    head = {"cat2id": {w: str(i) for i, w in enumerate(wnids)}, "id2cat": {str(i): w for i, w in enumerate(wnids)}}

    def split(n: int, offset: int) -> dict:
        cls = rnd.choices(range(1000), k=n)
        paths = [f"{ROOT}/{wnids[c]}/{wnids[c]}_{offset + i}.JPEG" for i, c in enumerate(cls)]
        return {"label": {p: str(c) for p, c in zip(paths, cls)},
                "frequency": {p: 0 if c < 400 else 1 if c < 850 else 2 for p, c in zip(paths, cls)},
                "attribute": {p: rnd.randrange(3) for p in paths}}

    test_bl, test_bbl = split(60_000, 0), split(60_000, 10**6)
    glt = {**head, "train": split(113_460, 2 * 10**6), "val": split(30_000, 3 * 10**6),
           "test_lt": split(60_000, 4 * 10**6), "test_bl": test_bl, "test_bbl": test_bbl}
    cbl = {**head, "train": split(114_000, 5 * 10**6), "val": split(30_000, 6 * 10**6),
           "test_lt": {"label": {}, "frequency": {}, "attribute": {}}, "test_bl": test_bl, "test_bbl": test_bbl}
    lt, bl = folder / "imagenet_sup_intra_lt_inter_lt.json", folder / "imagenet_sup_intra_lt_inter_bl.json"
    lt.write_text(json.dumps(glt))
    bl.write_text(json.dumps(cbl))
    return lt, bl


def time_import_export(folder: Path) -> None:
    lt, bl = imagenet_glt_files(folder)
    mib = (lt.stat().st_size + bl.stat().st_size) / 2**20
    t0 = time.perf_counter()
    r = run_import(lt, bl, folder / "bench", path_map=["/data4=/nonexistent"], overwrite=True)
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    export_original(folder / "bench", folder / "export", overwrite=True)
    export_s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"original files: {sum(r.rows.values()):,} rows, {r.images:,} distinct images, {mib:.0f} MiB of JSON")
    print(f"  glt import {import_s:.1f} s, glt export {export_s:.1f} s, peak memory {rss:.2f} GiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dir", type=Path, default=None, help="where to write the tables (default: a temp folder)")
    p.add_argument("--import-export", action="store_true",
                   help="instead, time glt import/export of original files at the published ImageNet-GLT sizes")
    args = p.parse_args()
    tmp = tempfile.TemporaryDirectory() if args.dir is None else None
    folder = Path(tmp.name) if tmp else args.dir
    folder.mkdir(parents=True, exist_ok=True)
    for kind, width in () if args.import_export else (("index", 0), ("multilabel", 204)):
        table = make_table(args.rows, width)
        path = folder / f"{kind}.parquet"
        t0 = time.perf_counter()
        table.write(path)
        write_s = time.perf_counter() - t0
        print(f"{kind}: {args.rows:,} rows, {path.stat().st_size / 2**20:.1f} MiB, write {write_s:.2f} s")
        for step, seconds in profile(path, args.repeat).items():
            print(f"  {step:<36} {seconds:.3f} s")
    if args.import_export:
        time_import_export(folder)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
