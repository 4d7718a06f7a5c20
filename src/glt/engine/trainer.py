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
from glt.data import SplitDataset, build_batch_transforms, build_transforms, create_sampler, make_loader
from glt.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from glt.engine.predict import predict, write_predictions
from glt.engine.run_dir import RunDir
from glt.engine.schedule import build_scheduler
from glt.errors import GLTError
from glt.evaluation import evaluate
from glt.io import read_json, write_json
from glt.methods import Context, resolve_method
from glt.models import create_backbone


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GLTError(f"device '{name}' requested but CUDA is not available")
    return torch.device(name)


class Setup:
    """Everything a run needs, built from its config (shared by training and `glt eval`)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.bench = Benchmark(cfg.data.benchmark)
        m = self.bench.manifest
        self.track = cfg.data.track
        if self.track not in m.tracks:
            raise GLTError(f"benchmark {self.bench.root} has no track '{self.track}'")
        size = cfg.data.image_size or m.image_size
        self.train_tf, self.test_tf = build_transforms(m.image_style, size, cfg.data.augment, cfg.data.crop_scale_min)
        self.cache = cfg.data.cache_images if cfg.data.cache_images is not None else m.image_style == "small"
        self.batch_tf = build_batch_transforms(m.image_style, size, cfg.data.augment) if self.cache else None
        self.num_classes = m.num_classes
        train_table = self.bench.split(f"{self.track}/train")
        self.class_counts = train_table.class_counts(self.num_classes)
        spec = resolve_method(cfg.method)
        self.ctx = Context(
            self.num_classes, self.class_counts, cfg.epochs, self.device, cfg.data.batch_size,
            train_table.label, train_table.attribute, m.num_attributes,
        )
        self.method = spec.create(cfg.method_args, cfg.wrapper_args, self.ctx)
        backbone = create_backbone(cfg.model.backbone, cfg.model.weights, cfg.model.weights_file, **cfg.model.options)
        self.model = self.method.build_model(backbone).to(self.device)
        self.extra = self.method.extra_modules().to(self.device)

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
        self.model.load_state_dict(state["model"])
        self.extra.load_state_dict(state["extra"])
        self.method.load_state_dict(state["method"])


def _stage_parameters(model, extra, trainable: str):
    if trainable == "all":
        return list(model.parameters()) + list(extra.parameters())
    if trainable == "head":
        return list(model.head.parameters())
    raise ValueError(f"unknown trainable '{trainable}'")


def stage_optim(optim_cfg, stage):
    """The optimizer settings of a stage: the method's own milestones (fractions of the stage's epochs)
    apply unless the config names milestones itself."""
    if stage.milestones is None or optim_cfg.milestones:
        return optim_cfg
    return OmegaConf.merge(optim_cfg, {"milestones": [round(f * stage.epochs) for f in stage.milestones]})


def _set_train_mode(model, trainable: str) -> None:
    model.train()
    if trainable == "head":  # a frozen backbone keeps its BatchNorm statistics
        model.backbone.eval()
        for p in model.backbone.parameters():
            p.requires_grad_(False)


def evaluate_split(setup: Setup, split: str, ds: SplitDataset | None = None, progress: bool = False) -> tuple[np.ndarray, dict]:
    cfg = setup.cfg
    ds = ds or setup.dataset(split, train=False)
    preds = predict(setup.method, setup.model, ds, cfg.data.eval_batch_size, setup.device, cfg.data.num_workers, progress, split)
    t = ds.table
    m = setup.bench.manifest
    metrics = evaluate(
        t.label, preds, setup.num_classes, t.frequency, t.attribute, m.num_attributes,
        t.attributes, m.attribute_names or None,
    )
    return preds, metrics


def test_run(setup: Setup, run: RunDir, progress: bool = False) -> dict:
    """Score the best-validation checkpoint on every test split of the track; write predictions + eval.json."""
    setup.load_weights(load_checkpoint(run.best))
    results = {}
    for split in setup.test_splits():
        preds, metrics = evaluate_split(setup, split, progress=progress)
        write_predictions(run.predictions(split), setup.bench.split(split).id, preds)
        results[split] = metrics
    write_json(run.eval, {"method": setup.cfg.method, "seed": setup.cfg.seed, "splits": results})
    return results


def train(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Train `cfg` into the run folder `out`, select the best validation epoch, score the test splits."""
    run = RunDir(out)
    status = run.prepare(cfg, resume, overwrite)
    if status == "complete":
        return read_json(run.eval, "run results")["splits"]
    seed_everything(cfg.seed, cfg.deterministic)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    setup = Setup(cfg)
    model, method, device = setup.model, setup.method, setup.device
    train_ds = setup.dataset(f"{setup.track}/train", train=True)
    val_ds = setup.dataset(f"{setup.track}/val", train=False)
    labels = train_ds.table.label
    stages = method.stages()

    start_stage, start_epoch, best = 0, 0, -1.0
    ckpt = None
    if status == "resume":
        ckpt = load_checkpoint(run.last)
        setup.load_weights(ckpt)
        start_stage, start_epoch, best = ckpt["stage_index"], ckpt["epoch"] + 1, ckpt["best"]
        run.truncate_log(start_stage, start_epoch)

    for si in range(start_stage, len(stages)):
        stage = stages[si]
        params = _stage_parameters(model, setup.extra, stage.trainable)
        lr = stage.lr if stage.lr is not None else cfg.optim.lr
        optimizer = torch.optim.SGD(
            params, lr=lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay,
            nesterov=cfg.optim.nesterov and cfg.optim.momentum > 0,
        )
        sampler = create_sampler(stage.sampler, labels, setup.num_classes, seed=cfg.seed * 1009 + si,
                                 **method.sampler_options(stage))
        loader = make_loader(
            train_ds, cfg.data.batch_size, sampler=sampler, num_workers=cfg.data.num_workers,
            pin_memory=device.type == "cuda", drop_last=len(sampler) > cfg.data.batch_size,
            persistent_workers=cfg.data.num_workers > 0,
        )
        scheduler = build_scheduler(optimizer, stage_optim(cfg.optim, stage), stage.epochs, len(loader))
        first = start_epoch if si == start_stage else 0
        if ckpt is not None and si == start_stage:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            set_rng_state(ckpt["rng"])
        if si != start_stage or ckpt is None:
            best = -1.0  # each stage selects its own best epoch; the last stage's is evaluated
        bar = tqdm(range(first, stage.epochs), desc=f"{cfg.method} [{setup.track}] {stage.name}",
                   disable=not cfg.progress, initial=first, total=stage.epochs)
        for epoch in bar:
            t0 = time.perf_counter()
            sampler.set_epoch(epoch)
            update = method.sampler_update(stage, epoch)
            if update:
                sampler.update(**update)
            method.on_epoch_start(stage, epoch)
            _set_train_mode(model, stage.trainable)
            total, n, hits, logs = 0.0, 0, 0, {}
            for images, y, index in loader:
                images, y = images.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss, out, step_logs = method.training_step(model, images, y, index)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                method.after_step()
                scheduler.step()
                # accumulated on the device: no host sync per step on a GPU
                total = total + loss.detach() * len(y)
                n += len(y)
                hits = hits + (out.logits.detach().argmax(1) == y).sum()
                for k, v in step_logs.items():
                    logs[k] = logs.get(k, 0.0) + v * len(y)
            total, hits = float(total), int(hits)
            epoch_logs = method.on_epoch_end(stage, epoch)  # (IFL rebuilds here: part of training time)
            train_seconds = time.perf_counter() - t0
            _, val = evaluate_split(setup, f"{setup.track}/val", val_ds)
            record = {
                "stage": stage.name, "stage_index": si, "epoch": epoch,
                "lr": optimizer.param_groups[0]["lr"], "train_loss": total / max(n, 1),
                "train_accuracy": hits / max(n, 1), "val_accuracy": val["accuracy"],
                "val_precision": val["precision"], "train_seconds": train_seconds,
                "seconds": time.perf_counter() - t0,
                **{k: v / max(n, 1) for k, v in logs.items()},
                **epoch_logs,
            }
            run.log(record)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
            weights = {"model": model.state_dict(), "extra": setup.extra.state_dict(), "method": method.state_dict()}
            if val["accuracy"] > best:
                best = val["accuracy"]
                save_checkpoint(run.best, {**weights, "stage_index": si, "epoch": epoch, "val_accuracy": best})
            save_checkpoint(run.last, {
                **weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "stage_index": si, "epoch": epoch, "best": best, "rng": rng_state(),
            })
        ckpt = None
        if si + 1 < len(stages):
            # the next stage starts from this stage's best epoch (e.g. cRT re-trains on the best backbone)
            setup.load_weights(load_checkpoint(run.best))
    return test_run(setup, run, progress=cfg.progress)

