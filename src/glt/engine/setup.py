"""What a run needs, built once from its config: the benchmark and the image cache it reads, transforms,
the method, the model (shared by training and `glt eval`)."""

from __future__ import annotations

import sys
from functools import partial

import torch
from omegaconf import OmegaConf

from glt.benchmark import Benchmark
from glt.config import validate_config
from glt.data import SplitDataset, build_batch_transforms, build_transforms
from glt.data.image_cache import select_cache
from glt.engine.precision import Precision, amp_dtype, use_channels_last
from glt.errors import GLTError, first_line
from glt.features.contamination import contamination
from glt.features.dataset import FeatureDataset, open_store
from glt.methods import Context, resolve_method, same_method
from glt.methods.feature_support import check_feature_method
from glt.models import create_backbone
from glt.runtime import distributed as dist
from glt.runtime.checkpoint import check_checkpoint
from glt.runtime.run_dir import load_finished_run


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
        from glt.runtime.tensorboard import summary_writer_class

        summary_writer_class()
    return device


_WARNED: set[str] = set()  # contamination lines printed by this process


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
        self._data(cfg, m)
        self.num_classes = m.num_classes
        train_table = self.bench.split(f"{self.track}/train")
        self.class_counts = train_table.class_counts(self.num_classes)
        self.ctx = Context(
            self.num_classes, self.class_counts, cfg.epochs, self.device, cfg.data.batch_size,
            train_table.label, train_table.attribute, m.num_attributes,
            prior_order=cfg.data.prior_order, head_bias=cfg.model.head_bias,
            load_run=partial(load_finished_run, validate=validate_config), class_names=list(m.classes),
        )
        self.method = resolve_method(cfg.method).create(cfg.method_args, cfg.wrapper_args, self.ctx)
        self._model(cfg)

    def _data(self, cfg, m) -> None:
        """The image cache (chosen once: data.image_cache, else $GLT_IMAGE_CACHE, else the best complete one)
        and the transforms; with data.features, the feature store instead (its splits checked now)."""
        self.store, self.image_size = None, None  # image_size: what the backbone is fed (None on a store)
        features = OmegaConf.select(cfg, "data.features", default=None)  # absent from older runs' configs
        if features:
            check_feature_method(resolve_method(cfg.method))
            splits = [f"{self.track}/train", f"{self.track}/val", *self.test_splits()]
            self.store = open_store(features, self.bench, splits)
            self.image_cache, self.train_tf, self.test_tf, self.cache, self.batch_tf = None, None, None, False, None
            return
        size = self.image_size = cfg.data.image_size or m.image_size
        self.image_cache = select_cache(self.bench, cfg.data.image_cache, size)
        self.train_tf, self.test_tf = build_transforms(m.image_style, size, cfg.data.augment, cfg.data.crop_scale_min,
                                                       cfg.data.mean, cfg.data.std)
        self.cache = cfg.data.cache_images if cfg.data.cache_images is not None else m.image_style == "small"
        self.batch_tf = (build_batch_transforms(m.image_style, size, cfg.data.augment, cfg.data.mean, cfg.data.std)
                         if self.cache else None)

    def _check_input_size(self, cfg, backbone) -> None:
        """A backbone that takes one image size only (a ViT, a CLIP tower) refuses another before training."""
        need, size = getattr(backbone, "input_size", None), self.image_size
        if size is not None and need is not None and int(need) != int(size):
            raise GLTError(f"backbone '{cfg.model.backbone}' takes {need} px images, but the run feeds {size} px: "
                           f"set data.image_size={need} (and data.mean / data.std to its weights' normalisation)")

    def _warn_contamination(self, cfg, backbone) -> None:
        """One line on stderr when ImageNet-trained weights meet an ImageNet-GLT benchmark, whose test images
        come from ImageNet's train folder (docs/foundation.md, Contamination)."""
        if self.store is None and dist.is_main():
            warning = contamination(self.bench.manifest, getattr(backbone, "weights_name", None),
                                    cfg.model.weights_file)["warning"]
            if warning and warning not in _WARNED:  # once per process: `glt run` / a sweep set up many runs
                _WARNED.add(warning)
                print(f"glt: {warning}", file=sys.stderr)

    def _model(self, cfg) -> None:
        name, options = cfg.model.backbone, dict(cfg.model.options)
        if self.store is not None:  # the identity on the store's rows (glt.models.feature_backbone)
            name, options = "features", {**options, "feature_dim": self.store.feature_dim}
        try:
            backbone = create_backbone(name, cfg.model.weights, cfg.model.weights_file, **options)
        except (TypeError, RuntimeError) as e:  # an unknown model.options key, a weights_file of other shapes
            raise GLTError(f"cannot build backbone '{cfg.model.backbone}' (model.options {dict(cfg.model.options)}, "
                           f"model.weights_file {cfg.model.weights_file}): {first_line(e)}") from None
        self._check_input_size(cfg, backbone)
        self._warn_contamination(cfg, backbone)
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

    def dataset(self, split: str, train: bool) -> SplitDataset | FeatureDataset:
        if self.store is not None:
            return FeatureDataset(self.store, self.bench, split)
        if self.batch_tf is not None:
            preprocess, train_batch, test_batch = self.batch_tf
            return SplitDataset(self.bench, split, cache=True, preprocess=preprocess,
                                batch_transform=train_batch if train else test_batch, image_cache=self.image_cache)
        ds = SplitDataset(self.bench, split, self.train_tf if train else self.test_tf, cache=self.cache,
                          image_cache=self.image_cache)
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
