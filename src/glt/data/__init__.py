"""Datasets over benchmark splits, transforms and epoch samplers."""

from glt.data.dataset import SplitDataset, make_loader
from glt.data.samplers import SAMPLERS, EpochSampler, create_sampler
from glt.data.transforms import build_batch_transforms, build_transforms

__all__ = [
    "SAMPLERS", "EpochSampler", "SplitDataset", "build_batch_transforms", "build_transforms", "create_sampler",
    "make_loader",
]
