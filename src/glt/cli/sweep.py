"""`glt sweep`: many methods x hyper-parameter trials x seeds on one benchmark, then one report (docs/search.md)."""

from __future__ import annotations

import shlex

from glt.cli.common import add_config_args
from glt.errors import GLTError

SEARCHES = ("none", "random", "optuna")
LAUNCHERS = ("local", "torchrun", "slurm")  # glt.sweeps.launchers.LAUNCHERS (not imported to build the parser)
OBJECTIVES = ("val_accuracy", "val_worst_attribute", "val_worst_class", "val_precision")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run many methods x trials x seeds (CLT / GLT / ALT each) and report them together",
        description="`glt run` for every method and seed: at the method's defaults into OUT/runs/METHOD/seedN "
        "(--search none), or for N hyper-parameter trials per method into OUT/trials/METHOD/TRIAL/seedN "
        "(--search random: seeded draws of the method's search space; --search optuna: Optuna's TPE with "
        "pruning). Every trial is recorded in its trial.json (overrides, draw, config, status); finished trials "
        "are skipped, unfinished ones resumed, a failed one recorded and the sweep goes on (exit status 1 at the "
        "end). Then the report into OUT (a search: selection.md, by every selection rule). --status DIR shows "
        "where a sweep stands; --dry-run prints one `glt run` command per run instead.",
    )
    p.add_argument("--benchmark", help="benchmark directory")
    p.add_argument("--methods", help="comma-separated method names, e.g. ce,blsoftmax,ifl")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (every trial trains each)")
    p.add_argument("--out", help="sweep folder")
    p.add_argument("--status", metavar="DIR", help="print the trials of the sweep in DIR (queued / running / done / "
                   "failed / pruned) and exit")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--title", default="GLT results")
    s = p.add_argument_group("search")
    s.add_argument("--search", choices=SEARCHES, default="none",
                   help="none: each method at its defaults; random: --trials seeded draws per method; optuna: TPE")
    s.add_argument("--trials", type=int, default=8, help="trials per method (random, optuna; default 8)")
    s.add_argument("--search-seed", type=int, default=0, help="seed of the draws (the same seed, the same draws)")
    s.add_argument("--storage", help="optuna: the study's storage, any Optuna RDB URL (default sqlite:///OUT/optuna.db)")
    s.add_argument("--study", default="glt", help="optuna: study name prefix (one study STUDY-METHOD per method)")
    s.add_argument("--objective", choices=OBJECTIVES, default="val_accuracy",
                   help="optuna: the validation metric it maximises and prunes on (default val_accuracy)")
    g = p.add_argument_group("launcher")
    g.add_argument("--launcher", choices=LAUNCHERS, default="local",
                   help="local: here (--jobs at a time); torchrun: each trial on --nproc-per-node processes; "
                   "slurm: each trial a job through submitit")
    g.add_argument("--jobs", type=int, default=1, metavar="N", help="local / torchrun / optuna: trials at a time")
    g.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                   help="processes (GPUs) per trial with --launcher torchrun; with --dry-run: print `torchrun "
                   "--nproc_per_node N -m glt run ...` commands")
    g.add_argument("--partition", help="slurm: partition")
    g.add_argument("--time", type=int, default=240, metavar="MIN", help="slurm: time limit per job, minutes")
    g.add_argument("--gpus-per-job", type=int, default=0, metavar="N", help="slurm: GPUs per job (N > 1: torchrun)")
    g.add_argument("--cpus-per-job", type=int, metavar="N", help="slurm: CPUs per job")
    g.add_argument("--mem-gb", type=float, help="slurm: memory per job, GB")
    g.add_argument("--array-parallelism", type=int, default=32, metavar="N",
                   help="slurm: at most N jobs of the array at a time (default 32)")
    g.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="slurm: another sbatch option (e.g. account=myproj, qos=high); repeatable")
    g.add_argument("--wait", action="store_true", help="slurm: wait for the jobs, then report")
    add_config_args(p)
    p.set_defaults(func=run)


def commands(args, methods, seeds) -> list[str]:
    """One `glt run` command per run of a --search none sweep."""
    from glt.experiment import run_folder

    return [_command(args, m, s, str(run_folder(args.out, m, s)), ()) for m in methods for s in seeds]


def _command(args, method: str, seed: int, out: str, drawn) -> str:
    extra = []
    if args.yaml_file:
        extra += ["--config", args.yaml_file]
    if args.preset:
        extra += ["--preset", args.preset]
    launch = ["glt"] if args.nproc_per_node == 1 else ["torchrun", f"--nproc_per_node={args.nproc_per_node}", "-m", "glt"]
    return shlex.join([*launch, "run", "--benchmark", args.benchmark, "--method", method, "--seed", str(seed),
                       "--out", out, "--resume", *extra, *args.overrides, *drawn])


def search_commands(args, settings) -> list[str]:
    """One `glt run` command per (trial, seed) of a --search random sweep: the trial's draw as overrides."""
    from pathlib import Path

    from glt.sweeps.plan import plan_trials

    out = []
    for rec in plan_trials(Path(args.out), settings.methods, settings.record_settings(), "random", args.trials):
        drawn = rec.overrides[len(rec.user_overrides):]
        out += [_command(args, rec.method, s, str(Path(args.out) / rec.runs[str(s)]), drawn) for s in rec.seeds]
    return out


def _launch_options(args):
    from glt.sweeps.launchers import LaunchOptions

    for name in ("jobs", "nproc_per_node", "time", "array_parallelism"):
        if getattr(args, name) < 1:
            raise GLTError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    if args.gpus_per_job < 0:
        raise GLTError(f"--gpus-per-job must be at least 0, not {args.gpus_per_job}")
    return LaunchOptions(jobs=args.jobs, nproc_per_node=args.nproc_per_node, partition=args.partition,
                         time_min=args.time, gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
                         mem_gb=args.mem_gb, array_parallelism=args.array_parallelism, wait=args.wait,
                         slurm_extra=tuple(args.slurm_option))


def run(args) -> int:
    from pathlib import Path

    from glt.cli.common import check_out_folder, parse_names, parse_seeds

    if args.status:
        from glt.sweeps.status import status_text

        print(status_text(args.status))
        return 0
    for name in ("benchmark", "methods", "out"):
        if not getattr(args, name):
            raise GLTError(f"--{name} is required (or --status DIR)")
    from glt.experiment import check_sweep_settings
    from glt.sweeps.runner import SweepSettings, run_sweep, summary_line

    methods, seeds = parse_names(args.methods), parse_seeds(args.seeds)
    opts = _launch_options(args)
    if args.search != "none" and args.trials < 1:
        raise GLTError(f"--trials must be at least 1, not {args.trials}")
    # every method, seed and setting, also for --dry-run: the printed commands must run
    check_sweep_settings(args.benchmark, methods, seeds, overrides=args.overrides, yaml_file=args.yaml_file,
                         preset=args.preset)
    settings = SweepSettings(args.benchmark, methods, seeds, Path(args.out), list(args.overrides), args.yaml_file,
                             args.preset, args.search, args.trials, args.search_seed)
    if args.dry_run:
        if args.search == "optuna":
            raise GLTError("--dry-run cannot print an Optuna search (Optuna picks each trial from the ones before)")
        print("\n".join(commands(args, methods, seeds) if args.search == "none" else search_commands(args, settings)))
        return 0
    check_out_folder(args.out)
    counts = run_sweep(settings, args.launcher, opts, storage=args.storage, objective=args.objective,
                       study=args.study)
    if args.launcher == "slurm" and not args.wait:
        return 0
    report(args, settings)
    print(summary_line(counts))
    if counts.get("failed"):
        print(f"{counts['failed']} trial(s) failed: `glt sweep --status {args.out}` names them and their errors")
        return 1
    return 0


def report(args, settings) -> None:
    """The sweep's report: the protocol table of its runs (--search none) or the selection tables."""
    from glt.experiment import collect_results

    try:
        runs = collect_results([settings.out])
    except GLTError:  # nothing finished: no table
        return
    if settings.search == "none":
        from glt.report.write import write_report

        print(write_report(runs, args.out, args.title))
        print(f"\nreport written to {args.out}/results.md")
        return
    from glt.report.select import RULE_ORDER, load_records
    from glt.report.write import write_selection_report

    text = write_selection_report(load_records(runs), settings.out, list(RULE_ORDER), args.title)
    print(text.split("\n\n## ")[0])  # the default rule's table; every rule's in selection.md
    print(f"\nselection by every rule written to {args.out}/selection.md, selection.json")
