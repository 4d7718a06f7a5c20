from __future__ import annotations

from glt.methods.base import METHODS, Method


@METHODS.register("ce")
class CrossEntropy(Method):
    name = "ce"
    description = "cross-entropy baseline with instance-balanced sampling"
