from __future__ import annotations

from glt.methods.base import METHODS, Method


@METHODS.register("randaug")
class RandAug(Method):
    """Cross-entropy with the original's RandAugment added to the training transform after the crop and
    flip (`data.augment=randaugment`: the `randaugment` 1.0.2 package's policy as data/DT_ImageNet_LT.py uses
    it, ported in glt.data.randaugment: 2 operations of 15, each with probability 0.5 and a random magnitude
    1-9); everything else is the baseline. `data.augment=randaugment_torchvision` uses torchvision's
    v2.RandAugment instead (2 operations always applied, magnitude 9); see docs/fidelity.md, section B."""

    needs_images = "it augments input images (RandAugment)"

    name = "randaug"
    description = "cross-entropy with RandAugment training augmentation"
    train_defaults = {"data": {"augment": "randaugment"}}
    paper = {"data": {"augment": "randaugment"}}  # baseline --rand_aug
