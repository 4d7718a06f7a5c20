"""Train / test transforms (torchvision transforms v2 on uint8 tensors) for each benchmark style.

"imagenet": as the original's data/DT_ImageNet_LT.py and data/DT_COCO_LT.py -- RandomResizedCrop(112) + flip
for training (MSCOCO-GLT: crop scale 0.5-1, `crop_scale_min`); resize 128, centre crop 112 for testing.
"small": the embedded 32 px benchmark -- small random shifts only (no flips: digits are not mirror
symmetric; no colour jitter: colour is the attribute).

`augment` (config key data.augment): "default" (the style's), "randaugment" (the original's policy, the
`randaugment` 1.0.2 package's RandAugment, ported in glt.data.randaugment: 2 of 15 operations, each with
probability 0.5 and a random magnitude 1-9, on PIL images), "randaugment_torchvision" (torchvision's
v2.RandAugment: 2 of 14 operations always applied, magnitude 9 of 31), or "none" (the test transform). Either
RandAugment goes where the original's does: after the crop and flip, before float conversion and
normalisation (data/DT_ImageNet_LT.py, data/DT_COCO_LT.py: RandomResizedCrop, RandomHorizontalFlip,
RandAugment(), ToTensor, Normalize); for the "small" style, after its shift.

Normalisation: `mean` / `std` per channel (config keys data.mean / data.std), ImageNet's when not given;
MSCOCO-GLT benchmarks get the original's own statistics (config/COCO_LT.yaml; glt.presets.MSCOCO_NORM)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from glt.data.randaugment import RandAugment
from glt.errors import GLTError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUGMENTS = ("default", "randaugment", "randaugment_torchvision", "none")
PER_IMAGE_AUGMENTS = ("randaugment", "randaugment_torchvision")  # per-image random policies: no batch path


def _finish(mean=None, std=None) -> list:
    mean = tuple(float(x) for x in mean) if mean is not None else IMAGENET_MEAN
    std = tuple(float(x) for x in std) if std is not None else IMAGENET_STD
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


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

    def __init__(self, shift: int = 0, mean=None, std=None):
        self.shift = RandomShift(shift) if shift > 0 else None
        self.finish = v2.Compose(_finish(mean, std))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.shift is not None:
            batch = self.shift(batch)
        return self.finish(batch)


def build_batch_transforms(style: str, image_size: int, augment: str = "default", mean=None, std=None):
    """(preprocess, train_batch, test_batch) for benchmarks whose decoded images fit in memory, or None
    when the augmentation needs per-image parameters (either RandAugment, RandomResizedCrop)."""
    if style != "small" or augment in PER_IMAGE_AUGMENTS:
        return None
    preprocess = v2.Compose([v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])
    shift = 0 if augment == "none" else image_size // 8
    return preprocess, BatchTransform(shift, mean, std), BatchTransform(0, mean, std)


def build_transforms(style: str, image_size: int, augment: str = "default", crop_scale_min: float = 0.08,
                     mean=None, std=None):
    """Return (train_transform, test_transform), per image; `mean` / `std`: None for ImageNet's."""
    if augment not in AUGMENTS:
        raise GLTError(f"data.augment must be one of {', '.join(AUGMENTS)} (randaugment: the original's policy; "
                       f"randaugment_torchvision: torchvision's v2.RandAugment), not '{augment}'")
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
        train.append(RandAugment())  # on the uint8 crop, before ToDtype / Normalize (as the original)
    elif augment == "randaugment_torchvision":
        train.append(v2.RandAugment())
    return v2.Compose(train + _finish(mean, std)), v2.Compose(test + _finish(mean, std))
