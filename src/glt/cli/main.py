"""The `glt` command line. Each subcommand lives in its own module under glt.cli and exposes
`add_parser(subparsers)`, which registers the subcommand and sets `func(args) -> int | None`.

Building the parser imports no heavy module (torch, torchvision): a command imports what it needs
when it runs, so `glt --help`, `glt methods` and `glt score` start in a fraction of a second
(tests/test_training.py checks it; benchmarks/startup_time.py measures it).

Every user error ends as one line on stderr and exit status 2: the GLTError of a command, a bad
command line (argparse's message, without the usage block), and an OSError (a full disk, a
read-only file system, a file where a folder should be) naming the path."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from glt import __version__
from glt.errors import GLTError, os_error_message

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
    "config_cmd",
    "convert_attributes",
    "backbones",
    "features",
]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (subcommand parsers inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"glt: error: {message} (see `{self.prog} --help`)\n")


# a config override: KEY=VALUE with a dotted key (never an option)
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.\[\]-]*=")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="glt",
        description="Generalized Long-Tailed classification: build GLT benchmarks, train long-tailed "
        "methods (with or without IFL), evaluate under the CLT / GLT / ALT protocols.",
    )
    parser.add_argument("--version", action="version", version=f"glt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"glt.cli.{name}").add_parser(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line. KEY=VALUE overrides may stand anywhere after the command, also between
    or before its options (`glt train epochs=5 --benchmark DIR --out OUT optim.lr=0.05`)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        overrides = [a for a in extra if _OVERRIDE.match(a)]
        rest = [a for a in extra if not _OVERRIDE.match(a)]
        if overrides and isinstance(getattr(args, "overrides", None), list):
            args.overrides = [*args.overrides, *overrides]
        else:
            rest = extra
        if rest:
            sub = _subparser(parser, args)
            sub.error(f"unrecognized arguments: {' '.join(rest)}")
    if isinstance(getattr(args, "overrides", None), list):  # a command with config overrides (add_config_args)
        from glt.cli.common import backbone_overrides

        args.overrides = [*backbone_overrides(args), *args.overrides]  # explicit key=value still wins
    return args


def _subparser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command that was given (for its name in error messages)."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction) and args.command in action.choices:
            return action.choices[args.command]
    return parser


def _launched_rank() -> int | None:
    """This process's rank under torchrun with several processes (None in a single-process run); read
    from the environment, so that no command imports torch before it needs it."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return int(os.environ.get("RANK", "0") or 0)
    return None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rank = _launched_rank()
    if rank not in (None, 0):
        sys.stdout = open(os.devnull, "w")  # under torchrun, rank 0 alone prints results
    try:
        rc = args.func(args)
        if "glt.runtime.distributed" in sys.modules:  # only commands that trained or scored a model
            sys.modules["glt.runtime.distributed"].teardown()
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except GLTError as e:
        print(f"glt: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("glt: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # `glt score ... | head`: the reader is gone. As the Python documentation recommends: point stdout
        # at devnull (so the flush at exit does not fail again) and exit quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except OSError as e:  # a full disk, a read-only file system, a file where a folder should be...
        print(f"glt: error: {os_error_message(e)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(rc or 0)
