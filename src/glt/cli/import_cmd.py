"""`glt import`: turn the two annotation files of the original release (ImageNet-GLT or MSCOCO-GLT)
into a benchmark directory."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Import the annotation files of the original GLT release
(KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch) into a benchmark directory.
Both layouts are detected: ImageNet-GLT (samples keyed by image path) and MSCOCO-GLT
(samples keyed by patch id, with a 'path' map). Sample ids stay the keys of the original
files, so predictions made for them can be scored unchanged. The image paths in those
files are absolute paths on the authors' machine: rewrite their prefix with
--path-map OLD=NEW (repeatable, first matching prefix wins)."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import",
        help="import the original ImageNet-GLT / MSCOCO-GLT annotation files",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--glt-file", required=True, metavar="LT_FILE",
                   help="the ..._inter_lt file (track glt: Train-GLT, Val, Test-GLT, Test-CBL, Test-GBL)")
    p.add_argument("--cbl-file", required=True, metavar="BL_FILE",
                   help="the ..._inter_bl file (track cbl: Train-CBL, Val, Test-CBL, Test-GBL)")
    p.add_argument("--out", required=True, metavar="DIR", help="benchmark directory to write")
    p.add_argument("--path-map", action="append", default=[], metavar="OLD=NEW",
                   help="rewrite image paths starting with OLD to start with NEW (repeatable; first match wins)")
    p.add_argument("--name", default=None, help="benchmark name (default: from the --glt-file name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.benchmark.original import run_import
    from glt.cli.common import check_benchmark_out

    check_benchmark_out(args.out, args.overwrite)
    r = run_import(args.glt_file, args.cbl_file, args.out, path_map=args.path_map, name=args.name,
                   overwrite=args.overwrite)
    print(f"imported {r.layout} annotation files into {r.out}")
    width = max(len(s) for s in r.rows)
    for split, n in r.rows.items():
        note = f", {r.missing[split]:,} images missing" if r.missing[split] else ""
        print(f"  {split:<{width}}  {n:>9,} rows{note}")
    for m in r.unused_path_maps:
        print(f"glt: warning: --path-map {m} matched no image path", file=sys.stderr)
    summary = r.missing_summary()
    if summary:
        print(f"glt: warning: {summary}", file=sys.stderr)
    return 0
