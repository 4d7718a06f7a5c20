"""Does a pretrained weight already know an ImageNet-GLT benchmark's test images?

ImageNet-GLT carves every split, the test splits included, out of ImageNet's *train* folder
(docs/build.md), so weights trained on ImageNet-1k (or on ImageNet-21k/22k/12k, which contain
ImageNet-1k's train images) have seen, often with their labels, the images they are tested on.
docs/foundation.md says what is known for web-data (CLIP-style) weights."""

from __future__ import annotations

import re

# tokens of a weights name (torchvision enum, timm `arch.tag`, open_clip `arch/tag`) that say the
# weights were trained on ImageNet images; why each is here:
IMAGENET_TOKENS = {
    "imagenet": "an ImageNet data set",
    "imagenet1k": "torchvision's IMAGENET1K_* weights (every torchvision classification weight)",
    "in1k": "ImageNet-1k (timm tags: a1_in1k, tv_in1k, ..._ft_in1k)",
    "in12k": "ImageNet-12k, a subset of ImageNet-22k",
    "in21k": "ImageNet-21k, which holds ImageNet-1k's train images",
    "in22k": "ImageNet-22k, which holds ImageNet-1k's train images",
    "inw21k": "ImageNet-21k (winter release)",
    "lvd142m": "DINOv2's LVD-142M, which includes ImageNet-1k's and ImageNet-22k's train images",
    "dino": "DINO, self-supervised on ImageNet-1k",
    "mae": "MAE, self-supervised on ImageNet-1k",
    "ijepa": "I-JEPA, self-supervised on ImageNet-1k / -22k",
    "fcmae": "ConvNeXt-V2's FCMAE, self-supervised on ImageNet-1k",
}


def imagenet_trained(weights_name: str | None) -> str | None:
    """Why `weights_name` counts as ImageNet-trained (a phrase), or None when its name says nothing of it."""
    if not weights_name:
        return None
    for token in re.split(r"[^a-z0-9]+", weights_name.lower()):
        if token in IMAGENET_TOKENS:
            return IMAGENET_TOKENS[token]
    return None


def images_from_imagenet(manifest) -> bool:
    """True for an ImageNet-GLT benchmark: manifest `kind` 'imagenet_glt' made from ImageNet itself (the
    `imagenet` builder, or `glt import` of the original ImageNet-GLT files); `folder` / `torchvision`
    benchmarks follow its recipe on other images."""
    info = manifest.info if isinstance(manifest.info, dict) else {}
    builder = info.get("builder")
    kind = getattr(manifest, "kind", None)
    if kind is not None and kind != "imagenet_glt":
        return False
    if builder in ("folder", "torchvision"):
        return False
    if kind == "imagenet_glt":
        return True
    return builder == "imagenet" or (builder == "import" and info.get("layout") == "imagenet-glt")


def contamination(manifest, weights_name: str | None, weights_file: str | None = None) -> dict:
    """The store record's `contamination` entry: `warning` is the line to print, or None."""
    from_imagenet = images_from_imagenet(manifest)
    reason = imagenet_trained(weights_name)
    warning = None
    if from_imagenet and reason:
        warning = (
            f"warning: weights '{weights_name}' were trained on {reason}; the test splits of ImageNet-GLT benchmark "
            f"'{manifest.name}' come from ImageNet's train folder, so these weights have seen its test images "
            f"(docs/foundation.md, Contamination)"
        )
    elif from_imagenet and weights_file:
        warning = (
            f"warning: the origin of weights file {weights_file} is unknown; if it was trained on ImageNet, it has seen "
            f"the test images of ImageNet-GLT benchmark '{manifest.name}' (docs/foundation.md, Contamination)"
        )
    return {
        "benchmark_from_imagenet_train": from_imagenet,
        "imagenet_trained_weights": reason,
        "warning": warning,
    }
