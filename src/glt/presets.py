"""`--preset paper`: the training settings of the original GLT study for each benchmark kind (ImageNet-GLT,
MSCOCO-GLT) and each method, as the original code resolves them (config/ImageNet_LT.yaml, config/COCO_LT.yaml,
config/algorithms_config.yaml merged by utils/general_utils.py `update`; docs/reproduce.md), so
`glt run --preset paper` reproduces the published setup.

A preset is merged in `glt.config.build_config` after the benchmark-style and benchmark-kind defaults and
the method's own `train_defaults`, and before the YAML file and the `key=value` overrides: the preset is
the complete paper recipe, and the user still wins. The method settings below repeat the key settings of
the original's algorithm entries (most equal the methods' defaults): pinned here, a later change of a
default cannot silently change the paper setting. tests/test_presets.py pins every value against the
original's configs.
"""

from __future__ import annotations

import copy
from typing import Any

from glt.errors import GLTError
from glt.mapping import deep_update

KINDS = ("imagenet_glt", "mscoco_glt")
# builders (manifest.info["builder"]) whose benchmarks follow the ImageNet-GLT recipe (docs/build.md); `folder` and
# `torchvision` run that same recipe on other images, so the paper's ImageNet-GLT training settings apply
IMAGENET_BUILDERS = ("imagenet", "folder", "torchvision")
MSCOCO_BUILDERS = ("coco",)
# `glt import` records the layout of the original files it read (glt.benchmark.original)
IMPORT_LAYOUTS = {"imagenet-glt": "imagenet_glt", "mscoco-glt": "mscoco_glt"}

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

# Key settings of each base method (its config/algorithms_config.yaml entry), the same on both benchmarks.
# Milestones are fractions of the epochs (the methods scale them to the run): 0.8 / 0.9 of 100 epochs = 80 / 90.
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "focal": {"method_args": {"gamma": 2.0, "detach_factor": True}},  # FocalLoss: pt = logpt.detach().exp()
    "blsoftmax": {"method_args": {"prior_power": 1.0}},  # prior = the training class frequencies
    "logit_adj": {"method_args": {"tau": 1.0}},
    "ldam": {
        "method_args": {"max_margin": 0.5, "scale": 30.0, "drw_start": 0.8, "beta": 0.9999, "milestones": [0.8, 0.9]},
        "optim": {"weight_decay": 2e-4, "schedule": "multistep", "gamma": 0.01},
    },
    # stage 2 (train_stage2.py): ClassAwareSampler(num_samples_cls=4) of min(max_c n_c * C, 4 N) samples, the
    # frozen backbone left in train mode
    "crt": {"method_args": {"classifier_epochs": 10, "per_class": 4, "samples_per_epoch": None,
                            "backbone_mode": "train"}},
    "lws": {"method_args": {"classifier_epochs": 10, "per_class": 4, "samples_per_epoch": None,
                            "backbone_mode": "train"}},
    "tde": {"method_args": {"num_heads": 2, "tau": 16.0, "gamma": 1 / 32, "balanced_alpha": 0.0}},
    # BBN's networks entry is models/ResNet_BBN.py bbn_resnet50: a plain ResNet-50 (not ResNeXt), whose last
    # bottleneck is doubled into the two branches; train_bbn.py: l = 1 - ((epoch - 1) / num_epoch)^2, and two
    # loaders of batch_size images each
    "bbn": {"model": {"backbone": "resnet50"},
            "method_args": {"milestones": [0.6, 0.8], "branch_blocks": 1, "alpha_rule": "original",
                            "branch_batch": "full"},
            "optim": {"schedule": "multistep", "gamma": 0.1}},
    # train_lff.py: the weight of a sample from the current batch's losses (no moving average, no class max)
    "lff": {"method_args": {"q": 0.7, "ema": 0.0, "class_max": False}},
    "randaug": {"data": {"augment": "randaugment"}},
    "ride": {
        # models/ResNet_RIDE.py reduce_dimension: each expert's layer3 / layer4 at 3/4 width (1536 features)
        "method_args": {"num_experts": 3, "scale": 30.0, "max_margin": 0.5, "diversity_factor": -0.2,
                        "milestones": [0.6, 0.8], "expert_width": 0.75, "reweight_after": 0.8},
        # weight decay 2e-4: the RIDE entry's optim_params (also the method's default)
        "optim": {"weight_decay": 2e-4, "schedule": "multistep", "gamma": 0.1},
    },
    "tade": {"method_args": {"tau": 2.0, "expert_width": 0.75}},
}

# Settings of a method that differ between the benchmarks (the dataset configs' classifiers.TDE.params.alpha)
KIND_METHOD_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("imagenet_glt", "tde"): {"method_args": {"alpha": 2.0}},
    ("mscoco_glt", "tde"): {"method_args": {"alpha": 1.0}},
}

# The wrappers. The original's IFL entries (center_dual, center_LDAM_dual, center_ride, center_tade,
# center_dual_mixup, center_ride_mixup) and IRM entry (irm_dual) set no optim_params: they keep the dataset
# config's weight decay 5e-4 even where the base method alone uses 2e-4 (LDAM, RIDE); their schedulers are
# the base method's (center_LDAM_dual: x0.01 at 80 / 90, center_ride: x0.1 at 60 / 80, else cosine).
# budget "original": each environment yields N samples per epoch (2N in all), as the original's
# DistributionSampler per environment did.
WRAPPER_SETTINGS: dict[str, dict[str, Any]] = {
    "ifl": {"optim": {"weight_decay": 5e-4}, "wrapper_args": {
        "env_rule": "intra", "num_envs": 2, "sample_scale": 4.0, "env_scales": "original", "epoch_scores": "last",
        "undrawn": "original", "score_logits": "original", "center_loss": "auto", "triplet_margin": 1.0,
        "center_update": "optimizer", "center_lr": 0.5, "budget": "original", "schedule_epochs": 100, "rebuild_after": [60, 80],
        "rebuild_every_epoch": False, "alpha_milestones": [60, 80], "alphas": [0.0, 0.001, 0.005],
    }},
    # irm_dual / train_irm_dual.py: always_update (rebuilt after every epoch), the L1 penalty of the batch, its
    # weight irm_weight 1e-3 multiplied by irm_alpha 10 at the end of epochs 30, 60 and 90 (decay_milestones;
    # glt's IRM applies alphas[k] to the epochs after k milestones, so from epochs 31, 61 and 91 on)
    "irm": {"optim": {"weight_decay": 5e-4}, "wrapper_args": {
        "env_rule": "intra", "num_envs": 2, "sample_scale": 4.0, "env_scales": "original", "epoch_scores": "last",
        "undrawn": "original", "score_logits": "original", "budget": "original", "schedule_epochs": 100,
        "rebuild_every_epoch": True,
        "penalty": "original", "alpha_milestones": [30, 60, 90], "alphas": [1e-3, 1e-2, 1e-1, 1.0],
    }},
}




def kind_of(manifest) -> str | None:
    """'imagenet_glt' or 'mscoco_glt' for a benchmark manifest, from the builder that made it (or the layout
    `glt import` read); None for any other benchmark (ColorDigits-GLT, a hand-made one)."""
    info = manifest.info if isinstance(manifest.info, dict) else {}
    builder = info.get("builder")
    if manifest.image_style == "imagenet":
        if builder in IMAGENET_BUILDERS:
            return "imagenet_glt"
        if builder in MSCOCO_BUILDERS:
            return "mscoco_glt"
        if builder == "import" and info.get("layout") in IMPORT_LAYOUTS:
            return IMPORT_LAYOUTS[info["layout"]]
    return None


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
    base = spec.base.name
    out = copy.deepcopy(COMMON)
    deep_update(out, KIND_SETTINGS[kind])
    deep_update(out, METHOD_SETTINGS.get(base, {}))
    deep_update(out, KIND_METHOD_SETTINGS.get((kind, base), {}))
    if spec.wrapper is not None:
        deep_update(out, WRAPPER_SETTINGS.get(spec.wrapper.name, {}))
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
    if o.schedule == "cosine":
        sched = {"scheduler": "cosine", "scheduler_params": {"endlr": 0.0}}
    elif o.schedule == "multistep":
        ms = list(o.milestones) or [round(f * epochs) for f in m.get("milestones", [])]
        sched = {"scheduler": "multistep", "scheduler_params": {"gamma": float(o.gamma), "milestones": ms}}
    else:
        sched = {"scheduler": str(o.schedule),
                 "scheduler_params": {"gamma": float(o.gamma), "step_size": int(o.step_size)}}
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
            **sched,
        },
        "sampler": "default",
        "count_dataset_order": "text (the original's bug)" if d.prior_order == "original_text_sort" else "label",
    }
    if base in ("crt", "lws"):
        view["stage2"] = {"num_epochs": int(m.get("classifier_epochs", 10)), "sampler": "ClassAwareSampler",
                          "num_samples_cls": int(m.get("per_class", 4))}
    if spec.wrapper is not None:
        w = _plain(cfg.wrapper_args)
        f = epochs / w["schedule_epochs"]
        scaled = [int(round(e * f)) for e in w["alpha_milestones"]]
        view["sampler"] = "DistributionSampler"
        view["num_sampler"] = w["num_envs"]
        view["batch_split"] = True
        view["samples_per_environment"] = "N (len(dataset))" if w["budget"] == "original" else \
            f"N // {w['num_envs']} (glt's matched budget; the original has none)"
        algo: dict[str, Any] = {"env_type": "simple_aug" if w["env_rule"] == "uniform" else w["env_rule"],
                                "sample_scale": w["sample_scale"], "always_update": w["rebuild_every_epoch"],
                                "update_milestones": [int(round(e * f)) for e in w.get("rebuild_after", [])]}
        if spec.wrapper.name == "irm":
            alphas = w["alphas"]
            ratio = alphas[1] / alphas[0] if len(alphas) > 1 and alphas[0] else None
            algo.update({"irm_weight": alphas[0], "irm_alpha": ratio,
                         "decay_milestones": scaled})  # glt's IRM: the weight rises after these epochs
        else:
            kind = w["center_loss"]
            if kind == "auto":
                kind = "cosine" if getattr(spec.base, "cosine_classifier", False) else "euclidean"
            algo.update({"center_milestones": [0, *scaled], "center_weights": w["alphas"],
                         "triplet_loss": kind == "triplet", "cos_loss": kind == "cosine",
                         "center_optimizer": {"lr": w["center_lr"]} if w["center_update"] == "optimizer" else
                         f"glt's moving average (momentum {w['center_ema']}; the original has none)"})
        view["algorithm_opt"] = algo
    return view
