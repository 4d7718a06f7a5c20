"""The `glt` command line. Each subcommand lives in its own module under glt.cli and exposes
`add_parser(subparsers)`, which registers the subcommand and sets `func(args) -> int | None`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from glt import __version__
from glt.errors import GLTError

# module names under glt.cli, in the order `glt --help` lists them
COMMANDS = [
    "build",
    "import_cmd",
    "export",
    "cache",
    "train",
    "eval_cmd",
    "score",
    "run",
    "sweep",
    "report",
    "demo",
    "methods",
    "convert_attributes",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glt",
        description="Generalized Long-Tailed classification: build GLT benchmarks, train long-tailed "
        "methods (with or without IFL), evaluate under the CLT / GLT / ALT protocols.",
    )
    parser.add_argument("--version", action="version", version=f"glt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"glt.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    from glt.engine import distributed

    if distributed.launched() and os.environ.get("RANK", "0") != "0":
        sys.stdout = open(os.devnull, "w")  # under torchrun, rank 0 alone prints results
    try:
        rc = args.func(args)
        distributed.teardown()
    except GLTError as e:
        print(f"glt: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("glt: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rc or 0)
