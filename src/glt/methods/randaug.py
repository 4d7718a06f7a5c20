from __future__ import annotations

from glt.methods.base import METHODS, Method


@METHODS.register("randaug")
class RandAug(Method):
    """Cross-entropy with torchvision's RandAugment (2 operations, magnitude 9) added to the training
    transform (`data.augment=randaugment`); everything else is the baseline."""

    name = "randaug"
    description = "cross-entropy with RandAugment training augmentation"
    train_defaults = {"data": {"augment": "randaugment"}}
