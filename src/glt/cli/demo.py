"""`glt demo`: build the embedded ColorDigits-GLT benchmark, train the default methods on both tracks,
and print the CLT / GLT / ALT table (minutes on a laptop CPU)."""

from __future__ import annotations

import time
from pathlib import Path

DEFAULT_METHODS = "ce,blsoftmax,logit_adj,ifl"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="build ColorDigits-GLT, train the default methods, print the three-protocol table",
        description="End-to-end demo on the embedded benchmark: `glt build digits`, then `glt run` for each method "
        "and seed, then `glt report`. Writes OUT/benchmark, OUT/runs/METHOD/seedN, OUT/results.{json,md,csv} and "
        "OUT/figures. Re-running continues where a stopped demo left off. Every argument is checked before "
        "anything is built or deleted; --overwrite removes only what a demo writes (a folder holding anything "
        "else is refused).",
    )
    p.add_argument("--out", default="glt-demo", help="output folder")
    p.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated method names")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--overwrite", action="store_true", help="start from scratch")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run, e.g. epochs=20")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.benchmark import Benchmark
    from glt.benchmark.directory import MANIFEST
    from glt.builders.digits import build_digits
    from glt.cli.common import parse_names, parse_seeds
    from glt.runtime import layout
    from glt.runtime.owned_files import check_layout_folder, remove_layout
    from glt.experiment import check_sweep_settings, sweep
    from glt.report.write import write_report

    t0 = time.perf_counter()
    out = Path(args.out)
    bench = out / layout.BENCHMARK
    methods, seeds = parse_names(args.methods), parse_seeds(args.seeds)
    # everything is checked before anything is built or deleted (the benchmark may not exist yet: its style is known)
    check_sweep_settings(bench, methods, seeds, overrides=args.overrides, image_style="small")
    check_layout_folder(out, layout.DEMO_LAYOUT, "demo", args.overwrite)
    if args.overwrite and out.is_dir():
        remove_layout(out, layout.DEMO_LAYOUT, keep=())
    if not (bench / MANIFEST).is_file():
        print(f"building ColorDigits-GLT into {bench} ...")
        build_digits(bench)
    Benchmark(bench)  # validates
    runs = sweep(str(bench), methods, seeds, out, overrides=args.overrides, check_folder=False)
    table = write_report(runs, out, title="glt demo: ColorDigits-GLT")
    print(f"\n{table}\n")
    print(f"percent, mean ± std over seeds; written to {out}/{layout.REPORT_MD}, {layout.REPORT_JSON}, "
          f"{layout.REPORT_CSV}, {layout.FIGURES}/")
    print(f"demo wall time: {time.perf_counter() - t0:.0f} s")
    return 0
