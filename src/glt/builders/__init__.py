"""Benchmark builders. Each module defines HELP, a docstring, `add_arguments(parser)` and `run(args)`;
register it here by name (the `glt build NAME` subcommand)."""

from __future__ import annotations

import importlib

from glt.registry import Registry

BUILDERS: Registry = Registry("benchmark builder")

# name -> module under glt.builders
_MODULES = {
    "digits": "digits",
    "coco": "coco",
    "imagenet": "imagenet",
    "folder": "folder",
    "torchvision": "torchvision_data",
}

for _name, _module in _MODULES.items():
    BUILDERS.add(_name, importlib.import_module(f"glt.builders.{_module}"))
