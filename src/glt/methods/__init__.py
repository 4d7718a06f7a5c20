"""The method registry. Each method is a small module of this package that registers itself with
`@METHODS.register(NAME)` or `@WRAPPERS.register(NAME)`; importing the package imports every module of it,
then every module named by an entry point of the `glt.methods` group (methods of other packages;
docs/adding-a-method.md).

A run names a method as `NAME` or `WRAPPER+NAME` (e.g. `ifl+blsoftmax`); a wrapper alone (`ifl`)
means the wrapper around its default base method."""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import pkgutil
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

from glt.search.space import COMMON_SPACE, Distribution, merge_spaces

ENTRY_POINT_GROUP = "glt.methods"


def _import_builtin_methods() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


def load_plugins() -> list[str]:
    """Import the module of every `glt.methods` entry point (each registers its methods when imported);
    returns the entry points' names. A plug-in that fails to import is a GLTError naming it."""
    names = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            ep.load()
        except Exception as e:  # any error of foreign code: one line naming the plug-in
            raise GLTError(f"method plug-in '{ep.name}' (entry point {ep.value} of group {ENTRY_POINT_GROUP}) "
                           f"failed to load: {type(e).__name__}: {e}") from None
        names.append(ep.name)
    return names


_import_builtin_methods()
PLUGINS = load_plugins()


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

    def paper_settings(self, kind: str) -> dict[str, Any]:
        """The original study's settings of this method on a benchmark of `kind` (nested config keys): the base
        method's `paper`, its `paper_by_kind[kind]`, then the wrapper's, merged key by key. glt.presets adds the
        recipe every method shares."""
        out: dict[str, Any] = {}
        for cls in (self.base, self.wrapper):
            if cls is not None:
                deep_update(out, copy.deepcopy(cls.paper))
                deep_update(out, copy.deepcopy(cls.paper_by_kind.get(kind, {})))
        return out

    def search_space(self) -> dict[str, Distribution]:
        """Dotted config key -> distribution: the optimiser's (COMMON_SPACE) < the base method's < the wrapper's."""
        return merge_spaces(COMMON_SPACE, self.base.search_space, self.wrapper.search_space if self.wrapper else None)

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


def zoo_names() -> list[str]:
    """The base methods that train with any backbone (all but those declaring `needs_text_tower`, which need
    an open_clip backbone): what the zoo sweep and the every-method tests run on the small CNN."""
    return [n for n in METHODS.names() if not METHODS.get(n).needs_text_tower]


def combinations(wrapper: str) -> list[str]:
    """`WRAPPER+NAME` for every base method the wrapper can wrap (its stages build), without the wrapper's
    default base (the bare wrapper name is that one)."""
    from glt.methods.probe import probe_context

    default = WRAPPERS.get(wrapper).default_base
    out = []
    for base in METHODS.names():
        spec = resolve_method(f"{wrapper}+{base}")
        try:
            spec.create(spec.settings_cls(), spec.wrapper_settings(), probe_context()).stages()
        except GLTError:  # e.g. a base whose first stage has its own sampler (BBN)
            continue
        if base != default:
            out.append(spec.name)
    return out


def same_method(a: str, b: str) -> bool:
    """Whether two method names name the same method (`ifl` and `ifl+blsoftmax` do)."""
    try:
        sa, sb = resolve_method(a), resolve_method(b)
    except GLTError:
        return a == b
    return (sa.base, sa.wrapper) == (sb.base, sb.wrapper)


__all__ = ["METHODS", "WRAPPERS", "Context", "Method", "MethodWrapper", "MethodSpec", "Output", "Stage", "all_names",
           "combinations", "load_plugins", "resolve_method", "same_method", "zoo_names"]
