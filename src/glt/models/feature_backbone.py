"""The backbone of a run on a frozen-feature store (`data.features`, glt.features.dataset): its inputs are
already the stored features, so it is the identity, `feature_dim` wide. `adapter` (model.options.adapter) adds
a small trainable MLP on top, so IFL's center loss and other feature-level methods have a representation to
shape; head-only stages (cRT, LWS) freeze it as they freeze any backbone."""

from __future__ import annotations

import torch
from torch import nn

from glt.errors import GLTError, unknown_name


def _mlp(dim: int, width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, width), nn.ReLU(inplace=True), nn.Linear(width, width))


def _norm(dim: int, width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, width), nn.LayerNorm(width))


# model.options.adapter_kind -> builder (input dim, hidden width) -> module ending in `width` features
ADAPTERS = {"mlp": _mlp, "norm": _norm}


class FeatureBackbone(nn.Module):
    """Identity on (B, feature_dim) stored features, or an adapter (Linear-ReLU-Linear, `adapter_kind` mlp,
    or Linear-LayerNorm, `norm`) of `adapter` hidden units; `out_features` is what the head sees."""

    def __init__(self, feature_dim: int, adapter: int | None = None, adapter_kind: str = "mlp"):
        super().__init__()
        if adapter_kind not in ADAPTERS:
            raise unknown_name("model.options.adapter_kind", adapter_kind, ADAPTERS)
        if adapter is not None and (isinstance(adapter, bool) or not isinstance(adapter, int) or adapter < 1):
            raise GLTError(f"model.options.adapter must be a hidden width (an integer >= 1) or null, not {adapter!r}")
        self.feature_dim = int(feature_dim)
        self.adapter = ADAPTERS[adapter_kind](self.feature_dim, adapter) if adapter else None
        self.out_features = int(adapter) if adapter else self.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.feature_dim:
            raise GLTError(f"backbone 'features' takes (batch, {self.feature_dim}) stored features, "
                           f"not a tensor of shape {tuple(x.shape)}")
        return x if self.adapter is None else self.adapter(x)


def features_backbone(weights: str | None = None, feature_dim: int | None = None, **kwargs) -> nn.Module:
    """BACKBONES["features"]: `feature_dim` is the store's (glt.engine's Setup passes it)."""
    if weights:
        raise GLTError("backbone 'features' runs on stored features: it has no weights (model.weights must be null)")
    if feature_dim is None:
        raise GLTError("backbone 'features' needs a feature store: set data.features to the folder `glt features` "
                       "wrote")
    return FeatureBackbone(feature_dim, **kwargs)
