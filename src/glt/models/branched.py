"""A backbone with shared early layers and several copies of its last layers: BBN's two branches,
RIDE's and TADE's experts. Works on any backbone that can be cut into stages: `small_cnn` and the
torchvision ResNet / ResNeXt family (the models of the original study).

What the original code builds (KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch, docs/fidelity.md):

* RIDE / TADE, models/ResNet_RIDE.py with `reduce_dimension: True`: stem, layer1 and layer2 are shared;
  every expert owns its own layer3 and layer4, built with 3/4 of the planes (192 and 384 instead of 256
  and 512, so a ResNeXt-50 expert ends in 1536 features, not 2048). Here: `branch_stages=2, width=0.75`.
  On `small_cnn` the same rule narrows the two expert-owned stages from 4w and 8w to 3w and 6w channels.
* BBN, models/ResNet_BBN.py: the whole network up to the second-to-last residual block of layer4 is shared;
  each branch owns one residual block (`cb_block` / `rb_block`, the last Bottleneck of layer4). Here:
  `branch_blocks=1` (on `small_cnn`, whose stages are single blocks, its last stage).
* In both, every branch is a separately constructed module: its weights are independent random draws.
  Here: `init="independent"` (the default `"auto"` picks it unless the backbone starts from published or
  loaded weights, which every branch then keeps: `"copy"`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from glt.errors import GLTError

RESNET_STEM = ("conv1", "bn1", "relu", "maxpool")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
INITS = ("auto", "independent", "copy")


def is_resnet(backbone: nn.Module) -> bool:
    return all(hasattr(backbone, n) for n in RESNET_STEM + RESNET_STAGES + ("avgpool",))


def split_stages(backbone: nn.Module) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    """(stem, stages, pool) of a backbone whose forward is `pool(stages(stem(x)))`; pool ends flattened."""
    if is_resnet(backbone):
        stem = nn.Sequential(*(getattr(backbone, n) for n in RESNET_STEM))
        return stem, [getattr(backbone, n) for n in RESNET_STAGES], nn.Sequential(backbone.avgpool, nn.Flatten(1))
    features, pool = getattr(backbone, "features", None), getattr(backbone, "pool", None)
    if isinstance(features, nn.Sequential) and isinstance(pool, nn.Module) and not hasattr(backbone, "classifier"):
        return nn.Identity(), list(features), nn.Sequential(pool, nn.Flatten(1))
    raise GLTError(
        f"cannot split backbone {type(backbone).__name__} into shared layers and branches; "
        "use small_cnn or a torchvision ResNet / ResNeXt"
    )


def stage_blocks(backbone: nn.Module, stage: nn.Module) -> list[nn.Module]:
    """The residual blocks of a stage (a ResNet layer); a `small_cnn` stage is one block."""
    return list(stage) if is_resnet(backbone) else [stage]


def resolve_init(init: str, backbone: nn.Module) -> str:
    """`auto`: `independent` (fresh draws, as the original's separately built branches) unless the backbone
    starts from published or loaded weights (`backbone.pretrained`), which `copy` keeps in every branch."""
    if init not in INITS:
        raise GLTError(f"branch init must be one of {', '.join(INITS)}, not '{init}'")
    if init == "auto":
        return "copy" if getattr(backbone, "pretrained", False) else "independent"
    return init


@torch.no_grad()
def reinitialize(module: nn.Module, backbone: nn.Module) -> nn.Module:
    """Draw `module`'s parameters afresh the way `backbone`'s constructor initialised them: torchvision's
    ResNet init (convolutions kaiming-normal, fan-out, as the original's `normal_(0, sqrt(2 / n))`; norms 1 / 0)
    for the ResNet family, every layer's own `reset_parameters` otherwise (PyTorch's default, small_cnn's)."""
    resnet = is_resnet(backbone)
    for m in module.modules():
        if resnet and isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif resnet and isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    return module


def narrowed(width: float, channels: int) -> int:
    """`channels` scaled by `width`, rounded down (the original: 256 -> 192, 512 -> 384 planes at 3/4)."""
    return max(1, int(math.floor(channels * width + 1e-9)))


def _narrow_resnet(backbone: nn.Module, stages: list[nn.Module], width: float) -> tuple[nn.Sequential, int]:
    """New ResNet stages like `stages` with `width` x the planes, built by torchvision's own `_make_layer`."""
    if getattr(backbone, "dilation", 1) != 1 or not hasattr(backbone, "_make_layer"):
        raise GLTError("reduced-width branches need a torchvision ResNet / ResNeXt without dilation")
    first = stages[0][0]
    backbone.inplanes = first.conv1.in_channels
    layers = []
    for stage in stages:
        block = stage[0]
        cls = type(block)
        if hasattr(block, "conv3"):  # Bottleneck: planes * 4 channels out, stride on conv2
            planes, stride = block.conv3.out_channels // cls.expansion, block.conv2.stride[0]
        else:  # BasicBlock
            planes, stride = block.conv2.out_channels // cls.expansion, block.conv1.stride[0]
        layers.append(backbone._make_layer(cls, narrowed(width, planes), len(stage), stride=stride))
    out = backbone.inplanes
    return nn.Sequential(*layers), out


def _narrow_small(backbone: nn.Module, stages: list[nn.Module], width: float) -> tuple[nn.Sequential, int]:
    if not hasattr(backbone, "make_block"):
        raise GLTError(f"backbone {type(backbone).__name__} cannot build reduced-width branches")
    cin = stages[0][0].in_channels
    layers = []
    for stage in stages:
        conv = stage[0]
        cout = narrowed(width, conv.out_channels)
        layers.append(backbone.make_block(cin, cout, conv.stride[0]))
        cin = cout
    return nn.Sequential(*layers), cin


class BranchedBackbone(nn.Module):
    """The backbone's last layers repeated `branches` times behind its shared early layers.

    What each branch owns: the last `branch_stages` stages, or (`branch_blocks`) only the last residual
    blocks of the backbone. `width` < 1 builds the branch-owned stages narrower (RIDE's `reduce_dimension`;
    stage-level branches only; their weights are always fresh draws). `init`: `independent` draws every
    branch's weights afresh (the original), `copy` starts every branch from the backbone's own weights, `auto`
    is `copy` for a pretrained backbone and `independent` otherwise.

    `forward(x)` returns the branches' pooled features side by side, (B, branches * D); `forward_branch(x, i)`
    runs one branch only, (B, D)."""

    def __init__(self, backbone: nn.Module, branches: int, branch_stages: int = 1, *, width: float = 1.0,
                 branch_blocks: int | None = None, init: str = "copy"):
        super().__init__()
        stem, stages, pool = split_stages(backbone)
        if branches < 1:
            raise GLTError(f"a branched backbone needs at least one branch, not {branches}")
        if not 0 < width <= 1:
            raise GLTError(f"branch width must be in (0, 1], not {width}")
        init = resolve_init(init, backbone)
        if branch_blocks is not None:
            if width != 1:
                raise GLTError("reduced-width branches own whole stages: give branch_stages, not branch_blocks")
            blocks = [b for st in stages for b in stage_blocks(backbone, st)]
            if not 1 <= branch_blocks < len(blocks):
                raise GLTError(
                    f"backbone {type(backbone).__name__} has {len(blocks)} blocks: "
                    f"branch blocks must be between 1 and {len(blocks) - 1}, not {branch_blocks}"
                )
            self.trunk = nn.Sequential(stem, *blocks[:-branch_blocks])
            tail = nn.Sequential(*blocks[-branch_blocks:])
        else:
            if not 1 <= branch_stages < len(stages):
                raise GLTError(
                    f"backbone {type(backbone).__name__} has {len(stages)} stages: "
                    f"branch stages must be between 1 and {len(stages) - 1}, not {branch_stages}"
                )
            self.trunk = nn.Sequential(stem, *stages[:-branch_stages])
            tail = nn.Sequential(*stages[-branch_stages:])
        if width != 1:
            if getattr(backbone, "pretrained", False):
                raise GLTError(
                    f"reduced-width branches (width {width}, the original RIDE / TADE experts) are built afresh and "
                    "cannot start from the backbone's pretrained weights; set method_args.expert_width=1.0 "
                    "to keep them"
                )
            narrow = _narrow_resnet if is_resnet(backbone) else _narrow_small
            owned = list(tail)
            built = []
            for _ in range(branches):
                module, out = narrow(backbone, owned, width)
                built.append(reinitialize(module, backbone) if is_resnet(backbone) else module)
            self.branches = nn.ModuleList(built)
            self.branch_features = out
        else:
            copies = [copy.deepcopy(tail) for _ in range(branches - 1)]
            if init == "independent":
                copies = [reinitialize(c, backbone) for c in copies]
            self.branches = nn.ModuleList([tail, *copies])
            self.branch_features = backbone.out_features
        self.pool = pool
        self.out_features = branches * self.branch_features

    def forward_branch(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.pool(self.branches[i](self.trunk(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return torch.cat([self.pool(branch(h)) for branch in self.branches], dim=1)
