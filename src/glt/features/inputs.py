"""The images a feature store is computed from: a split as evaluation sees it.

The transform is the benchmark's test-time transform as the trainer builds it (glt.engine's Setup:
glt.data.build_transforms' test transform, or for in-memory small benchmarks build_batch_transforms'
preprocess + test batch transform), with the backbone's own image size and normalisation where its
weights define them. `describe` records what ran, read off the transform objects themselves."""

from __future__ import annotations

from torchvision.transforms import v2

from glt.benchmark import Benchmark
from glt.data import SplitDataset, build_batch_transforms, build_transforms


def _transforms(m, image_size: int, mean, std):
    """(preprocess, test batch transform) for small benchmarks decoded into memory, else (None, test transform)."""
    if m.image_style == "small":
        batch = build_batch_transforms(m.image_style, image_size, "default", mean, std)
        return batch[0], batch[2]
    return None, build_transforms(m.image_style, image_size, "default", mean=mean, std=std)[1]


def eval_steps(m, image_size: int, mean=None, std=None) -> list:
    """The transform's steps, in order, for manifest `m` (what `describe` records)."""
    preprocess, tf = _transforms(m, image_size, mean, std)
    return [*preprocess.transforms, *tf.finish.transforms] if preprocess is not None else list(tf.transforms)


def eval_dataset(bench: Benchmark, split: str, image_size: int, mean=None, std=None,
                 image_cache=None) -> SplitDataset:
    """A dataset of (image, label, row) items. Small benchmarks are decoded into memory once and transformed
    batch by batch, as training does; `image_cache`: glt.data.image_cache.select_cache's."""
    preprocess, tf = _transforms(bench.manifest, image_size, mean, std)
    if preprocess is not None:
        return SplitDataset(bench, split, cache=True, preprocess=preprocess, batch_transform=tf, image_cache=image_cache)
    ds = SplitDataset(bench, split, tf, image_cache=image_cache)
    ds.check_images()
    return ds


def _size(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def describe(steps: list, image_size: int, style: str) -> dict:
    """The record's `transform`: image size, resize, crop, mean / std, interpolation, and every step."""
    out = {"image_size": image_size, "style": style, "resize": None, "crop": None, "mean": None, "std": None,
           "interpolation": None, "steps": [repr(t) for t in steps]}
    for t in steps:
        if isinstance(t, v2.Resize):
            out["resize"], out["interpolation"] = _size(t.size), str(getattr(t.interpolation, "value", t.interpolation))
        elif isinstance(t, v2.CenterCrop):
            out["crop"] = _size(t.size)
        elif isinstance(t, v2.Normalize):
            out["mean"], out["std"] = list(t.mean), list(t.std)
    return out
