"""`--preset paper`: the training settings of the original GLT study for each benchmark kind (ImageNet-GLT,
MSCOCO-GLT) and each method, as the original code resolves them (config/ImageNet_LT.yaml, config/COCO_LT.yaml,
config/algorithms_config.yaml merged by utils/general_utils.py `update`; docs/reproduce.md), so
`glt run --preset paper` reproduces the published setup.

A preset is merged in `glt.config.build_config` after the benchmark-style and benchmark-kind defaults and
the method's own `train_defaults`, and before the YAML file and the `key=value` overrides: the preset is
the complete paper recipe, and the user still wins. This module holds what every method shares (COMMON,
KIND_SETTINGS); each method class holds its own (`paper`, `paper_by_kind`), which repeat the key settings
of the original's algorithm entries even where they equal the method's defaults: pinned there, a later
change of a default cannot silently change the paper setting. tests/test_presets.py pins every value
against the original's configs.
"""

from __future__ import annotations

import copy
from typing import Any

from glt.errors import GLTError
from glt.mapping import deep_update

KINDS = ("imagenet_glt", "mscoco_glt")

# per-channel normalisation of each kind: the original's dataset configs (rgb_mean / rgb_std)
IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # config/ImageNet_LT.yaml
MSCOCO_NORM = {"mean": [0.473, 0.429, 0.370], "std": [0.277, 0.268, 0.274]}  # config/COCO_LT.yaml, COCO_BL.yaml

# Defaults of a benchmark kind, with or without the preset (glt.config.build_config merges them after the
# benchmark-style defaults): an MSCOCO-GLT benchmark is normalised with MSCOCO's own statistics, as the original
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "mscoco_glt": {"data": dict(MSCOCO_NORM)},
}

# Every method on both benchmarks (config/*_LT.yaml training_opt). Momentum 0: the original's create_optimizer
# (utils/training_utils.py) never passes the configs' momentum 0.9 to SGD, so every published number has none.
COMMON: dict[str, Any] = {
    "epochs": 100,
    # the original saves a checkpoint every 10th epoch and the last (checkpoint_opt.checkpoint_step 10) and
    # selects the best validation accuracy among those (utils/checkpoint_utils.py Checkpoint.save)
    "select_every": 10,
    "data": {
        "batch_size": 256,  # the global batch: split across the ranks of a torchrun job
        "image_size": 112,
        "augment": "default",  # RandomResizedCrop(112) + flip; test: resize 128, centre crop 112
        "prior_order": "label",  # not the original's count_dataset bug (docs/fidelity.md, section bugs)
        "drop_last": False,  # data/dataloader.py: DataLoader's default, the last smaller batch is trained
        # not a setting of the original (it changes speed, not results): enough JPEG decoding to feed one GPU
        "num_workers": 8,
    },
    # models/ClassifierFC.py and the heads built like it: nn.Linear(..., bias=False)
    "model": {"backbone": "resnext50_32x4d", "weights": None, "weights_file": None, "options": {},
              "head_bias": False},
    "optim": {
        "lr": 0.1,
        "schedule_granularity": "epoch",  # scheduler.step() once after every epoch (every train_*.py)
        "momentum": 0.0,
        "nesterov": False,
        "weight_decay": 5e-4,
        "schedule": "cosine",  # to 0 at the end of training
        "milestones": [],
        "warmup_epochs": 0,
    },
}

# What differs between the two benchmarks: data/DT_ImageNet_LT.py RandomResizedCrop(112) (scale 0.08-1),
# data/DT_COCO_LT.py RandomResizedCrop(112, scale=(0.5, 1.0)); the dataset configs' rgb_mean / rgb_std
KIND_SETTINGS: dict[str, dict[str, Any]] = {
    "imagenet_glt": {"data": {"crop_scale_min": 0.08, **IMAGENET_NORM}},
    "mscoco_glt": {"data": {"crop_scale_min": 0.5, **MSCOCO_NORM}},
}

# Each method's own settings are its class's `paper` / `paper_by_kind` (glt.methods; MethodSpec.paper_settings).


def kind_of(manifest) -> str | None:
    """'imagenet_glt' or 'mscoco_glt' for a benchmark whose manifest `kind` has a paper recipe here; None for
    any other benchmark (ColorDigits-GLT, a hand-made one)."""
    return manifest.kind if manifest.kind in KINDS else None


def kind_defaults(manifest) -> dict[str, Any]:
    """The benchmark kind's defaults (KIND_DEFAULTS) for a manifest; {} for other benchmarks."""
    return copy.deepcopy(KIND_DEFAULTS.get(kind_of(manifest), {}))


def benchmark_kind(manifest, source: str | None = None) -> str:
    """'imagenet_glt' or 'mscoco_glt' for a benchmark manifest, from the builder that made it; any other
    benchmark (ColorDigits-GLT, a hand-made one) is a GLTError naming it."""
    kind = kind_of(manifest)
    if kind is not None:
        return kind
    info = manifest.info if isinstance(manifest.info, dict) else {}
    builder = info.get("builder")
    where = f" in {source}" if source else ""
    made_by = f"built by '{builder}'" if builder else "with no builder recorded in its manifest"
    raise GLTError(
        f"--preset paper is defined for ImageNet-GLT and MSCOCO-GLT only (benchmarks made by `glt build "
        f"imagenet|folder|torchvision|coco` or `glt import`); benchmark '{manifest.name}'{where} is {made_by}, "
        f"image style '{manifest.image_style}'. Leave --preset out, or give the settings as key=value overrides"
    )


def paper_preset(kind: str, method: str) -> dict[str, Any]:
    """The paper's settings (a nested dict of config keys) for `method` (`NAME`, `WRAPPER+NAME` or a bare
    wrapper such as `ifl`) on a benchmark of `kind`."""
    from glt.methods import resolve_method

    if kind not in KINDS:
        raise GLTError(f"unknown benchmark kind '{kind}' for --preset paper (one of: {', '.join(KINDS)})")
    spec = resolve_method(method)
    out = copy.deepcopy(COMMON)
    deep_update(out, KIND_SETTINGS[kind])
    deep_update(out, spec.paper_settings(kind))
    return out


def paper_settings(manifest, method: str, source: str | None = None) -> dict[str, Any]:
    """`--preset paper` for a benchmark manifest: its kind decides the settings."""
    return paper_preset(benchmark_kind(manifest, source), method)


# ---- the resolved config in the original's terms (`glt config --original`) ---------------------------------
# The original's config/algorithms_config.yaml entry (`main.py --train_type`, with its flags) behind a glt method
# name; None: no entry of its own (glt's composition of a base method and a wrapper). "inferred": the published
# row exists, but the repository has no entry for it; the closest command is given.
ORIGINAL_ENTRIES: dict[str, str] = {
    "ce": "baseline",
    "blsoftmax": "baseline --loss_type BalancedSoftmax",
    "mixup": "mixup",
    "randaug": "baseline --rand_aug",
    "focal": "Focal",
    "logit_adj": "LA",
    "ldam": "LDAM",
    "bbn": "BBN",
    "tde": "TDE",
    "ride": "RIDE",
    "tade": "TADE",
    "lff": "LFF",
    "crt": "stage1, then crt_stage2",
    "lws": "stage1, then lws_stage2",
    "ifl+blsoftmax": "center_dual",
    "ifl+ce": "center_dual --loss_type CrossEntropy",
    "ifl+mixup": "center_dual_mixup",
    "ifl+ldam": "center_LDAM_dual",
    "ifl+ride": "center_ride",
    "ifl+tade": "center_tade",
    "ifl+randaug": "center_dual --rand_aug (inferred)",
    "ifl+crt": "center_dual --loss_type CrossEntropy, then crt_stage2 (inferred)",
    "ifl+lws": "center_dual --loss_type CrossEntropy, then lws_stage2 (inferred)",
    "ifl+logit_adj": "center_dual --loss_type CrossEntropy, tested as LA (inferred)",
    "irm+ce": "irm_dual",
}
ORIGINAL_LOSSES = {"blsoftmax": "BalancedSoftmax", "focal": "Focal", "ldam": "LDAM", "ride": "RIDE", "tade": "TADE",
                   "lff": "IFF"}


def _plain(value):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _schedule_view(o, m: dict, epochs: int) -> dict[str, Any]:
    """The original's scheduler / scheduler_params of a resolved optim section."""
    if o.schedule == "cosine":
        return {"scheduler": "cosine", "scheduler_params": {"endlr": 0.0}}
    if o.schedule == "multistep":
        ms = list(o.milestones) or [round(f * epochs) for f in m.get("milestones", [])]
        return {"scheduler": "multistep", "scheduler_params": {"gamma": float(o.gamma), "milestones": ms}}
    return {"scheduler": str(o.schedule), "scheduler_params": {"gamma": float(o.gamma), "step_size": int(o.step_size)}}


def _irm_algorithm(spec, cfg, w: dict, scaled: list[int]) -> dict[str, Any]:
    alphas = w["alphas"]
    ratio = alphas[1] / alphas[0] if len(alphas) > 1 and alphas[0] else None
    # glt's IRM: the weight rises after these epochs
    return {"irm_weight": alphas[0], "irm_alpha": ratio, "decay_milestones": scaled}


def _ifl_algorithm(spec, cfg, w: dict, scaled: list[int]) -> dict[str, Any]:
    kind = w["center_loss"]
    if kind == "auto":  # as IFL decides it: from what the base method's head declares
        from glt.methods.ifl import auto_center_kind
        from glt.methods.probe import probe_context, probe_head

        kind = auto_center_kind(probe_head(spec.base(cfg.method_args, probe_context(epochs=int(cfg.epochs)))))
    return {"center_milestones": [0, *scaled], "center_weights": w["alphas"],
            "triplet_loss": kind == "triplet", "cos_loss": kind == "cosine",
            "center_optimizer": {"lr": w["center_lr"]} if w["center_update"] == "optimizer" else
            f"glt's moving average (momentum {w['center_ema']}; the original has none)"}


# a wrapper's own algorithm_opt keys, by wrapper name
ALGORITHM_VIEWS = {"ifl": _ifl_algorithm, "irm": _irm_algorithm}


def _wrapper_view(spec, cfg, epochs: int) -> dict[str, Any]:
    """The sampler and algorithm_opt keys of an environment wrapper (IFL, IRM)."""
    w = _plain(cfg.wrapper_args)
    f = epochs / w["schedule_epochs"]
    scaled = [int(round(e * f)) for e in w["alpha_milestones"]]
    algo: dict[str, Any] = {"env_type": "simple_aug" if w["env_rule"] == "uniform" else w["env_rule"],
                            "sample_scale": w["sample_scale"], "always_update": w["rebuild_every_epoch"],
                            "update_milestones": [int(round(e * f)) for e in w.get("rebuild_after", [])]}
    own = ALGORITHM_VIEWS.get(spec.wrapper.name)
    if own is not None:
        algo.update(own(spec, cfg, w, scaled))
    return {
        "sampler": "DistributionSampler", "num_sampler": w["num_envs"], "batch_split": True,
        "samples_per_environment": "N (len(dataset))" if w["budget"] == "original" else
        f"N // {w['num_envs']} (glt's matched budget; the original has none)",
        "algorithm_opt": algo,
    }


def original_view(cfg) -> dict[str, Any]:
    """A resolved run config (glt.config.build_config) in the layout of the original's merged config
    (config/<dataset>.yaml after utils/general_utils.py `update` with its algorithms_config.yaml entry), so a
    reader can hold the two side by side. Epoch lists are those of this run (scaled schedules resolved)."""
    from glt.methods import resolve_method

    spec = resolve_method(str(cfg.method))
    base = spec.base.name
    full = f"{spec.wrapper.name}+{base}" if spec.wrapper is not None else base
    epochs = int(cfg.epochs)
    o, d, m = cfg.optim, cfg.data, _plain(cfg.method_args) or {}
    mean = list(d.mean) if d.mean is not None else IMAGENET_NORM["mean"]
    std = list(d.std) if d.std is not None else IMAGENET_NORM["std"]
    view: dict[str, Any] = {
        "train_type": ORIGINAL_ENTRIES.get(full),
        "networks": {"type": "BBN" if base == "bbn" else ("RIDE" if base in ("ride", "tade") else "ResNext"),
                     "backbone": str(cfg.model.backbone)},
        "dataset": {"rgb_mean": mean, "rgb_std": std, "rand_aug": d.augment == "randaugment",
                    "random_resized_crop": {"size": d.image_size, "scale": [float(d.crop_scale_min), 1.0]}},
        "training_opt": {
            "num_epochs": epochs, "batch_size": int(d.batch_size),
            "loss": ORIGINAL_LOSSES.get(base, "CrossEntropy"), "optimizer": "SGD",
            # the YAML's momentum 0.9 never reaches SGD in the original (create_optimizer): 0 is what ran
            "optim_params": {"lr": float(o.lr), "momentum": float(o.momentum), "weight_decay": float(o.weight_decay)},
            **_schedule_view(o, m, epochs),
        },
        "sampler": "default",
        "count_dataset_order": "text (the original's bug)" if d.prior_order == "original_text_sort" else "label",
    }
    if base in ("crt", "lws"):
        view["stage2"] = {"num_epochs": int(m.get("classifier_epochs", 10)), "sampler": "ClassAwareSampler",
                          "num_samples_cls": int(m.get("per_class", 4))}
    if spec.wrapper is not None:
        view.update(_wrapper_view(spec, cfg, epochs))
    return view
