"""The method registry. Each method is a small module; importing this package registers them all.

A run names a method as `NAME` or `WRAPPER+NAME` (e.g. `ifl+blsoftmax`); a wrapper alone (`ifl`)
means the wrapper around its default base method."""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from typing import Any

from glt.errors import GLTError, unknown_name
from glt.mapping import deep_update
from glt.methods.base import (
    METHODS,
    WRAPPERS,
    Context,
    Method,
    MethodWrapper,
    Output,
    Stage,
)

_MODULES = [
    "ce", "blsoftmax", "logit_adj", "ifl", "irm", "focal", "logit_adj_loss", "ldam", "mixup", "randaug",
    "decoupling", "tde", "bbn", "ride", "tade", "lff",
]
for _m in _MODULES:
    importlib.import_module(f"glt.methods.{_m}")




@dataclass
class MethodSpec:
    """A resolved method name: the base method class and an optional wrapper class around it."""

    name: str
    base: type[Method]
    wrapper: type | None = None

    @property
    def settings_cls(self) -> type:
        return self.base.Settings

    def wrapper_settings(self) -> Any:
        return self.wrapper.Settings() if self.wrapper is not None else None

    @property
    def train_defaults(self) -> dict[str, Any]:
        """The base method's training defaults, then the wrapper's, merged key by key (a wrapper's
        `optim.weight_decay` keeps the base's `optim.schedule`), as glt.config.build_config merges them."""
        out = copy.deepcopy(dict(self.base.train_defaults))
        if self.wrapper is not None:
            deep_update(out, self.wrapper.train_defaults)
        return out

    def create(self, settings: Any, wrapper_settings: Any, ctx: Context) -> Method:
        method = self.base(settings, ctx)
        if self.wrapper is not None:
            method = self.wrapper(method, wrapper_settings, ctx)
        return method


def all_names() -> list[str]:
    return METHODS.names() + WRAPPERS.names()


def resolve_method(name: str) -> MethodSpec:
    if "+" in name:
        wrapper_name, _, base_name = name.partition("+")
        if wrapper_name not in WRAPPERS:
            raise unknown_name("method wrapper", wrapper_name, WRAPPERS.names())
        if base_name not in METHODS:
            raise unknown_name("method", base_name, METHODS.names())
        return MethodSpec(name, METHODS.get(base_name), WRAPPERS.get(wrapper_name))
    if name in WRAPPERS:
        wrapper = WRAPPERS.get(name)
        return MethodSpec(name, METHODS.get(wrapper.default_base), wrapper)
    if name not in METHODS:
        raise unknown_name("method", name, all_names())
    return MethodSpec(name, METHODS.get(name))


def same_method(a: str, b: str) -> bool:
    """Whether two method names name the same method (`ifl` and `ifl+blsoftmax` do)."""
    try:
        sa, sb = resolve_method(a), resolve_method(b)
    except GLTError:
        return a == b
    return (sa.base, sa.wrapper) == (sb.base, sb.wrapper)


__all__ = ["METHODS", "WRAPPERS", "Context", "Method", "MethodWrapper", "MethodSpec", "Output", "Stage", "all_names", "resolve_method", "same_method"]
