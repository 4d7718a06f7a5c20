"""`glt report`: collect runs (several seeds -> mean ± std) into one table and plots."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="collect `glt run` folders into a table (mean ± std over seeds) and plots",
        description="Find every results.json (written by `glt run`) under RUN_DIRS, group by method, and write "
        "results.md, results.csv, results.json, results.tex (booktabs tables for a paper) and figures/ into "
        "--out (printing the Markdown table). With --tensorboard, also replay the metrics.jsonl of every "
        "run folder under RUN_DIRS into <run>/tensorboard (needs the tensorboard package).",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIRS")
    p.add_argument("--out", help="report folder (default: print the table only)")
    p.add_argument("--title", default="GLT results")
    p.add_argument("--select", nargs="?", const="val_accuracy", metavar="RULE",
                   choices=["val_accuracy", "val_worst_attribute", "val_worst_class", "val_precision", "oracle", "all"],
                   help="model selection over a sweep's trials and epochs (docs/search.md): per method the trial and "
                   "epoch with the best RULE, mean over seeds: val_accuracy (default; the original's rule), "
                   "val_worst_attribute, val_worst_class, val_precision, oracle (the test set: an upper bound), "
                   "all (one table per rule); with --out also selection.md / selection.json")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard event files into every run folder (view: tensorboard --logdir RUN_DIR)")
    p.set_defaults(func=run)


def _has_results(path: Path) -> bool:
    from glt.experiment import has_protocol_results

    return has_protocol_results(path)


def run(args) -> int:
    from glt.experiment import collect_results
    from glt.report.tables import protocol_table
    from glt.report.write import write_report

    if args.out:
        from glt.cli.common import check_out_folder

        check_out_folder(args.out)
    if args.tensorboard:
        from glt.report.tensorboard import export_tensorboard_runs

        folders = export_tensorboard_runs(args.run_dirs)
        print(f"TensorBoard events written into {len(folders)} run folder(s); view them with: "
              f"tensorboard --logdir {' '.join(map(str, args.run_dirs))}")
        if not args.out and not any(_has_results(Path(p)) for p in args.run_dirs):
            return 0  # `glt train` folders: nothing to tabulate, and nothing was asked for
    runs = collect_results(args.run_dirs)
    if args.select:
        return _selection(args, runs)
    if args.out:
        print(write_report(runs, args.out, args.title))
        print(f"\nreport written to {args.out}/results.md")
    else:
        print(protocol_table(runs))
    return 0


def _selection(args, runs) -> int:
    from glt.report.select import RULE_ORDER, load_records
    from glt.report.write import selection_text, write_selection_report

    rules = list(RULE_ORDER) if args.select == "all" else [args.select]
    records = load_records(runs)
    if args.out:
        print(write_selection_report(records, args.out, rules, args.title))
        print(f"\nselection written to {args.out}/selection.md, selection.json")
    else:
        print(selection_text(records, rules))
    return 0
