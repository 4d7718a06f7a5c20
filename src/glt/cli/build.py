"""`glt build KIND ...`: build a GLT benchmark directory. Each kind is a builder module registered in
glt.builders.BUILDERS with `add_arguments(parser)` and `run(args)`."""

from __future__ import annotations

import argparse

from glt.builders import BUILDERS


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the builders' docstring layout (example commands) and show option defaults."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build a GLT benchmark (digits, imagenet, folder, torchvision, coco)",
        description="Build a GLT benchmark directory (manifest + split tables) from raw data.",
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, builder in BUILDERS.items():
        bp = kinds.add_parser(
            name,
            help=builder.HELP,
            description=builder.__doc__,
            formatter_class=_HelpFormatter,
        )
        builder.add_arguments(bp)
        bp.set_defaults(func=builder.run)
