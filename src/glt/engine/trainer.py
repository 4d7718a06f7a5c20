"""The one training loop. Every method runs through `train`: a method changes only its hooks
(model/head, loss, training step, sampler, stages, post-hoc rule), never this loop.

It reads top-down: `train` claims the run folder and runs each stage (`_train_stage`) from the resume
point (glt.engine.resume); a stage builds its optimizer, sampler and loader and runs its epochs
(`_train_epoch`), each a series of steps (`_train_step`) then a validation whose record goes to
metrics.jsonl and whose accuracy the checkpointer (glt.engine.checkpointer) selects on. The last
stage's best checkpoint is tested (glt.engine.scoring.test_run)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from glt.data import SplitDataset, create_sampler, make_loader
from glt.engine.checkpointer import Checkpointer
from glt.engine.metrics_log import MetricsLog
from glt.engine.resume import ResumePoint
from glt.engine.schedule import build_scheduler
from glt.engine.scoring import evaluate_split, headlines, test_run
from glt.engine.setup import Setup, check_run_settings
from glt.engine.stage import last_step_lr, stage_optim, stage_optimizer, stage_parameters, wrap_step
from glt.engine.stage import set_train_mode as _set_train_mode
from glt.engine.totals import EpochTotals
from glt.errors import GLTError
from glt.io import read_json
from glt.runtime import distributed as dist
from glt.runtime.checkpoint import kept_rng, load_checkpoint, seed_everything
from glt.runtime.run_dir import RunDir

# what callers import from here (the loop looks up evaluate_split, make_loader and time in this module,
# so a test can replace them)
__all__ = ["Setup", "check_run_settings", "evaluate_split", "stage_optim", "test_run", "train", "_set_train_mode"]


@dataclass
class _Loop:
    """What the stages and epochs of one training share."""

    cfg: Any
    setup: Setup
    run: RunDir
    train_ds: SplitDataset
    val_ds: SplitDataset
    checkpointer: Checkpointer
    log: MetricsLog | None  # rank 0 only
    tests: dict[str, SplitDataset] | None  # log_test_metrics: the test splits, opened at the first use


@dataclass
class _StageParts:
    """A stage's optimizer, schedule, sampler and loader."""

    index: int
    stage: Any
    batch: int  # this rank's
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: Any
    loader: Any
    step_module: Any = field(default=None)  # after the stage's first on_epoch_start: it may freeze parameters


def train(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Train `cfg` into the run folder `out`, select the best validation epoch, score the test splits.
    Under torchrun every rank runs this; rank 0 writes the folder."""
    run = RunDir(out)
    device = check_run_settings(cfg)  # fail before the run folder is claimed
    status = _prepare_run(run, cfg, resume, overwrite)
    if status == "complete":
        return read_json(run.eval, "run results")["splits"]
    loop = _start(cfg, run, device)
    point = _resume_point(loop) if status == "resume" else ResumePoint()
    stages = loop.setup.method.stages()
    for si in range(point.stage, len(stages)):
        _train_stage(loop, si, stages[si], point)
        if si + 1 < len(stages):
            # the next stage starts from this stage's best epoch (e.g. cRT re-trains on the best backbone)
            dist.barrier()
            loop.setup.load_weights(load_checkpoint(run.best))
    if loop.log:
        loop.log.close()
    return test_run(loop.setup, run, progress=cfg.progress)


def _prepare_run(run: RunDir, cfg, resume: bool, overwrite: bool) -> str:
    """Rank 0 claims the folder; every rank learns the outcome (an error too, so none waits forever)."""
    status = None
    if dist.is_main():
        try:
            status = run.prepare(cfg, resume, overwrite)
        except GLTError as e:
            status = e
    status = dist.broadcast_object(status)
    if isinstance(status, GLTError):
        raise status
    return status


def _start(cfg, run: RunDir, device) -> _Loop:
    """Seeds, threads, the Setup and the datasets of a training."""
    seed_everything(cfg.seed, cfg.deterministic)
    if not cfg.deterministic and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    setup = Setup(cfg, device)
    if dist.rank():  # same initial weights everywhere, but each rank's own augmentation draws
        seed_everything(cfg.seed + 100_003 * dist.rank(), cfg.deterministic)
    train_ds = setup.dataset(f"{setup.track}/train", train=True)
    val_ds = setup.dataset(f"{setup.track}/val", train=False)
    log = MetricsLog(run, cfg) if dist.is_main() else None
    tests = {} if OmegaConf.select(cfg, "log_test_metrics", default=False) else None
    return _Loop(cfg, setup, run, train_ds, val_ds, Checkpointer(run, setup, cfg.select_every, cfg.checkpoint_every),
                 log, tests)


def _resume_point(loop: _Loop) -> ResumePoint:
    """The weights of last.pt restored, and where the loop restarts; lines logged after it are dropped."""
    ckpt = load_checkpoint(loop.run.last)
    point = ResumePoint.from_checkpoint(ckpt, loop.setup.world)
    loop.setup.load_weights(ckpt)
    if dist.is_main():
        loop.run.truncate_log(point.stage, point.epoch)
    return point


def _stage_parts(loop: _Loop, si: int, stage) -> _StageParts:
    cfg, setup = loop.cfg, loop.setup
    batch = cfg.data.batch_size * stage.batch_scale // setup.world
    optimizer = stage_optimizer(cfg.optim, stage, stage_parameters(setup.model, setup.extra, stage.trainable))
    sampler = create_sampler(stage.sampler, loop.train_ds.table.label, setup.num_classes, seed=cfg.seed * 1009 + si,
                             rank=dist.rank(), world_size=setup.world, **setup.method.sampler_options(stage))
    loader = make_loader(
        loop.train_ds, batch, sampler=sampler, num_workers=cfg.data.num_workers,
        pin_memory=setup.device.type == "cuda", drop_last=cfg.data.drop_last and len(sampler) > batch,
        persistent_workers=cfg.data.num_workers > 0,
    )
    scheduler = build_scheduler(optimizer, stage_optim(cfg.optim, stage), stage.epochs, len(loader))
    return _StageParts(si, stage, batch, optimizer, scheduler, sampler, loader)


def _train_stage(loop: _Loop, si: int, stage, point: ResumePoint) -> None:
    """Every epoch of stage `si` (from the resume point's epoch, when it stopped in this stage)."""
    parts = _stage_parts(loop, si, stage)
    first = 0
    loop.checkpointer.best = -1.0  # each stage selects its own best epoch; the last stage's is tested
    if point.resumes(si):
        point.restore_stage(parts.optimizer, parts.scheduler, loop.setup.precision)
        first, loop.checkpointer.best = point.epoch, point.best
    bar = tqdm(range(first, stage.epochs), desc=f"{loop.cfg.method} [{loop.setup.track}] {stage.name}",
               disable=not (loop.cfg.progress and dist.is_main()), initial=first, total=stage.epochs)
    for epoch in bar:
        record = _train_epoch(loop, parts, epoch, point if point.mid_epoch(si, epoch) else None)
        if loop.log:
            loop.log.log(record)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{record['val_accuracy']:.3f}")
        loop.checkpointer.end_of_epoch(parts.optimizer, parts.scheduler, si, epoch, stage.epochs,
                                       record["val_accuracy"])


def _start_epoch(loop: _Loop, parts: _StageParts, epoch: int) -> None:
    method = loop.setup.method
    parts.sampler.set_epoch(epoch)
    update = method.sampler_update(parts.stage, epoch)
    if update:
        parts.sampler.update(**update)
    method.on_epoch_start(parts.stage, epoch)
    _set_train_mode(loop.setup.model, parts.stage.trainable)
    if parts.step_module is None:
        parts.step_module = wrap_step(loop.setup)


def _train_epoch(loop: _Loop, parts: _StageParts, epoch: int, mid: ResumePoint | None) -> dict:
    """One epoch's steps (`mid`: the checkpoint it resumes inside), then its validation; returns its record."""
    t0 = time.perf_counter()
    _start_epoch(loop, parts, epoch)
    totals = EpochTotals(loop.setup.device, mid.partial if mid else None)
    parts.sampler.set_skip(mid.step * parts.batch if mid else 0)  # the batches already trained
    batches = iter(parts.loader)
    if mid:
        mid.restore_mid_epoch(loop.setup.method)
    done, elapsed, steps = (mid.step if mid else 0), totals.seconds, len(parts.loader)
    for images, y, index in batches:
        _train_step(loop.setup, parts, images, y, index, totals, done)
        done += 1
        if loop.checkpointer.due_inside_epoch(done, steps):
            totals.check_finite(parts.stage.name, epoch, steps)
            loop.checkpointer.save_last(parts.optimizer, parts.scheduler, parts.index, epoch, done,
                                        partial=totals.state(elapsed + time.perf_counter() - t0))
    totals.check_finite(parts.stage.name, epoch, steps)
    epoch_logs = loop.setup.method.on_epoch_end(parts.stage, epoch)  # (IFL rebuilds here: part of training time)
    train_seconds = elapsed + time.perf_counter() - t0
    _, val = evaluate_split(loop.setup, f"{loop.setup.track}/val", loop.val_ds)
    record = {
        "stage": parts.stage.name, "stage_index": parts.index, "epoch": epoch,
        "lr": last_step_lr(parts.scheduler), **totals.summary(),
        **{f"val_{k}": v for k, v in headlines(val).items()},
        "train_seconds": train_seconds, "seconds": elapsed + time.perf_counter() - t0,
        **epoch_logs,
    }
    if loop.tests is not None:
        record["test"] = _score_tests(loop)
    return record


def _train_step(setup: Setup, parts: _StageParts, images, y, index, totals: EpochTotals, done: int) -> None:
    images, y = setup.inputs(images), y.to(setup.device, non_blocking=True)
    with setup.precision.autocast():
        loss, out, step_logs = parts.step_module(images, y, index)
    parts.optimizer.zero_grad(set_to_none=True)
    setup.method.ctx.grad_scale = setup.precision.grad_scale
    setup.precision.backward_step(loss, parts.optimizer)
    setup.method.after_step()
    parts.scheduler.step()
    totals.add(loss, out.logits, y, step_logs, step=done)


def _score_tests(loop: _Loop) -> dict[str, dict[str, float]]:
    """log_test_metrics: each test split's headlines at this epoch, so an epoch can be selected afterwards by
    any rule. The training's random stream is left as it was (a DataLoader draws its seed from it), so the
    weights are those of a run without it."""
    out = {}
    with kept_rng():
        for split in loop.setup.test_splits():
            if split not in loop.tests:
                loop.tests[split] = loop.setup.dataset(split, train=False)
            out[split] = headlines(evaluate_split(loop.setup, split, loop.tests[split])[1])
    return out
