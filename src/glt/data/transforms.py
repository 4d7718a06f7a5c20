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


def build_transforms(style: str, image_size: int, augment: str = "default", crop_scale_min: float = 0.08):
    """Return (train_transform, test_transform)."""
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
