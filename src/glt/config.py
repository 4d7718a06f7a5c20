"""Run configuration: typed defaults (dataclasses) < benchmark-style and benchmark-kind defaults < method
defaults < `--preset` < YAML file < `key=value` overrides, merged with OmegaConf. Unknown keys are errors with
suggestions."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from glt.errors import GLTError, unknown_name


@dataclass
class DataConfig:
    benchmark: str = "???"
    track: str = "glt"  # train on <track>/train, select on <track>/val, test on the track's test splits
    batch_size: int = 256
    eval_batch_size: int = 512
    # drop an epoch's last, smaller training batch when the epoch has more than one (glt's choice: a batch of a
    # few images gives BatchNorm noisy statistics); false trains it, as the original's DataLoader (--preset paper)
    drop_last: bool = True
    num_workers: int = 2
    image_size: int | None = None  # None: the benchmark's manifest
    # train-time augmentation: "default" (the benchmark style's), "randaugment" (+ the original's RandAugment,
    # glt.data.randaugment), "randaugment_torchvision" (+ torchvision's v2.RandAugment), "none"
    augment: str = "default"
    crop_scale_min: float = 0.08  # RandomResizedCrop lower scale (MSCOCO-GLT used 0.5)
    # per-channel normalisation; None: ImageNet's. MSCOCO-GLT benchmarks default to the original's own
    # (config/COCO_LT.yaml rgb_mean / rgb_std), set in build_config from the benchmark kind
    mean: list[float] | None = None
    std: list[float] | None = None
    # which class each entry of the class counts of Balanced Softmax / LDAM / RIDE / TADE belongs to:
    # label (right) | original_text_sort (the original's count_dataset bug; docs/fidelity.md, section bugs)
    prior_order: str = "label"
    cache_images: bool | None = None  # decode all images once into memory; None: for small benchmarks
    # resized copies written by `glt cache`: None ($GLT_IMAGE_CACHE, else auto: the smallest complete
    # cache large enough for image_size), "off" (the originals), a short side (128) or a cache folder name
    image_cache: str | None = None
    # a feature store written by `glt features`: train and score on its rows instead of the images, through the
    # "features" backbone (the identity, or model.options.adapter); transforms and augmentation do not apply
    features: str | None = None


@dataclass
class ModelConfig:
    backbone: str = "resnext50_32x4d"
    weights: str | None = None  # published weights by name (downloaded by torchvision/timm)
    weights_file: str | None = None  # local state dict of the backbone
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the backbone factory
    # a bias term in the linear classifier heads (FC, LWS, BBN's, cRT's); the original's heads have none
    # (models/ClassifierFC.py, docs/fidelity.md)
    head_bias: bool = False


@dataclass
class OptimConfig:
    lr: float = 0.1
    # 0.9 is the sensible default; the published GLT numbers were produced with momentum 0 (the original's
    # create_optimizer never passes its configs' 0.9; docs/fidelity.md, section C)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"  # cosine | step | multistep | constant
    # when the rate changes: "epoch" (the original's once-per-epoch scheduler step) | "step" (every step)
    schedule_granularity: str = "epoch"
    milestones: list[int] = field(default_factory=list)  # epochs, for multistep
    step_size: int = 30  # epochs, for step
    gamma: float = 0.1
    warmup_epochs: int = 0


@dataclass
class TrainConfig:
    method: str = "ce"
    method_args: Any = None  # the method's own Settings (filled in from the registry)
    seed: int = 0
    epochs: int = 100
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = False
    threads: int | None = None  # CPU threads of torch (None: torch's default)
    progress: bool = True
    # mixed precision: auto (bf16 on CUDA when supported, off on CPU) | none | bf16 | fp16
    amp: str = "auto"
    channels_last: bool | None = None  # None: on CUDA, off on CPU
    compile: bool = False  # torch.compile the backbone (nn.Module.compile: same state_dict keys)
    sync_batchnorm: bool = False  # SyncBatchNorm across ranks (CUDA only)
    checkpoint_every: int = 0  # also checkpoint every N training steps (0: at the end of each epoch only)
    # the evaluated epoch is the best validation accuracy among the epochs e with e % select_every == 0 and
    # the stage's last one: 1 = every epoch (glt's default); the original saved (and so could select) only
    # every 10th epoch and the last (utils/checkpoint_utils.py, checkpoint_step 10; --preset paper)
    select_every: int = 1
    tensorboard: bool = False  # also log to TensorBoard event files in <run>/tensorboard (optional dependency)
    # also score the test splits after every epoch into metrics.jsonl ("test" entry), so model selection can pick
    # any epoch by any rule afterwards (`glt report --select`); `glt sweep --search` sets it (docs/search.md)
    log_test_metrics: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # wrapper settings (e.g. IFL) live under the wrapper's name; filled in by the method resolver
    wrapper_args: Any = None


# Defaults that suit each benchmark style (manifest.image_style); the user's YAML / overrides still win.
STYLE_PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "epochs": 12,
        # 16 px keep everything the 8x8 digits carry; one thread beats two on 2 cores for a model this small
        "threads": 1,
        "data": {"batch_size": 64, "num_workers": 0, "image_size": 16},
        "model": {"backbone": "small_cnn"},
        "optim": {"lr": 0.05, "weight_decay": 5e-4},
    },
    "imagenet": {},
}
# Options a benchmark style gives one backbone only (style -> backbone -> options), set after every merge
# when the run ends up on that backbone and nothing else set the option: another backbone (timm:...,
# open_clip:...) on ColorDigits-GLT must not receive the small CNN's `width`.
STYLE_BACKBONE_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "small": {"small_cnn": {"width": 16}},
}

# Named presets (`--preset NAME`): name -> function (benchmark manifest, method name, benchmark folder) ->
# settings. "paper": the original study's settings (docs/reproduce.md, momentum 0 included) for the benchmark's kind
# (ImageNet-GLT or MSCOCO-GLT) and the method; the tables live in glt.presets.
def _paper_preset(manifest, method: str, source: str) -> dict[str, Any]:
    from glt.presets import paper_settings

    return paper_settings(manifest, method, source)


PRESETS: dict[str, Any] = {"paper": _paper_preset}


def _flatten(d: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _flatten(v, f"{prefix}{k}.")
            out.append(f"{prefix}{k}")
    return out


def _leaves(d: Any, prefix: str = "") -> list[str]:
    """Dotted keys of the non-mapping values of a nested dict (an empty mapping counts as a value)."""
    if isinstance(d, dict) and d:
        return [k for key, v in d.items() for k in _leaves(v, f"{prefix}{key}.")]
    return [prefix[:-1]] if prefix else []


def _record(sources: dict[str, str] | None, layer, label: str) -> None:
    """Mark every key a merge layer sets as coming from `label` (a later layer overwrites an earlier one)."""
    if sources is None:
        return
    container = layer if isinstance(layer, dict) else OmegaConf.to_container(layer, resolve=False)
    for key in _leaves(container):
        sources[key] = label


def _merge(base, other, source: str):
    try:
        return OmegaConf.merge(base, other)
    except (ConfigKeyError, ConfigAttributeError) as e:
        key = getattr(e, "full_key", None) or str(e)
        known = _flatten(OmegaConf.to_container(base, resolve=False))
        raise GLTError(f"{source}: {unknown_name('config key', str(key), known)}") from None
    except (ValidationError, OmegaConfBaseException) as e:
        raise GLTError(f"{source}: {str(e).splitlines()[0]} (key {getattr(e, 'full_key', '?')})") from None


def parse_overrides(overrides: list[str]) -> Any:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise GLTError(f"override '{item}' is not of the form key=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise GLTError(f"bad override: {str(e).splitlines()[0]}") from None


def load_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"config file not found: {path}")
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml.YAMLError and friends
        raise GLTError(f"malformed config file {path}: {str(e).splitlines()[0]}") from None
    if not OmegaConf.is_dict(cfg):
        raise GLTError(f"malformed config file {path}: expected a mapping")
    return cfg


def build_config(
    *,
    method: str | None = None,
    benchmark: str | None = None,
    yaml_file: str | None = None,
    overrides: list[str] = (),
    preset: str | None = None,
    image_style: str | None = None,
    extra: dict[str, Any] | None = None,
    sources: dict[str, str] | None = None,
):
    """Resolve a run config. The method (from `method`, the YAML or the overrides) decides which
    `method_args` (and wrapper settings) are valid. A `sources` dict is filled with where each value came
    from (dotted key -> "default", "benchmark style small", "method ldam", "wrapper ifl", "preset paper",
    "file X.yaml", "command line", "override"); it only records, the result is the same without it."""
    from glt.methods import resolve_method

    user = OmegaConf.create({})
    if yaml_file:
        user = OmegaConf.merge(user, load_yaml(yaml_file))
    cli = parse_overrides(list(overrides))
    given = OmegaConf.create({})
    if method is not None:
        given.method = method
    if benchmark is not None:
        given.data = {"benchmark": str(benchmark)}
    if extra:
        given = OmegaConf.merge(given, OmegaConf.create(extra))
    pre = OmegaConf.merge(OmegaConf.create({"method": "ce"}), user, given, cli)
    name = pre.get("method", "ce")
    spec = resolve_method(str(name))
    bench_dir = OmegaConf.select(pre, "data.benchmark")
    manifest = None
    if bench_dir is not None and (image_style is None or os.path.isdir(str(bench_dir))):
        from glt.benchmark import Benchmark

        manifest = Benchmark(str(bench_dir)).manifest  # the manifest only (a few ms): no split table is read
        image_style = image_style or manifest.image_style

    schema = OmegaConf.structured(
        TrainConfig(method_args=spec.settings_cls(), wrapper_args=spec.wrapper_settings())
    )
    cfg = schema
    _record(sources, schema, "default")
    if image_style is not None:
        if image_style not in STYLE_PRESETS:
            raise GLTError(f"unknown image style '{image_style}' in the benchmark manifest")
        cfg = _merge(cfg, OmegaConf.create(STYLE_PRESETS[image_style]), "style preset")
        _record(sources, STYLE_PRESETS[image_style], f"benchmark style {image_style}")
    # the merge order: typed defaults < benchmark style < benchmark kind < the method's own defaults (its base
    # method's, then its wrapper's) < --preset < YAML < command line < key=value. The preset comes after the
    # method defaults: it is the whole recipe of the original for that exact method name (e.g. ifl+ldam keeps
    # weight decay 5e-4 although ldam alone uses 2e-4); the user's own settings still win over it.
    if manifest is not None:
        from glt.presets import kind_defaults

        kind = kind_defaults(manifest)
        if kind:
            cfg = _merge(cfg, OmegaConf.create(kind), "benchmark kind defaults")
            _record(sources, kind, "benchmark kind")
    layers = ((spec.base, f"method {spec.base.name}"), (spec.wrapper, f"wrapper {getattr(spec.wrapper, 'name', '')}"))
    for cls, label in layers:  # deep merges, so a wrapper's optim keys keep the base's others
        if cls is not None and cls.train_defaults:
            cfg = _merge(cfg, OmegaConf.create(dict(cls.train_defaults)), f"method {name} defaults")
            _record(sources, dict(cls.train_defaults), label)
    if preset is not None:
        if preset not in PRESETS:
            raise unknown_name("preset", preset, PRESETS)
        if bench_dir is None:
            raise GLTError(f"--preset {preset} needs the benchmark (--benchmark DIR): its settings depend on it")
        from glt.benchmark import Benchmark

        bench = Benchmark(str(bench_dir))  # the manifest only (a few ms): the split tables are not read
        settings = PRESETS[preset](bench.manifest, str(name), str(bench.root))
        cfg = _merge(cfg, OmegaConf.create(settings), f"preset {preset}")
        _record(sources, settings, f"preset {preset}")
    cfg = _merge(cfg, user, yaml_file or "config")
    _record(sources, user, f"file {yaml_file}")
    cfg = _merge(cfg, given, "command line")
    _record(sources, given, "command line")
    cfg = _merge(cfg, cli, "override")
    _record(sources, cli, "override")
    if cfg.data.features is not None:
        _check_features(cfg, spec)
    for key, value in STYLE_BACKBONE_OPTIONS.get(image_style, {}).get(str(cfg.model.backbone), {}).items():
        if key not in cfg.model.options:
            cfg.model.options[key] = value
            if sources is not None:
                sources[f"model.options.{key}"] = f"benchmark style {image_style}"
    if OmegaConf.is_missing(cfg.data, "benchmark"):
        raise GLTError("no benchmark given (--benchmark DIR or data.benchmark=DIR)")
    if cfg.data.track not in ("glt", "cbl"):
        raise GLTError(f"data.track must be 'glt' or 'cbl', not '{cfg.data.track}'")
    if cfg.data.prior_order not in ("label", "original_text_sort"):
        raise GLTError(f"data.prior_order must be 'label' or 'original_text_sort', not '{cfg.data.prior_order}'")
    for key in ("mean", "std"):
        if cfg.data[key] is not None and len(cfg.data[key]) != 3:
            raise GLTError(f"data.{key} needs 3 values (one per RGB channel), not {list(cfg.data[key])}")
    return validate_config(cfg, check_paths=True)


def _check_features(cfg, spec) -> None:
    """data.features: the store's rows replace the images, the "features" backbone (the identity) the image
    model; a method that needs images, image weights or augmentation are errors."""
    from glt.methods.feature_support import check_feature_method

    check_feature_method(spec)
    for key in ("weights", "weights_file"):
        if cfg.model[key]:
            raise GLTError(f"model.{key} does not apply with data.features: the store holds the backbone's "
                           f"features already (its store.json names the weights)")
    if cfg.data.augment not in ("default", "none"):
        raise GLTError(f"data.augment={cfg.data.augment} does not apply with data.features: stored features are "
                       "not augmented")
    cfg.model.backbone = "features"


def to_yaml(cfg) -> str:
    return OmegaConf.to_yaml(cfg)


# ---- range checks of a resolved config ---------------------------------------------------------------------

# key -> (type, lowest, highest, lowest allowed, highest allowed, None allowed)
_RANGES: dict[str, tuple] = {
    "seed": (int, 0, None, True, None, False),
    "epochs": (int, 1, None, True, None, False),
    "threads": (int, 1, None, True, None, True),
    "checkpoint_every": (int, 0, None, True, None, False),
    "select_every": (int, 1, None, True, None, False),
    "data.batch_size": (int, 1, None, True, None, False),
    "data.eval_batch_size": (int, 1, None, True, None, False),
    "data.num_workers": (int, 0, None, True, None, False),
    "data.image_size": (int, 1, None, True, None, True),
    "data.crop_scale_min": (float, 0.0, 1.0, False, True, False),
    "optim.lr": (float, 0.0, None, False, None, False),
    "optim.momentum": (float, 0.0, 1.0, True, False, False),
    "optim.weight_decay": (float, 0.0, None, True, None, False),
    "optim.step_size": (int, 1, None, True, None, False),
    "optim.gamma": (float, 0.0, None, False, None, False),
    "optim.warmup_epochs": (int, 0, None, True, None, False),
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rule(lo, hi, lo_in, hi_in) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>=' if lo_in else '>'} {lo}")
    if hi is not None:
        parts.append(f"{'<=' if hi_in else '<'} {hi}")
    return " and ".join(parts)


def _method_defaults(cfg) -> dict[str, Any]:
    """Defaults of the method's (and wrapper's) settings, by config key."""
    from glt.methods import resolve_method

    try:
        spec = resolve_method(str(cfg.get("method", "ce")))
    except GLTError:
        return {}
    out = {}
    for prefix, obj in (("method_args", spec.settings_cls()), ("wrapper_args", spec.wrapper_settings())):
        if obj is not None and hasattr(obj, "__dataclass_fields__"):
            out.update({f"{prefix}.{k}": getattr(obj, k) for k in obj.__dataclass_fields__})
    return out


def validate_config(cfg, source: str | None = None, check_paths: bool = False):
    """One pass over a resolved config: every numeric setting in its range (NaN and inf nowhere), each
    error naming its key. The method's and wrapper's own settings: numbers finite, counts (integers whose
    default is positive or None) at least 1, integer lists (epochs) not negative. With `check_paths`
    (a config about to be trained), data.benchmark, model.weights_file and method_args.init_from become
    absolute paths (the run folder's config.yaml then works from any directory), and the files they name
    must exist. Returns `cfg` (changed in place)."""
    where = f"{source}: " if source else ""

    def fail(key: str, value: Any, rule: str):
        raise GLTError(f"{where}{key} must be {rule}, not {value!r}")

    def check_finite(key: str, value: Any) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            fail(key, value, "a finite number")

    for key, (kind, lo, hi, lo_in, hi_in, none_ok) in _RANGES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT or (value is None and none_ok):
            continue
        rule = ("an integer" if kind is int else "a number") + " " + _rule(lo, hi, lo_in, hi_in)
        if not _is_number(value) or (kind is int and not isinstance(value, int)):
            fail(key, value, rule)
        check_finite(key, float(value))
        if lo is not None and (value < lo or (value == lo and not lo_in)):
            fail(key, value, rule)
        if hi is not None and (value > hi or (value == hi and not hi_in)):
            fail(key, value, rule)
    device = OmegaConf.select(cfg, "device", default=None)
    if device is not None and not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", str(device)):
        fail("device", device, "auto, cpu, cuda or cuda:N")
    milestones = OmegaConf.select(cfg, "optim.milestones", default=None)
    if milestones is not None:
        for m in milestones:
            if not isinstance(m, int) or isinstance(m, bool) or m < 0:
                fail("optim.milestones", list(milestones), "a list of epochs (integers >= 0)")

    # everything else: no NaN / inf anywhere; the method's counts and epoch lists
    defaults = _method_defaults(cfg)
    container = OmegaConf.to_container(cfg, resolve=True)

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
            return
        if isinstance(value, (list, tuple)):
            for v in value:
                check_finite(key, v) if not isinstance(v, (dict, list)) else walk(v, key)
                if key in defaults and isinstance(v, int) and not isinstance(v, bool) and v < 0:
                    fail(key, list(value), "a list of integers >= 0")
            return
        check_finite(key, value)
        if key in defaults and isinstance(value, int) and not isinstance(value, bool):
            default = defaults[key]
            if (default is None or (_is_number(default) and default >= 1)) and value < 1:
                fail(key, value, "an integer >= 1")
            if _is_number(default) and default == 0 and value < 0:
                fail(key, value, "an integer >= 0")

    walk(container, "")

    if check_paths:
        bench = OmegaConf.select(cfg, "data.benchmark", default=None)
        if isinstance(bench, str) and bench and not OmegaConf.is_missing(cfg.data, "benchmark"):
            cfg.data.benchmark = os.path.abspath(bench)
        wf = OmegaConf.select(cfg, "model.weights_file", default=None)
        if wf:
            path = Path(str(wf))
            if not path.is_file():
                raise GLTError(f"{where}model.weights_file: weights file not found: {path}")
            if path.stat().st_size == 0:
                raise GLTError(f"{where}model.weights_file: {path} is empty (0 bytes)")
            cfg.model.weights_file = os.path.abspath(path)
        feats = OmegaConf.select(cfg, "data.features", default=None)
        if feats:
            if not (Path(str(feats)) / "store.json").is_file():
                raise GLTError(f"{where}data.features: {feats} is not a feature store (no store.json; `glt features` "
                               "writes one)")
            cfg.data.features = os.path.abspath(str(feats))
        init = OmegaConf.select(cfg, "method_args.init_from", default=None)
        if init:
            if not Path(str(init)).is_dir():
                raise GLTError(f"{where}method_args.init_from: {init} is not a folder (expected the folder of a "
                               "finished first-stage run)")
            cfg.method_args.init_from = os.path.abspath(str(init))
    return cfg


_ABSENT = object()
