"""GPU smoke test: is this GPU set up to train glt models fast? (a few minutes on one modern GPU)

1. Raw training steps of ResNeXt-50 (torchvision resnext50_32x4d, random init, no download, 1,000
   classes) at 112 px, batch 128, on synthetic tensors already on the device: forward + cross-entropy
   + backward + SGD step (momentum 0.9), channels_last, cuDNN autotuning on, for fp32, bf16 autocast
   and fp16 autocast with gradient scaling (torch.amp.GradScaler); images/s and peak GPU memory of
   each, after a warm-up.
2. One short `glt train` (method ce) of the same model on a synthetic 112 px "imagenet"-style benchmark
   of --loop-images JPEGs written to a temp folder (128 px, the test-time resize), with amp=bf16 and
   channels_last=true: images/s of each epoch (train_seconds in metrics.jsonl, data loading included,
   validation excluded; the first epoch includes the warm-up) against the raw figure of the same
   precision. The loop runs with the cuDNN settings `glt train` itself chooses. A loop far below the raw
   figure is starved by its data path when the loader alone (decode + RandomResizedCrop + flip +
   normalise in --workers processes, also shown) is not much faster than the raw figure.

    benchmarks/gpu_smoke.sh                              # the defaults below
    python benchmarks/gpu_smoke.py [--steps 200] [--batch 128] [--precisions fp32,bf16,fp16] [--compile]
    python benchmarks/gpu_smoke.py --device cpu --steps 3 # a dry run of the script on the CPU (tiny batch)

--compile wraps the model in torch.compile (the loop gets compile=true); compilation adds tens of
seconds or more per precision (counted in the warm-up column, not in images/s): pick fewer settings,
e.g. --precisions bf16, to stay within a few minutes.
Without CUDA the script stops with a message unless --device cpu is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NUM_CLASSES = 1000


def fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def raw_throughput(precision: str, args, device: torch.device) -> dict:
    """images/s of plain fwd+bwd+SGD steps on one synthetic batch kept on the device."""
    import torchvision

    dtype = DTYPES[precision]
    torch.manual_seed(0)
    model = torchvision.models.resnext50_32x4d(weights=None, num_classes=NUM_CLASSES).to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    step_model = torch.compile(model) if args.compile else model
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, NUM_CLASSES, (args.batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(step_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    finite = all(torch.isfinite(p).all() for p in model.parameters())
    return {"precision": precision, "images_per_s": args.steps * args.batch / seconds,
            "ms_per_step": 1000 * seconds / args.steps, "peak_gib": peak, "warmup_s": warm_s, "finite": bool(finite)}


def loader_throughput(bench: Path, args, image_size: int) -> float:
    """images/s of the training data path alone (the loop's transforms and loader), second epoch."""
    from glt.benchmark import Benchmark
    from glt.data import SplitDataset, build_transforms, make_loader

    train_tf, _ = build_transforms("imagenet", image_size)
    ds = SplitDataset(Benchmark(bench), "glt/train", train_tf)
    loader = make_loader(ds, args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                         persistent_workers=args.workers > 0)
    n = 0
    for epoch in range(2):  # the first epoch starts the workers
        t0 = time.perf_counter()
        n = sum(len(batch[1]) for batch in loader)
        seconds = time.perf_counter() - t0
    return n / seconds


def loop_run(args, device: torch.device, work: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from loop_throughput import loop_images_per_epoch, write_jpeg_benchmark

    from glt.config import build_config
    from glt.engine.trainer import train

    t0 = time.perf_counter()
    bench = write_jpeg_benchmark(work / "benchmark", args.loop_images, args.batch, (128, 128), NUM_CLASSES,
                                 image_size=args.size)
    write_s = time.perf_counter() - t0
    overrides = [
        "method=ce", f"epochs={args.loop_epochs}", "progress=false", f"device={device}",
        "model.backbone=resnext50_32x4d", f"data.image_size={args.size}", f"data.batch_size={args.batch}",
        f"data.eval_batch_size={args.batch}", f"data.num_workers={args.workers}", f"amp={args.loop_amp}",
        f"channels_last={str(args.channels_last).lower()}", f"compile={str(args.compile).lower()}",
    ]
    if device.type == "cpu":
        overrides.append(f"threads={args.threads}")
    cfg = build_config(benchmark=str(bench), overrides=overrides)
    t0 = time.perf_counter()
    train(cfg, work / "run", overwrite=True)
    wall = time.perf_counter() - t0
    records = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    n = loop_images_per_epoch(args.loop_images, args.batch)
    return {"epochs": [n / r["train_seconds"] for r in records], "wall_s": wall, "write_s": write_s,
            "loader": loader_throughput(bench, args, args.size), "overrides": overrides}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    ap.add_argument("--steps", type=int, default=200, help="timed raw steps per precision (default 200)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (default 20 on CUDA, 30 with --compile, 1 on CPU)")
    ap.add_argument("--batch", type=int, help="batch size (default 128; 8 on CPU)")
    ap.add_argument("--size", type=int, default=112, help="image side (default 112)")
    ap.add_argument("--precisions", help="comma-separated subset of fp32,bf16,fp16 (default all; fp32 on CPU)")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false", help="keep NCHW memory format")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (raw steps and the loop)")
    ap.add_argument("--no-loop", dest="loop", action="store_false", help="skip the `glt train` part")
    ap.add_argument("--loop-images", type=int, help="training images of the loop's benchmark (default 8192; "
                    "2 batches on CPU)")
    ap.add_argument("--loop-epochs", type=int, default=2, help="loop epochs (default 2: the first warms up)")
    ap.add_argument("--loop-amp", choices=("none", "bf16", "fp16"), help="amp of the loop (default bf16; none on CPU)")
    ap.add_argument("--workers", type=int, help="loop loader workers (default min(12, CPUs - 2); 0 on CPU)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for a CPU dry run (default 1)")
    ap.add_argument("--out", help="work folder for the loop's benchmark and run (default: a temp folder)")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device is visible to torch "
              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); nothing to test. "
              "Use --device cpu --steps 3 for a dry run of the script.", file=sys.stderr)
        return 1
    cpu = device.type == "cpu"
    args.batch = args.batch or (8 if cpu else 128)
    args.warmup = args.warmup if args.warmup is not None else (1 if cpu else (30 if args.compile else 20))
    args.loop_images = args.loop_images or (2 * args.batch if cpu else 8192)
    args.workers = args.workers if args.workers is not None else (0 if cpu else max(1, min(12, (os.cpu_count() or 4) - 2)))
    args.loop_amp = args.loop_amp or ("none" if cpu else "bf16")
    precisions = [p.strip() for p in (args.precisions or ("fp32" if cpu else "fp32,bf16,fp16")).split(",") if p.strip()]
    bad = [p for p in precisions if p not in DTYPES]
    if bad:
        ap.error(f"unknown precision(s) {', '.join(bad)}; choose from {', '.join(DTYPES)}")
    if cpu:
        torch.set_num_threads(args.threads)
    loop_cudnn_benchmark = torch.backends.cudnn.benchmark
    # cuDNN autotuning for the raw steps (fixed shapes); the loop then runs with the setting it would
    # have had in `glt train`, so a loop that does not autotune shows up in its ratio
    torch.backends.cudnn.benchmark = not cpu

    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if not cpu else "CPU (dry run)"
    print(f"# glt GPU smoke test: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}")
    print(f"ResNeXt-50 (resnext50_32x4d, {NUM_CLASSES} classes) at {args.size} px, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, channels_last {args.channels_last}, "
          f"compile {args.compile}\n", flush=True)
    print("| precision | images/s | ms / step | peak memory GiB | warm-up s | parameters finite |")
    print("|---|---|---|---|---|---|")
    raw = {}
    for p in precisions:
        if cpu and p == "fp16":
            print("| fp16 | skipped on CPU (GradScaler + fp16 autocast are a CUDA setting) | | | | |", flush=True)
            continue
        r = raw_throughput(p, args, device)
        raw[p] = r
        peak = "-" if cpu else f"{r['peak_gib']:.2f}"
        print(f"| {p} | {fmt(r['images_per_s'])} | {r['ms_per_step']:.1f} | {peak} | "
              f"{r['warmup_s']:.1f} | {r['finite']} |", flush=True)

    if args.loop:
        torch.backends.cudnn.benchmark = loop_cudnn_benchmark
        work = Path(args.out or tempfile.mkdtemp(prefix="glt-gpu-smoke-"))
        loop = loop_run(args, device, work)
        ref = {"none": "fp32"}.get(args.loop_amp, args.loop_amp)
        print(f"\n`glt train` ({' '.join(loop['overrides'])}), {args.loop_images} JPEGs of 128 px "
              f"(written in {loop['write_s']:.1f} s), run folder {work / 'run'}, {loop['wall_s']:.0f} s wall "
              "with validation and start-up:\n")
        print("| | images/s | of raw |")
        print("|---|---|---|")
        base = raw.get(ref, {}).get("images_per_s")
        if base:
            print(f"| raw {ref} steps (above) | {fmt(base)} | 1.000 |")
        for e, v in enumerate(loop["epochs"]):
            note = " (warm-up)" if e == 0 and len(loop["epochs"]) > 1 else ""
            print(f"| loop epoch {e}{note} | {fmt(v)} | {v / base:.3f} |" if base else f"| loop epoch {e}{note} | {fmt(v)} | |")
        rel = f"{loop['loader'] / base:.2f}" if base else ""
        print(f"| data path alone ({args.workers} loader workers, no model) | {fmt(loop['loader'])} | {rel} |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
