"""The one training loop. Every method runs through `train`: a method changes only its hooks
(model/head, loss, training step, sampler, stages, post-hoc rule), never this loop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from glt.benchmark import Benchmark
from glt.data import (
    SplitDataset,
    build_batch_transforms,
    build_transforms,
    create_sampler,
    make_loader,
)
from glt.engine.precision import Precision, amp_dtype, use_channels_last
from glt.engine.predict import predict, write_predictions
from glt.engine.schedule import build_scheduler
from glt.errors import GLTError, first_line
from glt.evaluation import evaluate
from glt.io import read_json, write_json
from glt.methods import Context, resolve_method, same_method
from glt.models import create_backbone
from glt.runtime import distributed as dist
from glt.runtime.checkpoint import (
    check_checkpoint,
    checkpoint_meta,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from glt.runtime.run_dir import RunDir, load_finished_run


def check_run_settings(cfg) -> torch.device:
    """Join torchrun's process group (if any) and check what depends on the device and the number of
    processes, before anything is written. Returns this rank's device."""
    device = dist.setup(cfg.device)
    world = dist.world_size()
    if cfg.data.batch_size % world:
        raise GLTError(f"data.batch_size ({cfg.data.batch_size}) is the global batch size and must be divisible "
                       f"by the number of processes ({world})")
    amp_dtype(cfg.amp, device)  # refuses a precision this device cannot run
    if cfg.sync_batchnorm and world > 1 and device.type != "cuda":
        raise GLTError("sync_batchnorm needs CUDA devices")
    if cfg.tensorboard:
        from glt.report.tensorboard import summary_writer_class

        summary_writer_class()
    return device


class Setup:
    """Everything a run needs, built from its config (shared by training and `glt eval`)."""

    def __init__(self, cfg, device: torch.device | None = None):
        """`device`: from `check_run_settings(cfg)` when the caller has already run it."""
        self.cfg = cfg
        self.device = device or check_run_settings(cfg)
        self.world = dist.world_size()
        self.bench = Benchmark(cfg.data.benchmark)
        m = self.bench.manifest
        self.track = cfg.data.track
        if self.track not in m.tracks:
            raise GLTError(f"benchmark {self.bench.root} has no track '{self.track}'")
        size = cfg.data.image_size or m.image_size
        self.bench.use_image_cache(cfg.data.image_cache, size)
        self.train_tf, self.test_tf = build_transforms(m.image_style, size, cfg.data.augment, cfg.data.crop_scale_min,
                                                       cfg.data.mean, cfg.data.std)
        self.cache = cfg.data.cache_images if cfg.data.cache_images is not None else m.image_style == "small"
        self.batch_tf = (build_batch_transforms(m.image_style, size, cfg.data.augment, cfg.data.mean, cfg.data.std)
                         if self.cache else None)
        self.num_classes = m.num_classes
        train_table = self.bench.split(f"{self.track}/train")
        self.class_counts = train_table.class_counts(self.num_classes)
        spec = resolve_method(cfg.method)
        self.ctx = Context(
            self.num_classes, self.class_counts, cfg.epochs, self.device, cfg.data.batch_size,
            train_table.label, train_table.attribute, m.num_attributes,
            prior_order=cfg.data.prior_order, head_bias=cfg.model.head_bias, load_run=load_finished_run,
        )
        self.method = spec.create(cfg.method_args, cfg.wrapper_args, self.ctx)
        try:
            backbone = create_backbone(cfg.model.backbone, cfg.model.weights, cfg.model.weights_file, **cfg.model.options)
        except (TypeError, RuntimeError) as e:  # an unknown model.options key, a weights_file of other shapes
            raise GLTError(f"cannot build backbone '{cfg.model.backbone}' (model.options {dict(cfg.model.options)}, "
                           f"model.weights_file {cfg.model.weights_file}): {first_line(e)}") from None
        self.model = self.method.build_model(backbone).to(self.device)
        self.extra = self.method.extra_modules().to(self.device)
        self.precision = Precision(cfg.amp, self.device)
        self.channels_last = use_channels_last(cfg.channels_last, self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if cfg.sync_batchnorm and self.world > 1:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if cfg.compile:
            self.model.backbone.compile()  # in place: checkpoints keep their keys

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last and images.dim() == 4 else images

    def dataset(self, split: str, train: bool) -> SplitDataset:
        if self.batch_tf is not None:
            preprocess, train_batch, test_batch = self.batch_tf
            return SplitDataset(self.bench, split, cache=True, preprocess=preprocess,
                                batch_transform=train_batch if train else test_batch)
        ds = SplitDataset(self.bench, split, self.train_tf if train else self.test_tf, cache=self.cache)
        if not self.cache:
            ds.check_images()
        return ds

    def test_splits(self) -> list[str]:
        return [f"{self.track}/{s}" for s in self.bench.manifest.tracks[self.track] if s.startswith("test_")]

    def load_weights(self, state: dict) -> None:
        check_checkpoint(state, method=self.cfg.method, num_classes=self.num_classes, backbone=self.cfg.model.backbone,
                         parts={"model": self.model, "extra": self.extra},
                         same_method=same_method)  # a GLTError naming the file
        self.model.load_state_dict(state["model"])
        self.extra.load_state_dict(state["extra"])
        self.method.load_state_dict(state["method"])


def _stage_parameters(model, extra, trainable: str):
    if trainable == "all":
        return list(model.parameters()) + list(extra.parameters())
    if trainable in ("head", "head_eval"):
        return list(model.head.parameters())
    raise ValueError(f"unknown trainable '{trainable}'")


def stage_optim(optim_cfg, stage):
    """The optimizer settings of a stage: the method's own milestones (fractions of the stage's epochs)
    apply unless the config names milestones itself."""
    if stage.milestones is None or optim_cfg.milestones:
        return optim_cfg
    return OmegaConf.merge(optim_cfg, {"milestones": [round(f * stage.epochs) for f in stage.milestones]})


def _set_train_mode(model, trainable: str) -> None:
    """Train mode for the stage. "head" and "head_eval" freeze the backbone's parameters; "head" leaves the
    backbone in train mode, as the original's train_stage2.py (its BatchNorm layers normalise with batch
    statistics and keep updating their running statistics), "head_eval" puts it in eval mode
    (docs/fidelity.md, section A)."""
    model.train()
    if trainable in ("head", "head_eval"):
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        if trainable == "head_eval":
            model.backbone.eval()


def evaluate_split(setup: Setup, split: str, ds: SplitDataset | None = None, progress: bool = False) -> tuple[np.ndarray, dict]:
    cfg = setup.cfg
    ds = ds or setup.dataset(split, train=False)
    preds = predict(setup.method, setup.model, ds, cfg.data.eval_batch_size, setup.inputs, cfg.data.num_workers,
                    progress, split, setup.precision.autocast)
    t = ds.table
    m = setup.bench.manifest
    metrics = evaluate(
        t.label, preds, setup.num_classes, t.frequency, t.attribute, m.num_attributes,
        t.attributes, m.attribute_names or None,
    )
    return preds, metrics


def test_run(setup: Setup, run: RunDir, progress: bool = False) -> dict:
    """Score the best-validation checkpoint on every test split of the track; write predictions + eval.json
    (every rank predicts its share, rank 0 writes)."""
    dist.barrier()  # rank 0 may have just written the checkpoint
    setup.load_weights(load_checkpoint(run.best))
    results = {}
    for split in setup.test_splits():
        preds, metrics = evaluate_split(setup, split, progress=progress)
        if dist.is_main():
            write_predictions(run.predictions(split), setup.bench.split(split).id, preds)
        results[split] = metrics
    if dist.is_main():
        write_json(run.eval, {"method": setup.cfg.method, "seed": setup.cfg.seed, "splits": results})
    dist.barrier()
    return results


class _Step(torch.nn.Module):
    """A method's training step as a module's forward, so DistributedDataParallel arms its gradient
    synchronisation whatever the method calls inside (forward_features, several heads, a twin model)."""

    def __init__(self, method, model, extra):
        super().__init__()
        self.model, self.extra = model, extra
        self.method = method

    def forward(self, images, labels, index):
        return self.method.training_step(self.model, images, labels, index)


def _wrap(setup: Setup):
    step = _Step(setup.method, setup.model, setup.extra)
    if setup.world == 1:
        return step
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [setup.device] if setup.device.type == "cuda" else None
    return DDP(step, device_ids=ids)


class _Totals:
    """Training loss / accuracy / method scalars of an epoch, summed on the device (no host sync per
    step) and over ranks at the end; part of a mid-epoch checkpoint."""

    def __init__(self, device, state: dict | None = None):
        self.device = device
        self.sums = torch.zeros(2, device=device, dtype=torch.float64)  # loss * n, hits
        self.n = 0
        self.logs: dict[str, float] = {}
        self.seconds = 0.0
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)  # first step with a NaN / inf loss
        if state:
            self.sums.copy_(state["sums"])
            self.n, self.logs, self.seconds = state["n"], dict(state["logs"]), state["seconds"]

    def add(self, loss, logits, y, step_logs, step: int = 0) -> None:
        n = len(y)
        # on the device, no host sync: `check_finite` reads it where the loop syncs anyway
        self.first_bad = torch.where(torch.isfinite(loss.detach()) | (self.first_bad >= 0), self.first_bad, step)
        self.sums += torch.stack([loss.detach().double() * n, (logits.detach().argmax(1) == y).sum().double()])
        self.n += n
        for k, v in step_logs.items():
            self.logs[k] = self.logs.get(k, 0.0) + v * n

    def state(self, seconds: float) -> dict:
        return {"sums": self.sums.cpu(), "n": self.n, "logs": self.logs, "seconds": seconds}

    def check_finite(self, stage: str, epoch: int, steps: int) -> None:
        """Stop a training whose loss became NaN / inf, before its weights are checkpointed or its epoch
        logged (collective: every rank stops together)."""
        if float(dist.all_reduce_sum((self.first_bad >= 0).double().reshape(1))[0]) == 0:
            return
        s = int(self.first_bad)
        where = f"step {s + 1} of {steps}" if s >= 0 else "on another process"
        raise GLTError(f"the training loss became NaN or infinite in stage '{stage}', epoch {epoch}, {where}; "
                       "stopped before saving it: lower optim.lr, or check the data and the method's settings")

    def summary(self) -> dict:
        keys = sorted(self.logs)
        host = torch.tensor([self.n, *(self.logs[k] for k in keys)], dtype=torch.float64, device=self.device)
        t = dist.all_reduce_sum(torch.cat([self.sums, host])).cpu()
        n = max(float(t[2]), 1.0)
        return {"train_loss": float(t[0]) / n, "train_accuracy": float(t[1]) / n,
                **{k: float(v) / n for k, v in zip(keys, t[3:])}}


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


def _resume_state(ckpt: dict, world: int) -> dict:
    """This rank's part of a checkpoint (rng, partial epoch); a mid-epoch checkpoint needs the same
    number of processes that wrote it."""
    ranks = ckpt["ranks"]
    if ckpt["step"] and len(ranks) != world:
        raise GLTError(f"the checkpoint was written mid-epoch by {len(ranks)} process(es); resume it with the same "
                       f"number of processes (now {world})")
    return ranks[dist.rank()] if len(ranks) == world else ranks[0]


def train(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Train `cfg` into the run folder `out`, select the best validation epoch, score the test splits.
    Under torchrun every rank runs this; rank 0 writes the folder."""
    run = RunDir(out)
    device = check_run_settings(cfg)  # fail before the run folder is claimed
    status = _prepare_run(run, cfg, resume, overwrite)
    if status == "complete":
        return read_json(run.eval, "run results")["splits"]
    seed_everything(cfg.seed, cfg.deterministic)
    if not cfg.deterministic and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    setup = Setup(cfg, device)
    model, method, world = setup.model, setup.method, setup.world
    if dist.rank():  # same initial weights everywhere, but each rank's own augmentation draws
        seed_everything(cfg.seed + 100_003 * dist.rank(), cfg.deterministic)
    train_ds = setup.dataset(f"{setup.track}/train", train=True)
    val_ds = setup.dataset(f"{setup.track}/val", train=False)
    labels = train_ds.table.label
    stages = method.stages()
    logger = _Logger(run, cfg) if dist.is_main() else None

    start_stage, start_epoch, start_step, best = 0, 0, 0, -1.0
    ckpt = mine = None
    if status == "resume":
        ckpt = load_checkpoint(run.last)
        mine = _resume_state(ckpt, world)
        setup.load_weights(ckpt)
        start_stage, best = ckpt["stage_index"], ckpt["best"]
        start_epoch, start_step = (ckpt["epoch"], ckpt["step"]) if ckpt["step"] else (ckpt["epoch"] + 1, 0)
        if dist.is_main():
            run.truncate_log(start_stage, start_epoch)

    for si in range(start_stage, len(stages)):
        stage = stages[si]
        batch = cfg.data.batch_size * stage.batch_scale // world
        params = _stage_parameters(model, setup.extra, stage.trainable)
        lr = stage.lr if stage.lr is not None else cfg.optim.lr
        optimizer = torch.optim.SGD(
            params, lr=lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay,
            nesterov=cfg.optim.nesterov and cfg.optim.momentum > 0,
        )
        sampler = create_sampler(stage.sampler, labels, setup.num_classes, seed=cfg.seed * 1009 + si,
                                 rank=dist.rank(), world_size=world, **method.sampler_options(stage))
        loader = make_loader(
            train_ds, batch, sampler=sampler, num_workers=cfg.data.num_workers,
            pin_memory=device.type == "cuda", drop_last=cfg.data.drop_last and len(sampler) > batch,
            persistent_workers=cfg.data.num_workers > 0,
        )
        scheduler = build_scheduler(optimizer, stage_optim(cfg.optim, stage), stage.epochs, len(loader))
        resuming = ckpt is not None and si == start_stage
        first = start_epoch if resuming else 0
        if resuming:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            setup.precision.load_state_dict(ckpt.get("scaler", {}))
            if not start_step:
                set_rng_state(mine["rng"])
        else:
            best = -1.0  # each stage selects its own best epoch; the last stage's is evaluated
        step_module = None
        bar = tqdm(range(first, stage.epochs), desc=f"{cfg.method} [{setup.track}] {stage.name}",
                   disable=not (cfg.progress and dist.is_main()), initial=first, total=stage.epochs)
        for epoch in bar:
            mid = resuming and epoch == first and start_step > 0  # resuming inside this epoch
            t0 = time.perf_counter()
            sampler.set_epoch(epoch)
            update = method.sampler_update(stage, epoch)
            if update:
                sampler.update(**update)
            method.on_epoch_start(stage, epoch)
            _set_train_mode(model, stage.trainable)
            if step_module is None:  # after the stage's first on_epoch_start: it may freeze parameters
                step_module = _wrap(setup)
            totals = _Totals(device, mine["partial"] if mid else None)
            sampler.skip = start_step * batch if mid else 0  # the batches already trained
            batches = iter(loader)
            if mid:  # after the loader drew its seed, as the interrupted run's state was
                method.load_state_dict(mine["method"])
                set_rng_state(mine["rng"])
            done = start_step if mid else 0
            elapsed = totals.seconds
            for images, y, index in batches:
                images, y = setup.inputs(images), y.to(device, non_blocking=True)
                with setup.precision.autocast():
                    loss, out, step_logs = step_module(images, y, index)
                optimizer.zero_grad(set_to_none=True)
                method.ctx.grad_scale = setup.precision.grad_scale
                setup.precision.backward_step(loss, optimizer)
                method.after_step()
                scheduler.step()
                totals.add(loss, out.logits, y, step_logs, step=done)
                done += 1
                if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < len(loader):
                    totals.check_finite(stage.name, epoch, len(loader))
                    _save_last(run, setup, optimizer, scheduler, si, epoch, done, best,
                               partial=totals.state(elapsed + time.perf_counter() - t0))
            totals.check_finite(stage.name, epoch, len(loader))
            epoch_logs = method.on_epoch_end(stage, epoch)  # (IFL rebuilds here: part of training time)
            train_seconds = elapsed + time.perf_counter() - t0
            _, val = evaluate_split(setup, f"{setup.track}/val", val_ds)
            record = {
                "stage": stage.name, "stage_index": si, "epoch": epoch,
                "lr": _last_step_lr(scheduler), **totals.summary(),
                "val_accuracy": val["accuracy"], "val_precision": val["precision"],
                "train_seconds": train_seconds, "seconds": elapsed + time.perf_counter() - t0,
                **epoch_logs,
            }
            if logger:
                logger.log(record)
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
            weights = _weights(setup)
            selectable = epoch % cfg.select_every == 0 or epoch == stage.epochs - 1
            if selectable and val["accuracy"] > best:
                best = val["accuracy"]
                if dist.is_main():
                    save_checkpoint(run.best, {**weights, "stage_index": si, "epoch": epoch, "val_accuracy": best})
            _save_last(run, setup, optimizer, scheduler, si, epoch, 0, best, weights=weights)
        ckpt = None
        if si + 1 < len(stages):
            # the next stage starts from this stage's best epoch (e.g. cRT re-trains on the best backbone)
            dist.barrier()
            setup.load_weights(load_checkpoint(run.best))
    if logger:
        logger.close()
    return test_run(setup, run, progress=cfg.progress)


def _last_step_lr(scheduler) -> float:
    """The learning rate of the epoch's last optimizer step (the scheduler has stepped past it already; with
    the per-epoch schedule, the epoch's learning rate)."""
    return scheduler.base_lrs[0] * scheduler.lr_lambdas[0](max(0, scheduler.last_epoch - 1))


def _weights(setup: Setup) -> dict:
    return {"model": setup.model.state_dict(), "extra": setup.extra.state_dict(), "method": setup.method.state_dict(),
            "meta": checkpoint_meta(setup.cfg.method, setup.num_classes, setup.cfg.model.backbone)}


def _save_last(run, setup, optimizer, scheduler, si, epoch, step, best, partial=None, weights=None) -> None:
    """The resume checkpoint. `step` > 0: written inside the epoch after that many steps, with every
    rank's RNG, partial totals and method state (e.g. IFL's scores of the epoch so far); at the end
    of an epoch ranks agree on the method state and only their RNG differs. Collective: every rank calls it."""
    mine = {"rng": rng_state()}
    if step:
        mine.update(partial=partial, method=setup.method.state_dict())
    ranks = dist.gather_object(mine)
    if dist.is_main():
        save_checkpoint(run.last, {
            **(weights or _weights(setup)), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": setup.precision.state_dict(), "stage_index": si, "epoch": epoch, "step": step,
            "best": best, "ranks": ranks,
        })


class _Logger:
    """metrics.jsonl, and TensorBoard when `tensorboard=true` (rank 0 only)."""

    def __init__(self, run: RunDir, cfg):
        self.run = run
        self.tb = None
        if cfg.tensorboard:
            from glt.report.tensorboard import TensorBoardLogger

            self.tb = TensorBoardLogger(run.root)

    def log(self, record: dict) -> None:
        self.run.log(record)
        if self.tb is not None:
            self.tb.log(record)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
