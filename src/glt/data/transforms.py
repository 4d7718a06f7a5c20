"""Train / test transforms (torchvision transforms v2 on uint8 tensors) for each benchmark style.

"imagenet": SPEC 4 -- RandomResizedCrop(112) + flip for training; resize 128, centre crop 112 for testing.
"small": the embedded 32 px benchmark -- small random shifts only (no flips: digits are not mirror
symmetric; no colour jitter: colour is the attribute)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from glt.errors import GLTError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _finish() -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


class RandomShift:
    """Per-image random translation of a whole uint8 batch (pad by `pad`, crop back at a random offset per
    image) with one gather: torchvision's v2 transforms draw one set of parameters per call, so on a
    batch every image would get the same shift."""

    def __init__(self, pad: int):
        self.pad = pad

    def __call__(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, c, h, w = batch.shape
        p = self.pad
        padded = torch.nn.functional.pad(batch, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (b, h, 1)
        cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (b, 1, w)
        return padded[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


class BatchTransform:
    """uint8 (B, C, H, W) batch -> augmented, normalised float batch (the in-memory fast path of small
    benchmarks: no per-image Python work)."""

    def __init__(self, shift: int = 0):
        self.shift = RandomShift(shift) if shift > 0 else None
        self.finish = v2.Compose(_finish())

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.shift is not None:
            batch = self.shift(batch)
        return self.finish(batch)


def build_batch_transforms(style: str, image_size: int, augment: str = "default"):
    """(preprocess, train_batch, test_batch) for benchmarks whose decoded images fit in memory, or None
    when the augmentation needs per-image parameters of torchvision (RandAugment, RandomResizedCrop)."""
    if style != "small" or augment == "randaugment":
        return None
    preprocess = v2.Compose([v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])
    shift = 0 if augment == "none" else image_size // 8
    return preprocess, BatchTransform(shift), BatchTransform(0)


def build_transforms(style: str, image_size: int, augment: str = "default", crop_scale_min: float = 0.08):
    """Return (train_transform, test_transform), per image."""
    if augment not in ("default", "randaugment", "none"):
        raise GLTError(f"data.augment must be default, randaugment or none, not '{augment}'")
    if style == "small":
        train = [v2.Resize(image_size, antialias=True), v2.RandomCrop(image_size, padding=image_size // 8)]
        test = [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    elif style == "imagenet":
        resize = round(image_size * 128 / 112)
        train = [
            v2.RandomResizedCrop(image_size, scale=(crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
        test = [v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)]
    else:
        raise GLTError(f"unknown image style '{style}'")
    if augment == "none":
        train = list(test)
    elif augment == "randaugment":
        train.append(v2.RandAugment())
    return v2.Compose(train + _finish()), v2.Compose(test + _finish())
