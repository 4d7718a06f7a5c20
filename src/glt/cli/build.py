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
        bp.set_defaults(func=_checked(builder.run))


# input paths of the builders' command lines: argument -> (option, what it must be)
_INPUTS = {
    "root": ("--root", "folder"),
    "coco_root": ("--coco-root", "folder"),
    "attributes": ("--attributes", "file"),
    "counts": ("--counts", "file"),
    "weights_file": ("--weights-file", "file"),
    "features": ("--features", "path"),
}


def _check_inputs(args) -> None:
    """Every input path a builder was given exists (before its output folder or a cache is created)."""
    import os

    from glt.errors import GLTError

    for dest, (option, kind) in _INPUTS.items():
        value = getattr(args, dest, None)
        if value is None or (dest == "root" and hasattr(args, "dataset")):
            continue  # torchvision's --root: its builder says what is missing there (and --download fills it)
        if not os.path.exists(value):
            raise GLTError(f"{option}: {value} not found")
        if kind == "folder" and not os.path.isdir(value):
            raise GLTError(f"{option}: {value} is a file, not a folder")
        if kind == "file" and not os.path.isfile(value):
            raise GLTError(f"{option}: {value} is a folder, not a file")


def _checked(build):
    """The builder's run, after its input paths and output folder are checked (before anything is read,
    created or built)."""

    def run(args):
        from glt.cli.common import check_benchmark_out

        _check_inputs(args)
        check_benchmark_out(args.out, getattr(args, "overwrite", False))
        return build(args)

    return run
