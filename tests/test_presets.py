"""`--preset paper`: every method on an ImageNet-GLT-kind and an MSCOCO-GLT-kind benchmark resolves to the
settings of the original study. The expected values are written out here from the recipe the docs state
(docs/reproduce.md, "What `--preset paper` sets"; docs/methods.md; docs/ifl.md), independently of glt.presets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from glt.benchmark import Benchmark, Manifest, SplitTable, write_benchmark
from glt.config import build_config
from glt.engine.schedule import lr_factor
from glt.engine.trainer import stage_optim
from glt.errors import GLTError
from glt.methods import WRAPPERS, Context, resolve_method, zoo_names
from glt.presets import benchmark_kind, paper_preset

NUM_CLASSES = 4

# the recipe every method shares, both benchmarks (docs/reproduce.md)
PAPER_COMMON = {
    "epochs": 100, "batch_size": 256, "lr": 0.1, "momentum": 0.0, "weight_decay": 5e-4, "schedule": "cosine",
    "image_size": 112, "backbone": "resnext50_32x4d",
}
CROP_SCALE = {"imagenet": 0.08, "mscoco": 0.5}  # RandomResizedCrop lower scale; MSCOCO-GLT: scale (0.5, 1)
# per method (docs/methods.md; lr multipliers per epoch of 100 are checked through the schedule below)
WEIGHT_DECAY = {"ldam": 2e-4, "ride": 2e-4}  # alone; every IFL / IRM combination keeps 5e-4 (see ORIGINAL below)
MULTISTEP = {"ldam": ([80, 90], 0.01), "ride": ([60, 80], 0.1), "bbn": ([60, 80], 0.1)}
METHOD_ARGS = {
    "focal": {"gamma": 2.0},
    "logit_adj": {"tau": 1.0},
    "ldam": {"max_margin": 0.5, "scale": 30.0, "beta": 0.9999, "drw_start": 0.8},
    "crt": {"classifier_epochs": 10, "per_class": 4},
    "lws": {"classifier_epochs": 10, "per_class": 4},
    "tde": {"num_heads": 2, "tau": 16.0, "gamma": 1 / 32, "balanced_alpha": 0.0},
    "ride": {"num_experts": 3, "diversity_factor": -0.2},
    "tade": {"tau": 2.0},
}
TDE_ALPHA = {"imagenet": 2.0, "mscoco": 1.0}
# IFL's schedule and environments (docs/ifl.md); the published numbers used the original budget (N per environment)
IFL_ARGS = {
    "rebuild_after": [60, 80], "alpha_milestones": [60, 80], "alphas": [0.0, 0.001, 0.005], "center_lr": 0.5,
    "sample_scale": 4.0, "env_rule": "intra", "num_envs": 2, "budget": "original",
}
# train_irm_dual.py multiplies the weight by 10 at the end of epochs 30, 60, 90 (glt's IRM: after the milestones)
IRM_ARGS = {"alpha_milestones": [30, 60, 90], "alphas": [1e-3, 1e-2, 1e-1, 1.0], "rebuild_every_epoch": True}

# every method, IFL around each, the bare wrappers (ifl = ifl+blsoftmax, irm = irm+ce) and one IRM combination
# the methods of the small-CNN zoo (CLIP zero-shot needs an open_clip backbone and has no paper setting)
ALL_METHODS = zoo_names() + [f"ifl+{m}" for m in zoo_names()] + WRAPPERS.names() + ["irm+ldam"]


def _table(n: int, multilabel: bool) -> SplitTable:
    labels = np.arange(n) % NUM_CLASSES
    attributes = (np.arange(n * 5).reshape(n, 5) % 2).astype(np.uint8) if multilabel else None
    return SplitTable([f"s{i}" for i in range(n)], [f"images/{i}.jpg" for i in range(n)], labels,
                      np.zeros(n), np.arange(n) % 3, attributes)


def _bench(root: Path, name: str, info: dict, multilabel: bool = False, style: str = "imagenet") -> Path:
    """A benchmark directory as the builders write it: only the manifest matters to the preset (no images)."""
    manifest = Manifest(
        name=name, classes=[f"c{c}" for c in range(NUM_CLASSES)],
        attribute_kind="multilabel" if multilabel else "index", num_attributes=3,
        attribute_vector_length=5 if multilabel else 0, image_style=style,
        image_size=112 if style == "imagenet" else 16, info=info,
    )
    splits = [f"{t}/{s}" for t in ("glt", "cbl") for s in ("train", "val", "test_cbl", "test_gbl")] + ["glt/test_glt"]
    write_benchmark(root, manifest, {name: _table(8, multilabel) for name in splits})
    return root


@pytest.fixture(scope="module")
def benches(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("presets")
    return {
        "imagenet": _bench(tmp / "imagenet", "imagenet-glt", {"builder": "imagenet", "recipe": "ImageNet-GLT (docs/build.md)"}),
        "mscoco": _bench(tmp / "mscoco", "mscoco-glt", {"builder": "coco", "recipe": "MSCOCO-GLT (docs/coco.md)"}, multilabel=True),
        "folder": _bench(tmp / "folder", "flowers-glt", {"builder": "folder"}),
        "import_imagenet": _bench(tmp / "imp_in", "imagenet_sup_intra_lt",
                                  {"builder": "import", "layout": "imagenet-glt"}),
        "import_mscoco": _bench(tmp / "imp_co", "mscoco_glt", {"builder": "import", "layout": "mscoco-glt"},
                                multilabel=True),
        "digits": _bench(tmp / "digits", "colordigits-glt", {"builder": "digits"}, style="small"),
        "handmade": _bench(tmp / "handmade", "my-bench", {}),
    }


def _stage_lrs(cfg, stage_index: int = 0) -> tuple[object, list[float]]:
    """(stage, learning rate at the start of every epoch of it) as the training loop would schedule them."""
    spec = resolve_method(cfg.method)
    counts = np.array([8, 4, 2, 2])
    ctx = Context(NUM_CLASSES, counts, cfg.epochs, batch_size=cfg.data.batch_size,
                  labels=np.repeat(np.arange(NUM_CLASSES), counts))
    stage = spec.create(cfg.method_args, cfg.wrapper_args, ctx).stages()[stage_index]
    factor = lr_factor(stage_optim(cfg.optim, stage), stage.epochs, steps_per_epoch=1)
    return stage, [cfg.optim.lr * factor(e) for e in range(stage.epochs)]


@pytest.mark.parametrize("kind", ["imagenet", "mscoco"])
@pytest.mark.parametrize("method", ALL_METHODS)
def test_paper_preset_matches_spec(benches, kind, method):
    cfg = build_config(method=method, benchmark=benches[kind], preset="paper")
    base = resolve_method(method).base.name
    wrapper = resolve_method(method).wrapper
    assert cfg.epochs == PAPER_COMMON["epochs"]
    assert cfg.data.batch_size == PAPER_COMMON["batch_size"]
    assert cfg.data.image_size == PAPER_COMMON["image_size"]
    assert cfg.data.crop_scale_min == CROP_SCALE[kind]
    assert cfg.data.augment == ("randaugment" if base == "randaug" else "default")
    assert cfg.model.backbone == ("resnet50" if base == "bbn" else PAPER_COMMON["backbone"])  # BBN: models/ResNet_BBN.py
    assert cfg.model.weights is None and cfg.model.weights_file is None
    assert cfg.optim.lr == PAPER_COMMON["lr"]
    assert cfg.optim.momentum == 0.0 and not cfg.optim.nesterov  # as the published numbers
    wd = PAPER_COMMON["weight_decay"] if wrapper else WEIGHT_DECAY.get(base, PAPER_COMMON["weight_decay"])
    assert cfg.optim.weight_decay == wd
    assert cfg.optim.warmup_epochs == 0
    for key, value in METHOD_ARGS.get(base, {}).items():
        assert cfg.method_args[key] == pytest.approx(value), key
    if base == "tde":
        assert cfg.method_args.alpha == TDE_ALPHA[kind]
    if wrapper is not None:
        expected = IFL_ARGS if wrapper.name == "ifl" else {k: v for k, v in {**IFL_ARGS, **IRM_ARGS}.items()
                                                              if k not in ("rebuild_after", "center_lr")}
        for key, value in expected.items():
            assert cfg.wrapper_args[key] == value, key

    if base == "bbn" and wrapper is not None:
        return  # IFL cannot wrap BBN's two-sampler stage (the method refuses it when created)
    stage, lrs = _stage_lrs(cfg)
    assert stage.epochs == 100 and len(lrs) == 100
    if base in MULTISTEP:
        milestones, gamma = MULTISTEP[base]
        expected = [0.1 * gamma ** sum(e >= m for m in milestones) for e in range(100)]
    else:  # cosine from 0.1 to 0 over the 100 epochs
        expected = [0.05 * (1 + math.cos(math.pi * e / 100)) for e in range(100)]
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if base in ("crt", "lws"):  # stage 2: 10 epochs of class-aware sampling, 4 images per class per draw
        second, _ = _stage_lrs(cfg, 1)
        assert (second.epochs, second.sampler, second.trainable) == (10, "class_aware", "head")


def test_without_the_preset_the_defaults_differ(benches):
    """The check above can fail: the typed defaults are not the paper's setting."""
    cfg = build_config(method="ce", benchmark=benches["mscoco"])
    assert cfg.optim.momentum == 0.9 and cfg.data.crop_scale_min == 0.08


def test_command_line_and_yaml_beat_the_preset(benches, tmp_path):
    over = ["optim.momentum=0.9", "epochs=30", "data.crop_scale_min=0.3", "method_args.alpha=1.5", "data.batch_size=64"]
    cfg = build_config(method="tde", benchmark=benches["mscoco"], preset="paper", overrides=over)
    assert (cfg.optim.momentum, cfg.epochs, cfg.data.crop_scale_min, cfg.method_args.alpha) == (0.9, 30, 0.3, 1.5)
    assert cfg.data.batch_size == 64 and cfg.optim.lr == 0.1  # the rest still from the preset
    yaml = tmp_path / "c.yaml"
    yaml.write_text("optim:\n  lr: 0.05\nwrapper_args:\n  budget: matched\n")
    cfg = build_config(method="ifl+ride", benchmark=benches["imagenet"], preset="paper", yaml_file=str(yaml),
                       overrides=["optim.weight_decay=1e-4"])
    assert cfg.optim.lr == 0.05 and cfg.wrapper_args.budget == "matched" and cfg.optim.weight_decay == 1e-4
    assert cfg.optim.momentum == 0.0


@pytest.mark.parametrize("name, kind", [
    ("imagenet", "imagenet_glt"), ("mscoco", "mscoco_glt"), ("folder", "imagenet_glt"),
    ("import_imagenet", "imagenet_glt"), ("import_mscoco", "mscoco_glt"),
])
def test_benchmark_kind(benches, name, kind):
    assert benchmark_kind(Benchmark(benches[name]).manifest) == kind


@pytest.mark.parametrize("name", ["digits", "handmade"])
def test_other_benchmarks_are_refused(benches, name):
    with pytest.raises(GLTError, match="ImageNet-GLT and MSCOCO-GLT only") as e:
        build_config(method="ce", benchmark=benches[name], preset="paper")
    assert Benchmark(benches[name]).manifest.name in str(e.value)
    build_config(method="ce", benchmark=benches[name])  # without the preset the benchmark is fine


def test_bad_preset_requests(benches):
    with pytest.raises(GLTError, match="preset"):
        build_config(method="ce", benchmark=benches["imagenet"], preset="papers")
    with pytest.raises(GLTError, match="needs the benchmark"):
        build_config(method="ce", preset="paper")
    with pytest.raises(GLTError, match="benchmark kind"):
        paper_preset("cifar", "ce")
    with pytest.raises(GLTError, match="method"):
        paper_preset("imagenet_glt", "cee")


# ---- every value of the paper recipes, from reading the original's configs and scripts --------------------------
# config/ImageNet_LT.yaml and config/COCO_LT.yaml (dataset + training_opt), merged by utils/general_utils.py
# `update` with the config/algorithms_config.yaml entry of `--train_type`, which replaces optim_params,
# scheduler and scheduler_params wholesale where the entry has them. utils/training_utils.py create_optimizer
# builds SGD from lr and weight_decay only: momentum 0 whatever the YAML says. Written out by hand here, not
# from glt.presets.
ORIG_DATASET = {
    "imagenet": {"data.mean": [0.485, 0.456, 0.406], "data.std": [0.229, 0.224, 0.225],
                 "data.crop_scale_min": 0.08},  # DT_ImageNet_LT.py RandomResizedCrop(112)
    "mscoco": {"data.mean": [0.473, 0.429, 0.370], "data.std": [0.277, 0.268, 0.274],
               "data.crop_scale_min": 0.5},  # DT_COCO_LT.py RandomResizedCrop(112, scale=(0.5, 1.0))
}
ORIG_TRAINING_OPT = {
    "epochs": 100, "data.batch_size": 256, "data.image_size": 112, "data.augment": "default",
    "optim.lr": 0.1, "optim.momentum": 0.0, "optim.nesterov": False, "optim.weight_decay": 5e-4,
    "optim.schedule": "cosine", "optim.milestones": [], "optim.warmup_epochs": 0,  # cosine to endlr 0
    "model.backbone": "resnext50_32x4d", "model.weights": None, "model.weights_file": None, "model.options": {},
    # glt's own keys that the paper recipe fixes: decoding workers (speed only) and the class-count order
    "data.num_workers": 8, "data.prior_order": "label", "data.drop_last": False,  # DataLoader's default
    # Checkpoint.save every checkpoint_step (10) epochs and the last; ClassifierFC nn.Linear(bias=False);
    # scheduler.step() after each epoch
    "select_every": 10, "model.head_bias": False, "optim.schedule_granularity": "epoch",
}
# per algorithms_config.yaml entry (and the loss / classifier / sampler code it selects)
ORIG_ENTRY = {
    "ce": {},  # baseline
    "blsoftmax": {"method_args.prior_power": 1.0},  # baseline --loss_type BalancedSoftmax: logits + log prior
    "mixup": {},
    "randaug": {"data.augment": "randaugment"},  # baseline --rand_aug
    "focal": {"method_args.gamma": 2.0, "method_args.detach_factor": True},  # FocalLoss(gamma=2.0), pt detached
    "logit_adj": {"method_args.tau": 1.0},  # LA: tro 1.0
    "ldam": {"optim.weight_decay": 2e-4, "optim.schedule": "multistep", "optim.gamma": 0.01,  # LDAM entry
             "method_args.milestones": [0.8, 0.9], "method_args.max_margin": 0.5, "method_args.scale": 30.0,
             "method_args.drw_start": 0.8, "method_args.beta": 0.9999},  # LDAMLoss(max_m 0.5, s 30), set_weight
    "bbn": {"optim.schedule": "multistep", "optim.gamma": 0.1, "method_args.milestones": [0.6, 0.8],
            "model.backbone": "resnet50",
            # cb_block / rb_block: one Bottleneck each; l = 1 - ((epoch - 1) / num_epoch) ** 2; two loaders
            "method_args.branch_blocks": 1, "method_args.alpha_rule": "original", "method_args.branch_batch": "full"},
    "lff": {"method_args.q": 0.7, "method_args.ema": 0.0, "method_args.class_max": False},  # train_lff.py  # networks.BBN: models/ResNet_BBN.py bbn_resnet50, BottleNeck [3, 4, 6, 3]
    "tde": {"method_args.num_heads": 2, "method_args.tau": 16.0, "method_args.gamma": 0.03125,
            "method_args.balanced_alpha": 0.0},  # classifiers.TDE.params; alpha per dataset below
    "ride": {"optim.weight_decay": 2e-4, "optim.schedule": "multistep", "optim.gamma": 0.1,
             "method_args.milestones": [0.6, 0.8], "method_args.num_experts": 3, "method_args.scale": 30.0,
             "method_args.max_margin": 0.5, "method_args.diversity_factor": -0.2,
             "method_args.expert_width": 0.75, "method_args.reweight_after": 0.8},  # reduce_dimension; epoch > 80
    "tade": {"method_args.tau": 2.0, "method_args.expert_width": 0.75},
    # crt_stage2, ClassAwareSampler(4) of min(max n_c * C, 4N); the backbone frozen but left in train mode
    "crt": {"method_args.classifier_epochs": 10, "method_args.per_class": 4, "method_args.samples_per_epoch": None,
            "method_args.backbone_mode": "train"},
    "lws": {"method_args.classifier_epochs": 10, "method_args.per_class": 4, "method_args.samples_per_epoch": None,
            "method_args.backbone_mode": "train"},
}
ORIG_TDE_ALPHA = {"imagenet": 2.0, "mscoco": 1.0}  # ImageNet_LT.yaml / COCO_LT.yaml classifiers.TDE alpha
# center_dual (and center_LDAM_dual, center_ride, center_tade, center_dual_mixup): train_center_*.py. None of
# these entries has optim_params: weight decay 5e-4 for every base method; their schedulers are the base's.
ORIG_IFL = {
    "optim.weight_decay": 5e-4,
    "wrapper_args.env_rule": "intra", "wrapper_args.sample_scale": 4.0, "wrapper_args.num_envs": 2,
    "wrapper_args.env_scales": "original",  # two environments: e2 uses sample_scale itself
    "wrapper_args.rebuild_after": [60, 80], "wrapper_args.rebuild_every_epoch": False,  # update_milestones
    "wrapper_args.alpha_milestones": [60, 80], "wrapper_args.alphas": [0.0, 0.001, 0.005],  # center_*
    "wrapper_args.center_lr": 0.5, "wrapper_args.center_update": "optimizer",  # SGD(lr=0.5), grad / weight
    "wrapper_args.center_loss": "auto", "wrapper_args.triplet_margin": 1.0,  # TripletMarginLoss(margin=1.0)
    "wrapper_args.budget": "original",  # one DistributionSampler of len(dataset) per environment
    "wrapper_args.epoch_scores": "last", "wrapper_args.undrawn": "original",  # the epoch's dict of draws
    "wrapper_args.score_logits": "original",  # softmax of the classifier's output (ClassifierLDAM: cos)
    "wrapper_args.schedule_epochs": 100,
}
# irm_dual + train_irm_dual.py: always_update, grad.abs().sum() of the batch, irm_weight 1e-3 x irm_alpha 10 at
# the end of epochs 30, 60, 90 (decay_milestones)
ORIG_IRM = {
    "optim.weight_decay": 5e-4,
    "wrapper_args.env_rule": "intra", "wrapper_args.sample_scale": 4.0, "wrapper_args.num_envs": 2,
    "wrapper_args.env_scales": "original", "wrapper_args.rebuild_every_epoch": True, "wrapper_args.penalty": "original",
    "wrapper_args.alpha_milestones": [30, 60, 90], "wrapper_args.alphas": [1e-3, 1e-2, 1e-1, 1.0],
    "wrapper_args.budget": "original", "wrapper_args.epoch_scores": "last", "wrapper_args.undrawn": "original",
    "wrapper_args.score_logits": "original",
    "wrapper_args.schedule_epochs": 100,
}
# the center loss each original IFL script builds: CenterLoss unless cos_loss (CenterCosLoss) / triplet_loss
ORIG_CENTER = {"ifl": "euclidean", "ifl+blsoftmax": "euclidean", "ifl+ce": "euclidean", "ifl+mixup": "euclidean",
               "ifl+ldam": "cosine", "ifl+ride": "cosine", "ifl+tade": "euclidean"}


def original_recipe(kind: str, method: str) -> dict:
    spec = resolve_method(method)
    base = spec.base.name
    out = {**ORIG_TRAINING_OPT, **ORIG_DATASET[kind], **ORIG_ENTRY.get(base, {})}
    if base == "tde":
        out["method_args.alpha"] = ORIG_TDE_ALPHA[kind]
    if spec.wrapper is not None:
        out.update(ORIG_IFL if spec.wrapper.name == "ifl" else ORIG_IRM)
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("kind", ["imagenet", "mscoco"])
@pytest.mark.parametrize("method", ALL_METHODS)
def test_paper_recipe_pins_every_value_against_the_original(benches, kind, method):
    """Every key the preset sets has the original's value (and the preset sets no key this table lacks), and
    the resolved config keeps it: nothing merged later (the method's own defaults) may change it."""
    from omegaconf import OmegaConf

    want = original_recipe(kind, method)
    got = _flat(paper_preset({"imagenet": "imagenet_glt", "mscoco": "mscoco_glt"}[kind], method))
    assert set(got) == set(want), (sorted(set(got) - set(want)), sorted(set(want) - set(got)))
    cfg = build_config(method=method, benchmark=benches[kind], preset="paper")
    for key, value in want.items():
        assert got[key] == pytest.approx(value) if isinstance(value, float) else got[key] == value, key
        resolved = OmegaConf.select(cfg, key)
        resolved = OmegaConf.to_container(resolved) if OmegaConf.is_config(resolved) else resolved
        assert resolved == (pytest.approx(value) if isinstance(value, (float, list)) and value else value), key


@pytest.mark.parametrize("method, kind", sorted(ORIG_CENTER.items()))
def test_paper_center_loss_is_the_original_scripts(benches, method, kind):
    """CenterLoss / CenterCosLoss as each train_center_*.py builds it (triplet_loss False everywhere)."""
    cfg = build_config(method=method, benchmark=benches["imagenet"], preset="paper")
    labels = np.repeat(np.arange(NUM_CLASSES), 3)
    ctx = Context(NUM_CLASSES, np.bincount(labels), 100, batch_size=256, labels=labels)
    spec = resolve_method(method)
    assert spec.create(cfg.method_args, cfg.wrapper_args, ctx).center_kind == kind


@pytest.mark.parametrize("method", ["ifl+ldam", "ifl+ride", "irm+ldam"])
def test_wrapped_methods_keep_5e4_weight_decay_without_the_preset_too(benches, method):
    """The defaults follow the original as well (center_LDAM_dual, center_ride: 5e-4), and the wrapper's
    weight decay does not drop the base method's schedule (deep merge)."""
    cfg = build_config(method=method, benchmark=benches["imagenet"])
    base = build_config(method=method.split("+")[1], benchmark=benches["imagenet"])
    assert cfg.optim.weight_decay == 5e-4 and base.optim.weight_decay == 2e-4
    assert cfg.optim.schedule == base.optim.schedule == "multistep" and cfg.optim.gamma == base.optim.gamma


def test_mscoco_benchmarks_default_to_mscoco_normalisation(benches):
    """A benchmark-kind default: MSCOCO-GLT benchmarks use the original's MSCOCO statistics without the preset;
    other benchmarks keep ImageNet's (None), and the user can still set them."""
    coco = build_config(method="ce", benchmark=benches["mscoco"])
    assert list(coco.data.mean) == [0.473, 0.429, 0.370] and list(coco.data.std) == [0.277, 0.268, 0.274]
    for name in ("import_mscoco",):
        assert list(build_config(method="ce", benchmark=benches[name]).data.mean) == [0.473, 0.429, 0.370]
    for name in ("imagenet", "folder", "digits", "handmade"):
        assert build_config(method="ce", benchmark=benches[name]).data.mean is None
    mine = build_config(method="ce", benchmark=benches["mscoco"], preset="paper", overrides=["data.mean=[0.5,0.5,0.5]"])
    assert list(mine.data.mean) == [0.5, 0.5, 0.5]
    with pytest.raises(GLTError, match="3 values"):
        build_config(method="ce", benchmark=benches["mscoco"], overrides=["data.std=[0.5]"])


def test_normalisation_reaches_the_transforms():
    import torch

    from glt.data.transforms import build_transforms

    img = torch.full((3, 128, 128), 128, dtype=torch.uint8)
    _, test = build_transforms("imagenet", 112, mean=[0.473, 0.429, 0.370], std=[0.277, 0.268, 0.274])
    got = test(img)[:, 0, 0]
    want = (torch.tensor(128 / 255) - torch.tensor([0.473, 0.429, 0.370])) / torch.tensor([0.277, 0.268, 0.274])
    torch.testing.assert_close(got, want)
    _, default = build_transforms("imagenet", 112)
    want_in = (torch.tensor(128 / 255) - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(default(img)[:, 0, 0], want_in)


def test_glt_config_prints_the_recipe_in_the_original_layout(benches, capsys):
    import yaml

    from glt.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["config", "--method", "ifl+ldam", "--benchmark", str(benches["mscoco"]), "--preset", "paper",
              "--original"])
    assert e.value.code == 0
    view = yaml.safe_load(capsys.readouterr().out)
    # config/COCO_LT.yaml + algorithms_config.yaml center_LDAM_dual, as the original's update() merges them
    assert view["train_type"] == "center_LDAM_dual"
    assert view["dataset"]["rgb_mean"] == [0.473, 0.429, 0.370] and view["dataset"]["rgb_std"] == [0.277, 0.268, 0.274]
    t = view["training_opt"]
    assert (t["num_epochs"], t["batch_size"], t["loss"], t["scheduler"]) == (100, 256, "LDAM", "multistep")
    assert t["optim_params"] == {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0005}
    assert t["scheduler_params"] == {"gamma": 0.01, "milestones": [80, 90]}
    assert (view["sampler"], view["num_sampler"], view["batch_split"]) == ("DistributionSampler", 2, True)
    assert view["algorithm_opt"] == {
        "env_type": "intra", "sample_scale": 4.0, "always_update": False, "update_milestones": [60, 80],
        "center_milestones": [0, 60, 80], "center_weights": [0.0, 0.001, 0.005], "triplet_loss": False,
        "cos_loss": True, "center_optimizer": {"lr": 0.5}}
    with pytest.raises(SystemExit):
        main(["config", "--method", "ride", "--benchmark", str(benches["imagenet"]), "--preset", "paper"])
    text = capsys.readouterr().out
    assert "weight_decay: 0.0002" in text and "method: ride" in text


def test_paper_irm_weight_schedule_is_train_irm_dual(benches):
    """train_irm_dual.py: irm_weight 1e-3, multiplied by irm_alpha 10 at the end of each decay_milestones epoch."""
    cfg = build_config(method="irm", benchmark=benches["imagenet"], preset="paper")
    labels = np.repeat(np.arange(NUM_CLASSES), 3)
    ctx = Context(NUM_CLASSES, np.bincount(labels), 100, batch_size=256, labels=labels)
    spec = resolve_method("irm")
    m = spec.create(cfg.method_args, cfg.wrapper_args, ctx)
    weight, want = 0.001, []
    for epoch in range(100):
        want.append(weight)
        if epoch in (30, 60, 90):
            weight *= 10
    assert [m.alpha(e) for e in range(100)] == pytest.approx(want)
