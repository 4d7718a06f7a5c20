"""`glt report`: collect runs (several seeds -> mean ± std) into one table and plots."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="collect `glt run` folders into a table (mean ± std over seeds) and plots",
        description="Find every results.json (written by `glt run`) under RUN_DIRS, group by method, and write "
        "results.md, results.csv, results.json and figures/ into --out (printing the Markdown table).",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIRS")
    p.add_argument("--out", help="report folder (default: print the table only)")
    p.add_argument("--title", default="GLT results")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.experiment import collect_results
    from glt.report.tables import protocol_table
    from glt.report.write import write_report

    runs = collect_results(args.run_dirs)
    if args.out:
        print(write_report(runs, args.out, args.title))
        print(f"\nreport written to {args.out}/results.md")
    else:
        print(protocol_table(runs))
    return 0
