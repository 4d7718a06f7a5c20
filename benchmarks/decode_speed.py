"""Decoded + transformed images per second on ONE core: original JPEGs vs the `glt cache` copies.

Builds (or reuses) an "imagenet"-style benchmark of --images natural-looking 500x375 JPEGs (1/f colour
noise, the amplitude spectrum of natural images, saved at quality 90: ~60-120 KB each, like ImageNet's),
writes its cache (`glt.data.image_cache.build_cache`, short side --short-side), then, with
torch.set_num_threads(1) and no DataLoader workers, reads every training image through
`SplitDataset` with the training transform of `build_transforms("imagenet", --size)` (RandomResizedCrop
+ flip + normalise) from the originals and from the cache, passes alternating; images per CPU-second of
the process, best of --repeat passes each (a first untimed pass warms the page cache, so this is decode +
transform, not disk). Also the decode alone and the test transform (resize 128, centre crop 112).

    python benchmarks/decode_speed.py [--dir /tmp/glt-decode-bench] [--images 300] [--size 112]
        [--short-side 128] [--quality 90] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from glt.benchmark import Benchmark, Manifest, SplitTable, write_benchmark
from glt.data import SplitDataset, build_transforms
from glt.data.dataset import read_image
from glt.data.image_cache import build_cache, cache_name, select_cache


def natural_image(rng: np.random.Generator, w: int = 500, h: int = 375) -> np.ndarray:
    """1/f noise (amplitude ~ 1/frequency, as in natural images): a luminance field and two weaker
    chroma fields, mixed to RGB."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(w, h))
    chans = []
    for scale in (1.0, 0.35, 0.35):
        spec = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
        f = np.fft.irfft2(spec, s=(h, w))
        chans.append(scale * (f - f.mean()) / f.std())
    y, cb, cr = chans
    rgb = np.stack([y + 1.4 * cr, y - 0.34 * cb - 0.71 * cr, y + 1.77 * cb], axis=-1)
    rgb = 128 + 45 * rgb + rng.normal(0, 3, rgb.shape)  # a little sensor noise
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_benchmark(root: Path, n: int, seed: int = 0) -> Path:
    if (root / "manifest.json").is_file():
        return root
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        rel = f"images/c{i % 10}/{i:05d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(natural_image(rng)).save(root / rel, "JPEG", quality=90)
        paths.append(rel)
    labels = np.arange(n) % 10
    table = SplitTable(np.array([f"i{i}" for i in range(n)]), np.array(paths), labels, np.zeros(n), np.zeros(n))
    manifest = Manifest(name="decode-bench", classes=[f"c{c}" for c in range(10)], image_style="imagenet",
                        image_size=112, info={"generator": "benchmarks/decode_speed.py", "seed": seed})
    write_benchmark(root, manifest, {"glt/train": table})
    return root


def one_pass(ds: SplitDataset, decode_only: bool) -> float:
    """CPU seconds of this process for one pass over the dataset (CPU time, not wall time: other jobs on
    a shared machine slow the wall clock, much less the work this process does)."""
    paths = ds._paths
    t = time.process_time()
    for i in range(len(ds)):
        read_image(paths[i]) if decode_only else ds[i]
    return time.process_time() - t


def folder_mib(paths) -> float:
    return sum(os.path.getsize(p) for p in paths) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/glt-decode-bench")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--short-side", type=int, default=128)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    root = make_benchmark(Path(args.dir), args.images)
    t = time.perf_counter()
    r = build_cache(root, args.short_side, args.quality, workers=1, overwrite=True, progress=False)
    cache_s = time.perf_counter() - t

    train_tf, test_tf = build_transforms("imagenet", args.size)
    choices = {"originals": "off", "cache": cache_name(args.short_side, args.quality)}
    # measurement -> (dataset, decode only)
    kinds = {"decode_img_s": ("train", True), "train_img_s": ("train", False), "test_img_s": ("test", False)}
    out = {"images": r.images, "size": args.size, "short_side": args.short_side, "quality": args.quality,
           "cache_build_s_one_process": round(cache_s, 2)}
    datasets = {}
    for label, choice in choices.items():
        bench = Benchmark(root)
        cache = select_cache(bench, choice, args.size)
        datasets[label] = {"train": SplitDataset(bench, "glt/train", train_tf, image_cache=cache),
                           "test": SplitDataset(bench, "glt/train", test_tf, image_cache=cache)}
        paths = datasets[label]["train"]._paths
        with Image.open(paths[0]) as im:
            out[label] = {"example_size": im.size, "MiB": round(folder_mib(paths), 1)}
    # passes alternate between originals and cache (first one untimed: page cache, allocator), best of
    # --repeat each, so both sides see the same machine
    best = {(label, k): float("inf") for label in choices for k in kinds}
    for rep in range(args.repeat + 1):
        for k, (which, decode_only) in kinds.items():
            for label in choices:
                s = one_pass(datasets[label][which], decode_only)
                if rep:
                    best[label, k] = min(best[label, k], s)
    for (label, k), s in best.items():
        out[label][k] = round(r.images / s, 1)
    for k in kinds:
        out[f"ratio_{k}"] = round(out["cache"][k] / out["originals"][k], 2)

    print(f"{r.images} images, {out['originals']['example_size']} -> {out['cache']['example_size']}; "
          f"cache written in {cache_s:.1f} s by one process; {out['originals']['MiB']} MiB -> {out['cache']['MiB']} MiB")
    print(f"{'one core, images/CPU-s':<28}{'originals':>12}{'cache':>12}{'ratio':>8}")
    for key, name in (("decode_img_s", "decode only"), ("train_img_s", "decode + train transform"),
                      ("test_img_s", "decode + test transform")):
        print(f"{name:<28}{out['originals'][key]:>12.1f}{out['cache'][key]:>12.1f}{out['ratio_' + key]:>7.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
