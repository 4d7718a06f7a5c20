"""Training throughput of glt's loop against the raw limit of the same model on the same machine.

Default (the embedded benchmark): build ColorDigits-GLT (or take --benchmark) and run
`glt.engine.trainer.train` on it (method ce, the benchmark's "small" preset: 16 px, small_cnn width 16,
batch 64, one thread). Between the loop's epochs (from its metrics logger, after its `train_seconds`
was taken) run one "raw" epoch: a second copy of the same model, the same batch size, the same training
images already in memory as one float tensor (preprocessed and augmented once), and nothing but
forward + loss (`method.training_step`) + backward + SGD step. Alternating epoch by epoch lets machine
noise hit both sides alike, and both models have trained equally long. The loop's images/s come from
`train_seconds` (training part of an epoch, data loading included, validation excluded); epoch 0 is
warm-up for both. loop / raw is the fraction of the machine's limit for that model that the loop
delivers. Two more columns show where a gap comes from: one epoch of the data path alone (loader with
the same sampler, batch cutting and per-batch augmentation) and the per-batch augmentation alone.
`--clock thread` times everything in CPU time of the main thread instead of wall time (steadier on a
CPU shared with other jobs; needs device cpu and no loader workers).

    python benchmarks/loop_throughput.py [--epochs 8] [--benchmark DIR] [--threads 1] [--clock wall|thread]

`--resnext`: ResNeXt-50 (torchvision resnext50_32x4d, random init, no download) at 112 px: the raw
fwd+bwd+step cost per image on synthetic tensors against one epoch of `train` on a synthetic
"imagenet"-style benchmark of as many JPEGs (per-image decode, RandomResizedCrop, flip, normalise),
the per-image cost of the loop around a real model. The raw pass warms the process up (one step), then
its --steps timed steps are split around the loop's epoch (so a change of machine load hits both); the
data path alone (loader over the JPEGs, no model) is timed last. CUDA is used when present
(device=auto); the raw pass uses the run's own mixed precision and memory format (config keys amp,
channels_last, as `glt.engine.trainer.Setup` resolves them: bf16 and channels_last on CUDA by default).

    python benchmarks/loop_throughput.py --resnext [--batch 32] [--steps 5] [--jpeg-size 500x375]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --clock: "wall" (time.perf_counter, what metrics.jsonl records) or "thread" (CPU time of the main
# thread). On a CPU shared with other jobs the thread clock counts only this process's own work; it is
# exact when all of it runs on the main thread (one torch thread, no loader workers, no GPU).
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
clock = time.perf_counter


class _TrainerTime:
    """Stands in for the `time` module inside glt.engine.trainer so that the loop's own `train_seconds`
    is taken with the chosen clock."""

    perf_counter = staticmethod(time.thread_time)

    def __getattr__(self, name):
        return getattr(time, name)


@contextlib.contextmanager
def loop_clock():
    if clock is time.perf_counter:
        yield
        return
    from glt.engine import trainer

    saved, trainer.time = trainer.time, _TrainerTime()
    try:
        yield
    finally:
        trainer.time = saved


@contextlib.contextmanager
def after_each_epoch(fn):
    """Call fn(record) each time the loop logs an epoch's metrics: between its epochs, after its
    `train_seconds` was taken, so what fn does is not counted as the loop's training time."""
    from glt.runtime.run_dir import RunDir

    saved = RunDir.log

    def log(self, record: dict) -> None:
        saved(self, record)
        fn(record)

    RunDir.log = log
    try:
        yield
    finally:
        RunDir.log = saved


def check_clock(device: torch.device, workers: int) -> None:
    if clock is time.thread_time and (device.type != "cpu" or workers > 0):
        raise SystemExit("--clock thread needs device cpu and no loader workers (all work on the main thread)")


def default_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def loop_images_per_epoch(n: int, batch_size: int) -> int:
    """Images one epoch of the loop trains on: it drops the last partial batch when there is more than one batch."""
    return n // batch_size * batch_size if n > batch_size else n


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def make_optimizer(cfg, params) -> torch.optim.SGD:
    """The loop's optimizer settings (glt.engine.trainer.train)."""
    o = cfg.optim
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.nesterov and o.momentum > 0)


class RawStepper:
    """forward (the method's own training step) + backward + SGD step, nothing else; with the run's own
    precision (autocast dtype, fp16 gradient scaling) and memory format, as `Setup` resolves them."""

    def __init__(self, setup, cfg):
        self.setup = setup
        self.model, self.method, self.device = setup.model, setup.method, setup.device
        self.model.train()
        self.optimizer = make_optimizer(cfg, list(self.model.parameters()) + list(setup.extra.parameters()))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Move (and lay out) a whole in-memory tensor once, before timing."""
        return self.setup.inputs(images)

    def step(self, images, labels, index) -> None:
        with self.setup.precision.autocast():
            loss, _, _ = self.method.training_step(self.model, images, labels, index)
        self.optimizer.zero_grad(set_to_none=True)
        self.setup.precision.backward_step(loss, self.optimizer)


# ---- the embedded benchmark --------------------------------------------------------------------------


def raw_epochs(stepper: RawStepper, images: torch.Tensor, labels: torch.Tensor, batch_size: int, epochs: int,
               seed: int) -> float:
    """Seconds for `epochs` shuffled epochs over in-memory tensors (shuffling copies are made before timing)."""
    g = torch.Generator().manual_seed(seed)
    n = loop_images_per_epoch(len(images), batch_size)
    total = 0.0
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=g)
        x, y = stepper.prepare(images[perm]), labels[perm].to(stepper.device)
        _sync(stepper.device)
        t0 = clock()
        for s in range(0, n, batch_size):
            stepper.step(x[s : s + batch_size], y[s : s + batch_size], perm[s : s + batch_size])
        _sync(stepper.device)
        total += clock() - t0
    return total


def data_path_seconds(ds, cfg, num_classes: int, seed: int) -> tuple[float, float]:
    """(one epoch of the loop's data path alone: sampler + loader + batch cutting + augmentation,
    the per-batch augmentation alone on the same batches)."""
    from glt.data import create_sampler, make_loader

    bs = cfg.data.batch_size
    sampler = create_sampler("instance", ds.table.label, num_classes, seed=seed)
    loader = make_loader(ds, bs, sampler=sampler, num_workers=cfg.data.num_workers,
                         drop_last=len(sampler) > bs)
    t0 = clock()
    for _ in loader:
        pass
    loader_s = clock() - t0
    if ds.batch_transform is None:
        return loader_s, float("nan")
    stack = torch.stack([ds.image(i) for i in range(len(ds))])
    order = torch.as_tensor(list(iter(sampler)))
    t0 = clock()
    for s in range(0, loop_images_per_epoch(len(ds), bs), bs):
        ds.batch_transform(stack[order[s : s + bs]])
    return loader_s, clock() - t0


def embedded(args) -> None:
    from glt.builders.digits import build_digits
    from glt.config import build_config
    from glt.engine.trainer import Setup, train

    work = Path(args.out or tempfile.mkdtemp(prefix="glt-loop-throughput-"))
    bench = Path(args.benchmark) if args.benchmark else work / "benchmark"
    if not args.benchmark and not (bench / "manifest.json").is_file():
        print(f"building ColorDigits-GLT into {bench} ...", flush=True)
        build_digits(bench)
    overrides = ["method=ce", f"epochs={args.epochs}", "progress=false", f"threads={args.threads}", *args.overrides]
    cfg = build_config(benchmark=str(bench), overrides=overrides)
    bs = cfg.data.batch_size
    check_clock(default_device(cfg.device), cfg.data.num_workers)

    torch.manual_seed(0)
    setup = Setup(cfg)  # a second copy of the model exactly as the loop builds it, for the raw epochs
    train_ds = setup.dataset(f"{setup.track}/train", train=True)
    n = loop_images_per_epoch(len(train_ds), bs)
    # the whole training split as one float tensor, preprocessed and augmented once
    if train_ds.batch_transform is not None:
        images = train_ds.batch_transform(torch.stack([train_ds.image(i) for i in range(len(train_ds))]))
    else:
        images = torch.stack([train_ds[i][0] for i in range(len(train_ds))])
    labels = train_ds.labels.clone()
    stepper = RawStepper(setup, cfg)
    print(f"benchmark {bench} ({len(train_ds)} training images, {n} per epoch, batch {bs}, "
          f"{cfg.model.backbone}, {cfg.data.image_size} px, {torch.get_num_threads()} thread(s), device {setup.device}, "
          f"{args.clock} clock)")
    print(f"one `train` run of {args.epochs} epochs; after each loop epoch: one raw epoch, then one epoch of the "
          "data path alone; epoch 0 is warm-up\n", flush=True)

    rows = []

    def between_epochs(record: dict) -> None:
        e = record["epoch"]
        raw_s = raw_epochs(stepper, images, labels, bs, 1, seed=e)
        loader_s, aug_s = data_path_seconds(train_ds, cfg, setup.num_classes, seed=e)
        rows.append({"loop_epoch": record["train_seconds"], "raw_epoch": raw_s, "data": loader_s, "aug": aug_s})

    with loop_clock(), after_each_epoch(between_epochs):
        train(cfg, work / "run", overwrite=True)
    rows = rows[1:]

    print("| epoch | loop img/s | raw img/s | loop / raw | loop epoch s | raw epoch s | data path s/epoch | "
          "of which augmentation s |")
    print("|---|---|---|---|---|---|---|---|")
    for i, x in enumerate(rows, 1):
        print(f"| {i} | {n / x['loop_epoch']:.0f} | {n / x['raw_epoch']:.0f} | {x['raw_epoch'] / x['loop_epoch']:.3f} | "
              f"{x['loop_epoch']:.3f} | {x['raw_epoch']:.3f} | {x['data']:.3f} | {x['aug']:.3f} |")
    tot = {k: sum(x[k] for x in rows) for k in rows[0]}
    m = len(rows)
    print(f"| all {m} | {n * m / tot['loop_epoch']:.0f} | {n * m / tot['raw_epoch']:.0f} | "
          f"**{tot['raw_epoch'] / tot['loop_epoch']:.3f}** | {tot['loop_epoch'] / m:.3f} | {tot['raw_epoch'] / m:.3f} | "
          f"{tot['data'] / m:.3f} | {tot['aug'] / m:.3f} |")
    ratios = [x["raw_epoch"] / x["loop_epoch"] for x in rows]
    print(f"\nloop / raw: {tot['raw_epoch'] / tot['loop_epoch']:.3f} over all measured epochs, median per epoch "
          f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
    gap = (tot["loop_epoch"] - tot["raw_epoch"]) / m
    print(f"gap per epoch {gap:.3f} s: data path {tot['data'] / m:.3f} s (augmentation {tot['aug'] / m:.3f} s), "
          f"the rest (per-step bookkeeping, scheduler, hooks) {gap - tot['data'] / m:.3f} s")
    print(f"runs and benchmark in {work}")


# ---- ResNeXt-50 at 112 px ------------------------------------------------------------------------------


def write_jpeg_benchmark(root: Path, n_train: int, n_val: int, size: tuple[int, int], num_classes: int = 10,
                         image_size: int = 112, seed: int = 0, distinct: int = 64) -> Path:
    """A synthetic "imagenet"-style benchmark: smooth random JPEGs (natural-image-like file sizes and
    decode cost), random labels, train and val splits of track glt only (no test splits). `distinct`
    images are encoded and written cyclically under different names (a decode costs the same)."""
    import io

    from PIL import Image

    from glt.benchmark import Manifest, SplitTable, write_benchmark

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    w, h = size
    encoded = []
    for _ in range(min(distinct, n_train + n_val)):
        # low-frequency colour field + mild noise: compresses like a photo, unlike white noise
        small = rng.integers(0, 256, (max(h // 32, 2), max(w // 32, 2), 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR), dtype=np.int16)
        img = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        encoded.append(buf.getvalue())
    paths = [f"images/{i:06d}.jpg" for i in range(n_train + n_val)]
    for i, rel in enumerate(paths):
        (root / rel).write_bytes(encoded[i % len(encoded)])
    labels = rng.integers(0, num_classes, n_train + n_val)
    ids = np.array([f"s{i:06d}" for i in range(len(paths))])

    def table(sl: slice) -> SplitTable:
        lab = labels[sl]
        return SplitTable(ids[sl], np.array(paths[sl]), lab, np.zeros(len(lab), np.int8), np.zeros(len(lab), np.int16))

    manifest = Manifest(name="synthetic-jpeg", classes=[f"c{c}" for c in range(num_classes)], num_attributes=1,
                        image_style="imagenet", image_size=image_size, info={"generator": "benchmarks"})
    write_benchmark(root, manifest, {"glt/train": table(slice(0, n_train)), "glt/val": table(slice(n_train, None))})
    return root


def resnext(args) -> None:
    from glt.config import build_config
    from glt.engine.trainer import Setup, train

    device = default_device(args.device)
    bs, steps = args.batch, args.steps
    workers = args.workers if args.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    check_clock(device, workers)
    work = Path(args.out or tempfile.mkdtemp(prefix="glt-loop-resnext-"))
    size = tuple(int(v) for v in args.jpeg_size.split("x"))
    t0 = time.perf_counter()
    bench = write_jpeg_benchmark(work / "benchmark", bs * steps, bs, size)
    print(f"wrote {bs * steps + bs} {args.jpeg_size} JPEGs in {time.perf_counter() - t0:.1f} s", flush=True)
    overrides = [
        "method=ce", f"epochs={args.loop_epochs}", "progress=false", f"threads={args.threads}", f"device={args.device}",
        "model.backbone=resnext50_32x4d", "data.image_size=112", f"data.batch_size={bs}",
        f"data.eval_batch_size={bs}", f"data.num_workers={workers}", *args.overrides,
    ]
    cfg = build_config(benchmark=str(bench), overrides=overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    torch.manual_seed(0)
    setup = Setup(cfg)
    dtype, channels_last = setup.precision.dtype, setup.channels_last
    stepper = RawStepper(setup, cfg)
    x = stepper.prepare(torch.randn(bs, 3, 112, 112))
    y = torch.randint(0, 10, (bs,)).to(device)
    index = torch.arange(bs)

    def raw_seconds(k: int) -> float:
        _sync(device)
        t0 = clock()
        for _ in range(k):
            stepper.step(x, y, index)
        _sync(device)
        return clock() - t0

    raw_seconds(1)  # warm-up
    # the raw steps are split around the loop's epoch, so a change of machine load hits both sides
    before = (steps + 1) // 2
    raw_s = raw_seconds(before)
    with loop_clock():
        train(cfg, work / "run", overwrite=True)
    raw_s += raw_seconds(steps - before)
    raw_ms = 1000 * raw_s / (steps * bs)
    loop_ms = 1000 * read_metrics(work / "run")[-1]["train_seconds"] / loop_images_per_epoch(bs * steps, bs)
    data_s, _ = data_path_seconds(setup.dataset(f"{setup.track}/train", train=True), cfg, setup.num_classes, seed=0)
    data_ms = 1000 * data_s / loop_images_per_epoch(bs * steps, bs)

    print(f"\nResNeXt-50 (resnext50_32x4d, random init) at 112 px, batch {bs}, device {device}, "
          f"{torch.get_num_threads()} thread(s), amp {dtype}, channels_last {channels_last}, {args.clock} clock; loop: "
          f"{args.jpeg_size} JPEGs, {workers} loader worker(s), epoch {args.loop_epochs} of {args.loop_epochs}\n")
    print("| | ms / image | images/s |")
    print("|---|---|---|")
    print(f"| raw fwd+bwd+step, synthetic tensors on the device ({steps} steps after 1 warm-up) | {raw_ms:.1f} | "
          f"{1000 / raw_ms:.1f} |")
    print(f"| glt loop, one epoch ({steps} steps: decode, augment, copy, train) | {loop_ms:.1f} | {1000 / loop_ms:.1f} |")
    print(f"| loop minus raw | {loop_ms - raw_ms:.1f} | |")
    print(f"| data path alone (loader: decode, RandomResizedCrop, flip, normalise, batch) | {data_ms:.1f} | "
          f"{1000 / data_ms:.0f} |")
    print(f"\nloop / raw throughput: **{raw_ms / loop_ms:.3f}**  (run in {work})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resnext", action="store_true", help="the ResNeXt-50 112 px variant on synthetic JPEGs")
    ap.add_argument("--out", help="work folder (default: a new temp folder)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall (default) or thread: CPU time of the main thread, steadier on a shared CPU")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--benchmark", help="embedded: an existing ColorDigits-GLT build (default: build one)")
    ap.add_argument("--epochs", type=int, default=8, help="embedded: epochs of the `train` run (the first is warm-up)")
    ap.add_argument("--batch", type=int, default=32, help="resnext: batch size")
    ap.add_argument("--steps", type=int, default=5, help="resnext: timed steps (raw) = batches in the loop's epoch")
    ap.add_argument("--loop-epochs", type=int, default=1, help="resnext: loop epochs (the last one is reported)")
    ap.add_argument("--jpeg-size", default="500x375", help="resnext: WxH of the synthetic JPEGs (ImageNet-like)")
    ap.add_argument("--workers", type=int, help="resnext: loader workers (default 0 on CPU, 8 on CUDA)")
    ap.add_argument("--device", default="auto", help="resnext: auto | cpu | cuda")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="extra config overrides for the loop")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    (resnext if args.resnext else embedded)(args)


if __name__ == "__main__":
    main()
