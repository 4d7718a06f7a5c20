"""`glt sweep`: many methods x seeds on one benchmark, then one report."""

from __future__ import annotations

import shlex

from glt.cli.common import add_config_args
from glt.errors import GLTError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run many methods x seeds (CLT / GLT / ALT each) and report them together",
        description="`glt run` for every method and seed into OUT/runs/METHOD/seedN (sequentially; complete runs are "
        "skipped, unfinished ones resumed), then `glt report` into OUT. With --dry-run, print one `glt run` "
        "command per run instead, for a cluster scheduler.",
    )
    p.add_argument("--benchmark", required=True, help="benchmark directory")
    p.add_argument("--methods", required=True, help="comma-separated method names, e.g. ce,blsoftmax,ifl")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--out", required=True, help="sweep folder")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                   help="with --dry-run: print `torchrun --nproc_per_node N -m glt run ...` commands (N GPUs per run)")
    p.add_argument("--title", default="GLT results")
    add_config_args(p)
    p.set_defaults(func=run)


def commands(args, methods, seeds) -> list[str]:
    from glt.experiment import run_folder

    extra = []
    if args.yaml_file:
        extra += ["--config", args.yaml_file]
    if args.preset:
        extra += ["--preset", args.preset]
    launch = ["glt"] if args.nproc_per_node == 1 else ["torchrun", f"--nproc_per_node={args.nproc_per_node}", "-m", "glt"]
    return [
        shlex.join([*launch, "run", "--benchmark", args.benchmark, "--method", m, "--seed", str(s),
                    "--out", str(run_folder(args.out, m, s)), "--resume", *extra, *args.overrides])
        for m in methods for s in seeds
    ]


def run(args) -> int:
    from glt.cli.common import check_out_folder, parse_names, parse_seeds
    from glt.experiment import check_sweep_settings, sweep
    from glt.report.write import write_report

    methods, seeds = parse_names(args.methods), parse_seeds(args.seeds)
    if args.nproc_per_node < 1:
        raise GLTError(f"--nproc-per-node must be at least 1, not {args.nproc_per_node}")
    # every method, seed and setting, also for --dry-run: the printed commands must run
    check_sweep_settings(args.benchmark, methods, seeds, overrides=args.overrides, yaml_file=args.yaml_file,
                         preset=args.preset)
    if args.dry_run:
        print("\n".join(commands(args, methods, seeds)))
        return 0
    check_out_folder(args.out)
    runs = sweep(args.benchmark, methods, seeds, args.out, overrides=args.overrides, yaml_file=args.yaml_file,
                 preset=args.preset)
    print(write_report(runs, args.out, args.title))
    print(f"\nreport written to {args.out}/results.md")
    return 0
