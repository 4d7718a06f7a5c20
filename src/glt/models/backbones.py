"""Feature extractors by name: a small CNN for the embedded benchmark, any torchvision
classification model (ResNet / ResNeXt-50 32x4d as in the paper...), `timm:<name>` when timm is
installed and `open_clip:<arch>` (a CLIP vision tower, glt.models.open_clip_backbone). Every backbone
maps images to a (B, out_features) feature and has `out_features`; `create_backbone` also sets
`pretrained`, `weights_name` (the published weights resolved, or None), `input_size` (the one image
size a fixed-size model takes, else None) and `input_norm` ((mean, std) the weights expect, or None)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch
from torch import nn

from glt.errors import GLTError, first_line, unknown_name
from glt.models.feature_backbone import features_backbone
from glt.registry import Registry

BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")


class SmallCNN(nn.Module):
    """Four conv blocks and global pooling, for the embedded benchmark (16 px inputs by default: the
    digits carry 8x8 pixels of information). `stem_stride` 2 suits 32 px inputs. `norm`: batch, group
    (8 groups: independent of the batch, so of how it is split across processes) or none."""

    NORMS = {
        "batch": nn.BatchNorm2d,
        "group": lambda c: nn.GroupNorm(8, c),
        "none": lambda c: nn.Identity(),
    }

    def __init__(self, width: int = 32, in_channels: int = 3, stem_stride: int = 1, norm: str = "batch"):
        super().__init__()
        w = width
        if norm not in self.NORMS:
            raise unknown_name("small_cnn norm", norm, self.NORMS)
        self.norm = norm
        block = self.make_block
        self.features = nn.Sequential(
            block(in_channels, w, stem_stride), block(w, 2 * w, 2), block(2 * w, 4 * w, 2), block(4 * w, 8 * w, 2)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = 8 * w

    def make_block(self, cin: int, cout: int, stride: int) -> nn.Sequential:
        """One stage: conv 3x3, norm, ReLU (also used to build narrower copies of the last stages, as
        RIDE's and TADE's reduced-width experts, glt.models.branched)."""
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            self.NORMS[self.norm](cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


@BACKBONES.register("small_cnn")
def small_cnn(weights: str | None = None, **kwargs) -> nn.Module:
    if weights:
        raise GLTError("backbone 'small_cnn' has no published weights; use --weights-file for a local file")
    return SmallCNN(**kwargs)


# the identity on a frozen-feature store's rows (data.features), with an optional adapter
BACKBONES.add("features", features_backbone)


def _strip_classifier(model: nn.Module) -> tuple[nn.Module, int]:
    """Replace a torchvision model's final classifier by Identity; return (model, feature size)."""
    for attr in ("fc", "classifier", "heads", "head"):
        layer = getattr(model, attr, None)
        if layer is None:
            continue
        linears = [m for m in layer.modules() if isinstance(m, nn.Linear)] if not isinstance(layer, nn.Linear) else [layer]
        if not linears:
            continue
        dim = linears[-1].in_features
        if isinstance(layer, nn.Sequential) and isinstance(layer[-1], nn.Linear):
            layer[-1] = nn.Identity()
        else:
            setattr(model, attr, nn.Identity())
        return model, dim
    raise GLTError(f"cannot find the classifier layer of {type(model).__name__} to use it as a backbone")


def _torchvision(name: str) -> Callable[..., nn.Module]:
    def factory(weights: str | None = None, **kwargs) -> nn.Module:
        import torchvision

        enum = None
        if weights:
            members = torchvision.models.get_model_weights(name)
            try:
                enum = members[weights] if weights in members.__members__ else members.verify(weights)
            except (KeyError, ValueError):
                raise unknown_name(f"weights of backbone '{name}'", weights, members.__members__) from None
        with download_errors(name, weights):
            model = torchvision.models.get_model(name, weights=enum, **kwargs)
        model, dim = _strip_classifier(model)
        model.out_features = dim
        model.weights_name = str(enum) if enum is not None else None
        # ViTs take one size (their position embeddings); CNNs any
        model.input_size = getattr(model, "image_size", None)
        if enum is not None:
            tf = enum.transforms()
            model.input_norm = (tuple(tf.mean), tuple(tf.std))
        return model

    factory.__doc__ = f"torchvision {name}"
    return factory


def _register_torchvision() -> None:
    import torchvision

    for name in torchvision.models.list_models(module=torchvision.models):
        BACKBONES.add(name, _torchvision(name))


_register_torchvision()


# `model.weights` values that mean "the published default weights" (timm picks the default tag)
DEFAULT_WEIGHTS = ("DEFAULT", "default", "true", "True", "1", "pretrained")


def _timm_name(name: str, weights: str | None) -> str:
    """timm's `arch.tag` for model.weights: a tag of the architecture, or DEFAULT for timm's default."""
    import timm

    if not weights or weights in DEFAULT_WEIGHTS:
        return name
    arch, _, tag = name.partition(".")
    if tag and tag != weights:
        raise GLTError(f"backbone 'timm:{name}' names the weights tag '{tag}'; model.weights '{weights}' is another")
    tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
    if weights not in tags:
        raise unknown_name(f"weights tag of timm:{arch}", weights, tags + list(DEFAULT_WEIGHTS[:1]))
    return f"{arch}.{weights}"


def _timm(name: str, weights: str | None = None, **kwargs) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise GLTError("timm backbones need timm: pip install 'glt[timm]'") from None
    full = _timm_name(name, weights)
    try:
        with download_errors(f"timm:{name}", weights):
            model = timm.create_model(full, pretrained=bool(weights), num_classes=0, **kwargs)
    except RuntimeError as e:  # unknown model name
        raise GLTError(f"timm: {e}") from None
    model.out_features = model.num_features
    cfg = getattr(model, "pretrained_cfg", None) or {}
    # with pretrained=False the cfg still names the default tag: a weights name only for weights loaded
    model.weights_name = f"{cfg.get('architecture', name)}.{cfg['tag']}" if weights and cfg.get("tag") else (
        full if weights else None)
    size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    model.input_size = (size[0] if isinstance(size, (tuple, list)) else size) if cfg.get("fixed_input_size") else None
    if cfg.get("mean") and cfg.get("std"):
        model.input_norm = (tuple(cfg["mean"]), tuple(cfg["std"]))
    return model


def _open_clip(name: str, weights: str | None = None, **kwargs) -> nn.Module:
    from glt.models.open_clip_backbone import create_open_clip_backbone  # imports open_clip

    with download_errors(f"open_clip:{name}", weights):
        return create_open_clip_backbone(name, weights, **kwargs)


# `PREFIX:<name>` backbones: the name is handed to the library's own factory
PREFIXES: Registry[Callable[..., nn.Module]] = Registry("backbone prefix")
PREFIXES.add("timm", _timm)
PREFIXES.add("open_clip", _open_clip)


def _is_download_error(e: BaseException) -> bool:
    """A failed download: urllib's URLError (torchvision), huggingface_hub's LocalEntryNotFoundError
    (timm, open_clip) and requests' errors are OSErrors; httpx's are not, and open_clip wraps them in
    a RuntimeError ('Failed to download ...'). Follows the exception's chain; glt's own errors are not."""
    for _ in range(8):
        if e is None or isinstance(e, GLTError):
            return False
        if isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("httpx", "httpcore", "requests", "urllib3"):
            return True
        if isinstance(e, RuntimeError) and str(e).startswith("Failed to download"):
            return True
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return False


@contextlib.contextmanager
def download_errors(name: str, weights: str | None):
    """Turn a failed download of published weights into one GLTError line naming the backbone and weights."""
    try:
        yield
    except Exception as e:
        if not (weights and _is_download_error(e)):
            raise
        raise GLTError(
            f"cannot download the weights '{weights}' of backbone '{name}' ({first_line(e)[:160]}); without "
            f"network access download them elsewhere and pass the local file with --weights-file (config key "
            f"model.weights_file)"
        ) from None


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a local state dict safely (no unpickling of arbitrary objects)."""
    if not os.path.isfile(path):
        raise GLTError(f"weights file not found: {path}")
    if str(path).endswith(".safetensors"):
        return _load_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt / unsafe files
        raise GLTError(f"cannot load weights file {path}: {str(e).splitlines()[0]}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise GLTError(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _load_safetensors(path) -> dict[str, torch.Tensor]:
    """A .safetensors file (timm's and open_clip's hub weights): tensors only, never code."""
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:  # installed with timm and open_clip
        raise GLTError(f"reading {path} needs safetensors: pip install safetensors") from None

    try:
        return {k.removeprefix("module."): v for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as e:
        raise GLTError(f"cannot load weights file {path}: {first_line(e)}") from None


def _load_weights_file(model: nn.Module, name: str, weights_file: str) -> None:
    """A local state dict of the same architecture (classifier keys ignored), loaded strictly otherwise."""
    state = load_state_dict_file(weights_file)
    missing, unexpected = model.load_state_dict(state, strict=False)
    ignored = [k for k in unexpected if not k.split(".")[0] in ("fc", "classifier", "head", "heads")]
    if missing or ignored:
        raise GLTError(
            f"weights file {weights_file} does not match backbone '{name}': "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(ignored)} unexpected (e.g. {ignored[:2]})"
        )


def _build(name: str, weights: str | None, **kwargs) -> nn.Module:
    prefix, sep, arch = name.partition(":")
    if sep:
        if prefix not in PREFIXES:
            raise unknown_name("backbone prefix", prefix + ":", [p + ":" for p in PREFIXES.names()])
        return PREFIXES.get(prefix)(arch, weights=weights, **kwargs)
    if name not in BACKBONES:
        raise unknown_name("backbone", name, BACKBONES.names())
    return BACKBONES.get(name)(weights=weights, **kwargs)


def create_backbone(
    name: str, weights: str | None = None, weights_file: str | None = None, **kwargs
) -> nn.Module:
    """Create a backbone by name. `weights`: published weights by name (e.g. 'DEFAULT',
    'IMAGENET1K_V2'; downloaded by torchvision/timm); `weights_file`: a local state dict of the
    same architecture (classifier keys are ignored; a backbone with its own `load_weights_file`, such as
    open_clip's tower, reads the file its library's way). `open_clip:<arch>`: `weights` is open_clip's
    pretrained tag (e.g. 'laion2b_s34b_b79k')."""
    model = _build(name, weights, **kwargs)
    for attr in ("weights_name", "input_size", "input_norm"):
        if not hasattr(model, attr):
            setattr(model, attr, None)
    # methods that build extra copies of layers (glt.models.branched, LfF's twin) keep published / loaded
    # weights instead of drawing fresh ones when the backbone starts from them
    model.pretrained = bool(weights or weights_file)
    if weights_file:
        own = getattr(model, "load_weights_file", None)
        own(weights_file) if own is not None else _load_weights_file(model, name, weights_file)
    return model


# ---- what can be built (`glt backbones`) -------------------------------------------------------------------


def _catalogue_glt() -> list[tuple[str, list[str]]]:
    import torchvision

    def weights(name: str) -> list[str]:
        try:
            return list(torchvision.models.get_model_weights(name).__members__)
        except (ValueError, KeyError):  # small_cnn: not a torchvision model
            return []

    return [(name, weights(name)) for name in BACKBONES.names()]


def _catalogue_timm() -> list[tuple[str, list[str]]]:
    try:
        import timm
    except ImportError:
        return []
    tags: dict[str, list[str]] = {}
    for full in timm.list_pretrained():
        arch, _, tag = full.partition(".")
        tags.setdefault(arch, []).append(tag)
    return [(f"timm:{arch}", tags.get(arch, [])) for arch in timm.list_models()]


def _catalogue_open_clip() -> list[tuple[str, list[str]]]:
    try:
        import open_clip
    except ImportError:
        return []
    tags: dict[str, list[str]] = {}
    for arch, tag in open_clip.list_pretrained():
        tags.setdefault(arch, []).append(tag)
    return [(f"open_clip:{arch}", tags.get(arch, [])) for arch in open_clip.list_models()]


# every source of backbone names, with the published weights of each (torchvision enum names, timm and
# open_clip pretrained tags): what `model.weights` may name
CATALOGUES: Registry[Callable[[], list[tuple[str, list[str]]]]] = Registry("backbone catalogue")
CATALOGUES.add("glt", _catalogue_glt)
CATALOGUES.add("timm", _catalogue_timm)
CATALOGUES.add("open_clip", _catalogue_open_clip)


def backbone_catalogue(pattern: str | None = None, pretrained_only: bool = False) -> list[tuple[str, list[str]]]:
    """(name, published weights) of every backbone whose name matches `pattern` (fnmatch, case-insensitive;
    without a wildcard: any name containing it)."""
    import fnmatch

    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    out = []
    for source in ("glt", "timm", "open_clip"):
        for name, weights in CATALOGUES.get(source)():
            if pattern and not fnmatch.fnmatchcase(name.lower(), pattern.lower()):
                continue
            if pretrained_only and not weights:
                continue
            out.append((name, weights))
    return out
