"""Run configuration: typed defaults (dataclasses) < benchmark-style preset < method defaults
< YAML file < `key=value` overrides, merged with OmegaConf. Unknown keys are errors with suggestions."""

from __future__ import annotations

import os
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
    num_workers: int = 2
    image_size: int | None = None  # None: the benchmark's manifest
    # train-time augmentation: "default" (the benchmark style's), "randaugment" (+ RandAugment), "none"
    augment: str = "default"
    crop_scale_min: float = 0.08  # RandomResizedCrop lower scale (MSCOCO-GLT used 0.5)
    cache_images: bool | None = None  # decode all images once into memory; None: for small benchmarks
    # resized copies written by `glt cache`: None ($GLT_IMAGE_CACHE, else auto: the smallest complete
    # cache large enough for image_size), "off" (the originals), a short side (128) or a cache folder name
    image_cache: str | None = None


@dataclass
class ModelConfig:
    backbone: str = "resnext50_32x4d"
    weights: str | None = None  # published weights by name (downloaded by torchvision/timm)
    weights_file: str | None = None  # local state dict of the backbone
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the backbone factory


@dataclass
class OptimConfig:
    lr: float = 0.1
    # 0.9 is the sensible default; the published GLT numbers were produced with momentum 0 (SPEC 4)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"  # cosine | step | multistep | constant
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
    tensorboard: bool = False  # also log to TensorBoard event files in <run>/tensorboard (optional dependency)
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
        "model": {"backbone": "small_cnn", "options": {"width": 16}},
        "optim": {"lr": 0.05, "weight_decay": 5e-4},
    },
    "imagenet": {},
}

# Named presets (`--preset NAME`): name -> function (benchmark manifest, method name, benchmark folder) ->
# settings. "paper": the original study's settings (SPEC 4-6, momentum 0 included) for the benchmark's kind
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
):
    """Resolve a run config. The method (from `method`, the YAML or the overrides) decides which
    `method_args` (and wrapper settings) are valid."""
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
    if image_style is None and bench_dir is not None:
        from glt.benchmark import Benchmark

        image_style = Benchmark(str(bench_dir)).manifest.image_style

    schema = OmegaConf.structured(
        TrainConfig(method_args=spec.settings_cls(), wrapper_args=spec.wrapper_settings())
    )
    cfg = schema
    if image_style is not None:
        if image_style not in STYLE_PRESETS:
            raise GLTError(f"unknown image style '{image_style}' in the benchmark manifest")
        cfg = _merge(cfg, OmegaConf.create(STYLE_PRESETS[image_style]), "style preset")
    if preset is not None:
        if preset not in PRESETS:
            raise unknown_name("preset", preset, PRESETS)
        if bench_dir is None:
            raise GLTError(f"--preset {preset} needs the benchmark (--benchmark DIR): its settings depend on it")
        from glt.benchmark import Benchmark

        bench = Benchmark(str(bench_dir))  # the manifest only (a few ms): the split tables are not read
        settings = PRESETS[preset](bench.manifest, str(name), str(bench.root))
        cfg = _merge(cfg, OmegaConf.create(settings), f"preset {preset}")
    if spec.train_defaults:
        cfg = _merge(cfg, OmegaConf.create(spec.train_defaults), f"method {name} defaults")
    cfg = _merge(cfg, user, yaml_file or "config")
    cfg = _merge(cfg, given, "command line")
    cfg = _merge(cfg, cli, "override")
    if OmegaConf.is_missing(cfg.data, "benchmark"):
        raise GLTError("no benchmark given (--benchmark DIR or data.benchmark=DIR)")
    if cfg.data.track not in ("glt", "cbl"):
        raise GLTError(f"data.track must be 'glt' or 'cbl', not '{cfg.data.track}'")
    return cfg


def to_yaml(cfg) -> str:
    return OmegaConf.to_yaml(cfg)
