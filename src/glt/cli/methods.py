"""`glt methods [NAME]`: list the method registry, or one method's full settings."""

from __future__ import annotations

import dataclasses


def add_parser(sub) -> None:
    p = sub.add_parser(
        "methods", help="list methods, or show one method's settings",
        description="Without NAME: one line per method (and per wrapper such as ifl). With NAME (e.g. blsoftmax, "
        "ifl+ce): its description and every setting with its default, as config keys.",
    )
    p.add_argument("name", nargs="?", metavar="NAME")
    p.set_defaults(func=run)


def _settings(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)} if obj is not None else {}


def _defaults_line(spec) -> str:
    parts = [f"{k}={v}" for k, v in _settings(spec.settings_cls()).items()]
    parts += [f"{k}={v}" for k, v in spec.train_defaults.items()]
    return ", ".join(parts)


def run(args) -> int:
    from glt.methods import METHODS, WRAPPERS, resolve_method

    if args.name is None:
        names = METHODS.names() + WRAPPERS.names()
        width = max(map(len, names))
        for name in names:
            spec = resolve_method(name)
            desc = (spec.wrapper or spec.base).description
            defaults = _defaults_line(spec)
            print(f"{name:<{width}}  {desc}" + (f"  [{defaults}]" if defaults else ""))
        return 0
    spec = resolve_method(args.name)
    print(f"{args.name}: {spec.base.description}")
    if spec.wrapper is not None:
        print(f"  wrapped by {spec.wrapper.name}: {spec.wrapper.description}")
    doc = (spec.base.__doc__ or "").strip()
    if doc:
        print("\n" + doc + "\n")
    rows = [(f"method_args.{k}", v) for k, v in _settings(spec.settings_cls()).items()]
    rows += [(f"wrapper_args.{k}", v) for k, v in _settings(spec.wrapper_settings()).items()]
    rows += [(k, v) for k, v in spec.train_defaults.items()]
    if rows:
        print("settings (override with KEY=VALUE):")
        for k, v in rows:
            print(f"  {k} = {v}")
    else:
        print("no settings of its own")
    return 0
