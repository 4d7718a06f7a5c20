"""Feature extractors by name: a small CNN for the embedded benchmark, any torchvision
classification model (ResNet / ResNeXt-50 32x4d as in the paper...), and `timm:<name>` when timm
is installed. Every backbone maps images to a (B, out_features) feature and has `out_features`."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from glt.errors import GLTError, unknown_name
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

        model = torchvision.models.get_model(name, weights=weights, **kwargs)
        model, dim = _strip_classifier(model)
        model.out_features = dim
        return model

    factory.__doc__ = f"torchvision {name}"
    return factory


def _register_torchvision() -> None:
    import torchvision

    for name in torchvision.models.list_models(module=torchvision.models):
        BACKBONES.add(name, _torchvision(name))


_register_torchvision()


def _timm(name: str, weights: str | None = None, **kwargs) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise GLTError("timm backbones need timm: pip install 'glt[timm]'") from None
    try:
        model = timm.create_model(name, pretrained=bool(weights), num_classes=0, **kwargs)
    except RuntimeError as e:  # unknown model name
        raise GLTError(f"timm: {e}") from None
    model.out_features = model.num_features
    return model


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a local state dict safely (no unpickling of arbitrary objects)."""
    if not os.path.isfile(path):
        raise GLTError(f"weights file not found: {path}")
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


def create_backbone(
    name: str, weights: str | None = None, weights_file: str | None = None, **kwargs
) -> nn.Module:
    """Create a backbone by name. `weights`: published weights by name (e.g. 'DEFAULT',
    'IMAGENET1K_V2'; downloaded by torchvision/timm); `weights_file`: a local state dict of the
    same architecture (classifier keys are ignored)."""
    if name.startswith("timm:"):
        model = _timm(name[5:], weights=weights, **kwargs)
    else:
        if name not in BACKBONES:
            raise unknown_name("backbone", name, BACKBONES.names())
        model = BACKBONES.get(name)(weights=weights, **kwargs)
    # methods that build extra copies of layers (glt.models.branched, LfF's twin) keep published / loaded
    # weights instead of drawing fresh ones when the backbone starts from them
    model.pretrained = bool(weights or weights_file)
    if weights_file:
        state = load_state_dict_file(weights_file)
        missing, unexpected = model.load_state_dict(state, strict=False)
        ignored = [k for k in unexpected if not k.split(".")[0] in ("fc", "classifier", "head", "heads")]
        if missing or ignored:
            raise GLTError(
                f"weights file {weights_file} does not match backbone '{name}': "
                f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(ignored)} unexpected (e.g. {ignored[:2]})"
            )
    return model
