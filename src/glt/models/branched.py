"""A backbone with shared early layers and several copies of its last stages: BBN's two branches,
RIDE's and TADE's experts. Works on any backbone that can be cut into stages: `small_cnn` and the
torchvision ResNet / ResNeXt family (the models of the original study)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from glt.errors import GLTError

RESNET_STEM = ("conv1", "bn1", "relu", "maxpool")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


def split_stages(backbone: nn.Module) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    """(stem, stages, pool) of a backbone whose forward is `pool(stages(stem(x)))`; pool ends flattened."""
    if all(hasattr(backbone, n) for n in RESNET_STEM + RESNET_STAGES + ("avgpool",)):
        stem = nn.Sequential(*(getattr(backbone, n) for n in RESNET_STEM))
        return stem, [getattr(backbone, n) for n in RESNET_STAGES], nn.Sequential(backbone.avgpool, nn.Flatten(1))
    features, pool = getattr(backbone, "features", None), getattr(backbone, "pool", None)
    if isinstance(features, nn.Sequential) and isinstance(pool, nn.Module) and not hasattr(backbone, "classifier"):
        return nn.Identity(), list(features), nn.Sequential(pool, nn.Flatten(1))
    raise GLTError(
        f"cannot split backbone {type(backbone).__name__} into shared layers and branches; "
        "use small_cnn or a torchvision ResNet / ResNeXt"
    )


class BranchedBackbone(nn.Module):
    """The backbone's last `branch_stages` stages copied `branches` times behind its shared early layers.
    `forward(x)` returns the branches' pooled features side by side, (B, branches * D);
    `forward_branch(x, i)` runs one branch only, (B, D). The copies start from the same weights (so a
    pretrained backbone stays pretrained in every branch); the branches' own heads break the symmetry."""

    def __init__(self, backbone: nn.Module, branches: int, branch_stages: int = 1):
        super().__init__()
        stem, stages, pool = split_stages(backbone)
        if branches < 1:
            raise GLTError(f"a branched backbone needs at least one branch, not {branches}")
        if not 1 <= branch_stages < len(stages):
            raise GLTError(
                f"backbone {type(backbone).__name__} has {len(stages)} stages: "
                f"branch stages must be between 1 and {len(stages) - 1}, not {branch_stages}"
            )
        self.trunk = nn.Sequential(stem, *stages[:-branch_stages])
        tail = nn.Sequential(*stages[-branch_stages:])
        self.branches = nn.ModuleList([tail] + [copy.deepcopy(tail) for _ in range(branches - 1)])
        self.pool = pool
        self.branch_features = backbone.out_features
        self.out_features = branches * backbone.out_features

    def forward_branch(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.pool(self.branches[i](self.trunk(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return torch.cat([self.pool(branch(h)) for branch in self.branches], dim=1)
