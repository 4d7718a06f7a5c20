"""`glt config`: print the resolved config of a method (what `glt train` / `glt run` would train with the same
arguments), as glt's config keys or, with --original, in the layout of the original's merged config."""

from __future__ import annotations

from glt.cli.common import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "config", help="print the resolved config of a method (e.g. under --preset paper)",
        description="Resolve the config `glt train` would use with the same arguments and print it as YAML, without "
        "training. --original prints it in the layout of the original code's merged config (config/<dataset>.yaml "
        "updated with its config/algorithms_config.yaml entry: training_opt, sampler, algorithm_opt...), to hold "
        "it against the original's YAML. Example: "
        "glt config --method ifl+ldam --benchmark DIR --preset paper --original",
    )
    p.add_argument("--benchmark", help="benchmark directory (or data.benchmark=DIR)")
    p.add_argument("--method", help="method name, e.g. ce, ifl+ldam (see `glt methods`)")
    p.add_argument("--track", choices=["glt", "cbl"], help="training track (default glt)")
    p.add_argument("--seed", type=int)
    view = p.add_mutually_exclusive_group()
    view.add_argument("--original", action="store_true", help="print in the original code's config layout")
    view.add_argument("--sources", action="store_true",
                   help="print every setting with where its value came from (default, benchmark style / kind, "
                   "method, wrapper, preset, file, command line, override)")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import yaml

    from glt.cli.common import train_config
    from glt.config import to_yaml

    sources: dict[str, str] | None = {} if args.sources else None
    cfg = train_config(args, sources)
    if sources is not None:
        print(sources_text(cfg, sources), end="")
    elif args.original:
        from glt.presets import original_view

        print(yaml.safe_dump(original_view(cfg), sort_keys=False, default_flow_style=None), end="")
    else:
        print(to_yaml(cfg), end="")
    return 0


def sources_text(cfg, sources: dict[str, str]) -> str:
    """One line per setting: `key: value  # source`, in the config's order."""
    import json

    from omegaconf import OmegaConf

    from glt.config import _leaves

    lines = []
    for key in _leaves(OmegaConf.to_container(cfg, resolve=True)):
        value = OmegaConf.select(cfg, key)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        lines.append(f"{key}: {json.dumps(value)}  # {sources.get(key, 'default')}")
    return "\n".join(lines) + "\n"
