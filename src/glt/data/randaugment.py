"""The original study's RandAugment, ported: the policy of the PyPI package `randaugment` 1.0.2
(`randaugment/randaugment.py`: `RandAugment`, `SubPolicy`, `Cutout`), which the original imports with
`from randaugment import RandAugment` in data/DT_ImageNet_LT.py and data/DT_COCO_LT.py (`get_data_transform`
with `rand_aug`: RandomResizedCrop, RandomHorizontalFlip, RandAugment(), ToTensor, Normalize) and in
data/DT_ColorMNIST.py (imported there, but that dataset asserts `rand_aug == False`).

Why a port: the package builds its magnitude table with `np.int`, which NumPy 1.24 removed, so it cannot
be imported with a current NumPy, and it is unmaintained.

The policy, per image: one of 135 x 135 equally likely pairs is drawn, where each of the 135 entries is
one of 15 operations with a magnitude index 1..9 (index 0 is never used); each of the two operations is
then applied, in order, with probability 0.5. Magnitude indices select from a 10-entry table per
operation (`RANGES`). Operations that have a direction (shears, translations, colour / contrast /
sharpness / brightness) draw a sign with `choice([-1, 1])` when applied; Rotate has none (the package
always rotates counter-clockwise by +angle). Everything runs on PIL images with the package's resampling
(bicubic for shears, PIL's default nearest for translations and rotation) and fills (grey 128 for
shears / translations / rotation, (125, 122, 113) for Cutout).

Random numbers: the pair, the two 0.5 tests and the signs come from Python's `random` in the package,
in the same order here; with the same `random.Random` state this port makes the same draws. The one
difference is Cutout's centre, which the package draws with `np.random.randint`; here it comes from the
same Python generator (same distribution: uniform over the pixel grid). By default the module-level
`random` is used: glt seeds it per run (glt.runtime.checkpoint.seed_everything), and torch's DataLoader
reseeds it in every worker process (base seed + worker id), so workers draw different policies. An
explicit `rng` is copied into every worker, which would then repeat each other's draws: pass one only in a
single process (tests)."""

from __future__ import annotations

import random as _random

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

# in the order of the package's RandAugment.get_trans_list: a policy index decodes against this order
OPS = ("Invert", "Cutout", "Sharpness", "AutoContrast", "Posterize", "ShearX", "TranslateX", "TranslateY",
       "ShearY", "Rotate", "Equalize", "Contrast", "Color", "Solarize", "Brightness")
MAGNITUDE_INDICES = range(1, 10)  # RandAugment never uses index 0 of a RANGES entry
NUM_ENTRIES = len(OPS) * len(MAGNITUDE_INDICES)  # 135 (operation, magnitude) entries per slot
PROBABILITY = 0.5  # of each of the two operations

FILL = (128, 128, 128)  # shears and translations (the package's `fillcolor` default)
ROTATE_FILL = (128, 128, 128, 128)  # RGBA background composited under the rotated image
CUTOUT_FILL = (125, 122, 113, 0)  # as the package writes it; an RGB image keeps the first 3 values


def _table(values) -> tuple:
    return tuple(np.asarray(values).tolist())  # Python numbers, bit-equal to the package's numpy values


# magnitude per index 0..9: the package's `ranges` (np.linspace; posterize / cutout rounded to integers)
RANGES: dict[str, tuple] = {
    "ShearX": _table(np.linspace(0, 0.3, 10)),
    "ShearY": _table(np.linspace(0, 0.3, 10)),
    "TranslateX": _table(np.linspace(0, 150 / 331, 10)),  # a fraction of the image width
    "TranslateY": _table(np.linspace(0, 150 / 331, 10)),  # ... and of its height
    "Rotate": _table(np.linspace(0, 30, 10)),  # degrees
    "Color": _table(np.linspace(0.0, 0.9, 10)),
    "Posterize": _table(np.round(np.linspace(8, 4, 10), 0).astype(int)),  # bits kept
    "Solarize": _table(np.linspace(256, 0, 10)),  # threshold (a float)
    "Contrast": _table(np.linspace(0.0, 0.9, 10)),
    "Sharpness": _table(np.linspace(0.0, 0.9, 10)),
    "Brightness": _table(np.linspace(0.0, 0.9, 10)),
    "AutoContrast": (0,) * 10,
    "Equalize": (0,) * 10,
    "Invert": (0,) * 10,
    "Cutout": _table(np.round(np.linspace(0, 20, 10), 0).astype(int)),  # patch size in pixels
}


def _sign(rng) -> int:
    return rng.choice([-1, 1])


def _rotate(img: Image.Image, degrees: float) -> Image.Image:
    """Rotate by +degrees (nearest), uncovered corners grey: rotate as RGBA, whose new pixels are
    transparent, and composite over a grey background with the rotated alpha as the mask."""
    rot = img.convert("RGBA").rotate(degrees)
    return Image.composite(rot, Image.new("RGBA", rot.size, ROTATE_FILL), rot).convert(img.mode)


def _cutout(img: Image.Image, size: int, rng) -> Image.Image:
    """Paint a square of CUTOUT_FILL around a random centre, clipped at the borders.

    As in the package: the centre is drawn first along the width (PIL's size[0], which the package
    calls the height), then along the height; the box spans centre - size // 2 to centre + size // 2
    (exclusive) on each axis, so an odd size gives a patch one pixel smaller than `size`."""
    out = img.copy()
    width, height = out.size
    cx = rng.randrange(width)
    cy = rng.randrange(height)
    half = int(size) // 2
    x0, x1 = max(0, cx - half), min(width, cx + half)
    y0, y1 = max(0, cy - half), min(height, cy + half)
    pixels = out.load()
    for x in range(x0, x1):
        for y in range(y0, y1):
            pixels[x, y] = CUTOUT_FILL
    return out


def apply_op(img: Image.Image, name: str, magnitude, rng=None, fillcolor=FILL) -> Image.Image:
    """One operation of the package's SubPolicy at `magnitude` (a RANGES value, not an index); `rng`
    supplies the sign (and Cutout's centre), the module-level `random` when None."""
    rng = _random if rng is None else rng
    if name == "ShearX":
        return img.transform(img.size, Image.AFFINE, (1, magnitude * _sign(rng), 0, 0, 1, 0), Image.BICUBIC,
                             fillcolor=fillcolor)
    if name == "ShearY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, magnitude * _sign(rng), 1, 0), Image.BICUBIC,
                             fillcolor=fillcolor)
    if name == "TranslateX":
        return img.transform(img.size, Image.AFFINE, (1, 0, magnitude * img.size[0] * _sign(rng), 0, 1, 0),
                             fillcolor=fillcolor)
    if name == "TranslateY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, magnitude * img.size[1] * _sign(rng)),
                             fillcolor=fillcolor)
    if name == "Rotate":
        return _rotate(img, magnitude)
    if name == "Color":
        return ImageEnhance.Color(img).enhance(1 + magnitude * _sign(rng))
    if name == "Posterize":
        return ImageOps.posterize(img, int(magnitude))
    if name == "Solarize":
        return ImageOps.solarize(img, magnitude)
    if name == "Contrast":
        return ImageEnhance.Contrast(img).enhance(1 + magnitude * _sign(rng))
    if name == "Sharpness":
        return ImageEnhance.Sharpness(img).enhance(1 + magnitude * _sign(rng))
    if name == "Brightness":
        return ImageEnhance.Brightness(img).enhance(1 + magnitude * _sign(rng))
    if name == "AutoContrast":
        return ImageOps.autocontrast(img)
    if name == "Equalize":
        return ImageOps.equalize(img)
    if name == "Invert":
        return ImageOps.invert(img)
    if name == "Cutout":
        return _cutout(img, magnitude, rng)
    raise ValueError(f"unknown RandAugment operation '{name}'")


class SubPolicy:
    """Two operations, each applied with its own probability, in order (the package's SubPolicy):
    `operation` names from OPS (any case), magnitudes as indices 0..9 into RANGES."""

    def __init__(self, p1: float, operation1: str, magnitude_idx1: int, p2: float, operation2: str,
                 magnitude_idx2: int, fillcolor=FILL, rng=None):
        self.fillcolor = tuple(fillcolor)
        self.rng = rng
        self.steps = []
        for p, op, idx in ((p1, operation1, magnitude_idx1), (p2, operation2, magnitude_idx2)):
            name = _canonical(op)
            self.steps.append((p, name, RANGES[name][idx]))

    def __call__(self, img: Image.Image) -> Image.Image:
        rng = _random if self.rng is None else self.rng
        for p, name, magnitude in self.steps:
            if rng.random() < p:
                img = apply_op(img, name, magnitude, rng, self.fillcolor)
        return img

    def __repr__(self) -> str:
        return "SubPolicy(" + ", ".join(f"{n} p={p} magnitude={m}" for p, n, m in self.steps) + ")"


def _canonical(op: str) -> str:
    by_lower = {n.lower(): n for n in OPS}
    try:
        return by_lower[op.lower()]
    except KeyError:
        raise ValueError(f"unknown RandAugment operation '{op}'") from None


def decode_policy(index: int) -> tuple[tuple[str, int], tuple[str, int]]:
    """Policy `index` (0 .. 135^2 - 1) of the package's list, which enumerates the first (operation,
    magnitude) entry in the outer loop, the second in the inner one, magnitudes 1..9 within operations."""
    first, second = divmod(index, NUM_ENTRIES)
    return tuple((OPS[k // len(MAGNITUDE_INDICES)], MAGNITUDE_INDICES[k % len(MAGNITUDE_INDICES)])
                 for k in (first, second))


class RandAugment:
    """The `randaugment` package's RandAugment as a per-image transform (see the module docstring).

    Accepts a PIL image (returned as a PIL image) or a uint8 (C, H, W) tensor, as glt's torchvision v2
    pipelines pass it (converted to PIL and back to a uint8 tensor). glt places it where the original
    does: after the crop and flip, before conversion to float and normalisation (glt.data.transforms)."""

    def __init__(self, rng=None, fillcolor=FILL):
        self.rng = rng
        self.fillcolor = tuple(fillcolor)

    def draw(self, rng=None) -> tuple[tuple[str, int], tuple[str, int]]:
        """The two (operation, magnitude index) entries of one uniformly drawn policy."""
        rng = rng if rng is not None else (_random if self.rng is None else self.rng)
        return decode_policy(rng.randint(0, NUM_ENTRIES * NUM_ENTRIES - 1))

    def augment(self, img: Image.Image) -> Image.Image:
        rng = _random if self.rng is None else self.rng
        (op1, m1), (op2, m2) = self.draw(rng)
        return SubPolicy(PROBABILITY, op1, m1, PROBABILITY, op2, m2, self.fillcolor, rng)(img)

    def __call__(self, img):
        if not isinstance(img, torch.Tensor):
            return self.augment(img)
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

        if img.dtype != torch.uint8 or img.ndim != 3:
            raise TypeError(f"RandAugment expects a uint8 (C, H, W) image tensor, not {img.dtype} {tuple(img.shape)}")
        out = TF.pil_to_tensor(self.augment(TF.to_pil_image(img)))
        return tv_tensors.wrap(out, like=img) if isinstance(img, tv_tensors.TVTensor) else out

    def __repr__(self) -> str:
        return "RandAugment(policy of the randaugment 1.0.2 package: 2 of 15 operations, p 0.5, magnitude 1-9)"
