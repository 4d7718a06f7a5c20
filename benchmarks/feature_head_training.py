"""Head training on a frozen-feature store at ImageNet-GLT's size: one epoch of `glt.engine.trainer.train` with
`data.features` (the "features" backbone, a linear head) over 115,000 x 2048 random float16 features of 1,000
long-tailed classes (Train-GLT's size), for ce and blsoftmax at batch 256 and 512.

A synthetic benchmark (split tables only: no image is read) and a store in `glt features`' layout are written
once into --work (about 0.5 GB; val and the three test splits get --eval-rows rows each). Each training runs in
its own process so that its peak RSS (getrusage ru_maxrss: the store read into memory, the model, the loader) is
its own. Reported: the epoch's `train_seconds` (metrics.jsonl: the steps and data loading, validation
excluded), the run's wall time (validation, checkpoints and the final test included) and the peak RSS.

    python benchmarks/feature_head_training.py [--work /tmp/glt-feature-bench] [--methods ce,blsoftmax]
        [--batches 256,512] [--threads 2] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLASSES, ROWS, DIM = 1000, 115_000, 2048


def long_tail(total: int, classes: int) -> np.ndarray:
    """Class counts from 1,280 down to 5 (ImageNet-LT's range), geometric, scaled to `total` rows."""
    raw = 1280.0 * (5 / 1280) ** (np.arange(classes) / (classes - 1))
    counts = np.maximum(1, np.floor(raw * total / raw.sum())).astype(int)
    counts[0] += total - counts.sum()
    return counts


def write_inputs(work: Path, eval_rows: int) -> tuple[Path, Path]:
    from glt.benchmark import Manifest, SplitTable, write_benchmark
    from glt.features.store import FORMAT, RECORD, VERSION, split_files
    from glt.io import write_json

    bench, store = work / "bench", work / "store"
    if (store / RECORD).is_file():
        return bench, store
    rng = np.random.default_rng(0)
    sizes = {"glt/train": long_tail(ROWS, CLASSES)}
    for split in ("glt/val", "glt/test_glt", "glt/test_cbl", "glt/test_gbl"):
        sizes[split] = np.full(CLASSES, max(1, eval_rows // CLASSES))
    tables, start = {}, 0
    for name, counts in sizes.items():
        labels = np.repeat(np.arange(CLASSES), counts)
        ids = np.array([f"s{i:07d}" for i in range(start, start + len(labels))])
        start += len(labels)
        freq = np.where(labels < 390, 0, np.where(labels < 835, 1, 2))
        tables[name] = SplitTable(ids, np.array([f"images/{i}.jpg" for i in ids]), labels, freq,
                                  rng.integers(0, 6, len(labels)))
    manifest = Manifest(name="synthetic-imagenet-glt-size", classes=[f"c{c}" for c in range(CLASSES)],
                        num_attributes=6, image_style="imagenet", image_size=112, info={"generator": __file__})
    write_benchmark(bench, manifest, tables)
    record = {"format": FORMAT, "version": VERSION, "backbone": "random", "feature_dim": DIM, "dtype": "float16",
              "splits": {n: {"rows": len(t)} for n, t in tables.items()}}
    for name, table in tables.items():
        npy, ids, prog = split_files(store, name)
        npy.parent.mkdir(parents=True, exist_ok=True)
        np.save(ids, table.id.astype(str))
        feats = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float16, shape=(len(table), DIM))
        for i in range(0, len(table), 8192):  # in chunks: no (N, D) float32 temporary
            n = min(8192, len(table) - i)
            feats[i:i + n] = np.maximum(rng.standard_normal((n, DIM), dtype=np.float32), 0)  # ReLU-like, >= 0
        feats.flush()
        write_json(prog, {"rows": len(table), "rows_done": len(table), "complete": True})
    write_json(store / RECORD, record)
    return bench, store


def one(args) -> None:
    """One training (in its own process): prints a JSON line."""
    from glt.config import build_config
    from glt.engine.trainer import train

    out = Path(args.work) / "runs" / f"{args.method}-{args.batch}-w{args.workers}"
    cfg = build_config(method=args.method, benchmark=str(Path(args.work) / "bench"), overrides=[
        "epochs=1", f"data.batch_size={args.batch}", f"data.num_workers={args.workers}", "progress=false",
        f"threads={args.threads}", f"data.features={Path(args.work) / 'store'}"])
    t0 = time.perf_counter()
    train(cfg, out, overwrite=True)
    wall = time.perf_counter() - t0
    rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    print(json.dumps({"method": args.method, "batch": args.batch, "workers": args.workers,
                      "train_seconds": round(rec["train_seconds"], 2), "run_seconds": round(wall, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/glt-feature-bench")
    p.add_argument("--methods", default="ce,blsoftmax")
    p.add_argument("--batches", default="256,512")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--eval-rows", type=int, default=2000)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one(args)
    t0 = time.perf_counter()
    write_inputs(Path(args.work), args.eval_rows)
    print(f"inputs ready in {time.perf_counter() - t0:.1f} s ({ROWS} x {DIM} float16 train features)", flush=True)
    for method in args.methods.split(","):
        for batch in args.batches.split(","):
            subprocess.run([sys.executable, __file__, "--one", "--work", args.work, "--method", method, "--batch",
                            batch, "--threads", str(args.threads), "--workers", str(args.workers)], check=True)


if __name__ == "__main__":
    main()
