"""`--preset paper`: every method on an ImageNet-GLT-kind and an MSCOCO-GLT-kind benchmark resolves to the
settings of the original study. The expected values are written out here from the SPEC text (sections 4-6),
independently of glt.presets."""

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
from glt.methods import METHODS, WRAPPERS, Context, resolve_method
from glt.presets import benchmark_kind, paper_preset

NUM_CLASSES = 4

# SPEC 4, both benchmarks
SPEC4 = {
    "epochs": 100, "batch_size": 256, "lr": 0.1, "momentum": 0.0, "weight_decay": 5e-4, "schedule": "cosine",
    "image_size": 112, "backbone": "resnext50_32x4d",
}
CROP_SCALE = {"imagenet": 0.08, "mscoco": 0.5}  # RandomResizedCrop lower scale; MSCOCO-GLT: scale (0.5, 1)
# SPEC 5 (lr multipliers per epoch of 100 are checked through the schedule below)
WEIGHT_DECAY = {"ldam": 2e-4, "ride": 2e-4}
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
# SPEC 6: IFL's schedule and environments; the published numbers used the original budget (N per environment)
IFL_ARGS = {
    "rebuild_after": [60, 80], "alpha_milestones": [60, 80], "alphas": [0.0, 0.001, 0.005], "center_lr": 0.5,
    "sample_scale": 4.0, "env_rule": "intra", "num_envs": 2, "budget": "original",
}
IRM_ARGS = {"alpha_milestones": [30, 60, 90], "alphas": [1e-3, 1e-2, 1e-1, 1.0]}

# every method, IFL around each, the bare wrappers (ifl = ifl+blsoftmax, irm = irm+ce) and one IRM combination
ALL_METHODS = METHODS.names() + [f"ifl+{m}" for m in METHODS.names()] + WRAPPERS.names() + ["irm+ldam"]


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
        "imagenet": _bench(tmp / "imagenet", "imagenet-glt", {"builder": "imagenet", "recipe": "SPEC 2.1"}),
        "mscoco": _bench(tmp / "mscoco", "mscoco-glt", {"builder": "coco", "recipe": "SPEC 2.2"}, multilabel=True),
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
    assert cfg.epochs == SPEC4["epochs"]
    assert cfg.data.batch_size == SPEC4["batch_size"]
    assert cfg.data.image_size == SPEC4["image_size"]
    assert cfg.data.crop_scale_min == CROP_SCALE[kind]
    assert cfg.data.augment == ("randaugment" if base == "randaug" else "default")
    assert cfg.model.backbone == SPEC4["backbone"] and cfg.model.weights is None and cfg.model.weights_file is None
    assert cfg.optim.lr == SPEC4["lr"]
    assert cfg.optim.momentum == 0.0 and not cfg.optim.nesterov  # as the published numbers
    assert cfg.optim.weight_decay == WEIGHT_DECAY.get(base, SPEC4["weight_decay"])
    assert cfg.optim.warmup_epochs == 0
    for key, value in METHOD_ARGS.get(base, {}).items():
        assert cfg.method_args[key] == pytest.approx(value), key
    if base == "tde":
        assert cfg.method_args.alpha == TDE_ALPHA[kind]
    if wrapper is not None:
        expected = IFL_ARGS if wrapper.name == "ifl" else {**IFL_ARGS, **IRM_ARGS}
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
