"""`glt run`: train a method on Train-GLT and Train-CBL and report the CLT / GLT / ALT protocols."""

from __future__ import annotations

from glt.cli.common import add_config_args, add_out_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run", help="train on both tracks and report CLT / GLT / ALT",
        description="Train METHOD on glt/train and cbl/train (into OUT/glt and OUT/cbl) and write the three "
        "protocols (CLT: glt/test_cbl, GLT: glt/test_gbl, ALT: cbl/test_gbl) to OUT/protocols.json.",
    )
    p.add_argument("--benchmark", required=True, help="benchmark directory")
    p.add_argument("--method", required=True, help="method name (see `glt methods`)")
    p.add_argument("--seed", type=int, default=0)
    add_out_args(p)
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.cli.common import check_out_folder
    from glt.experiment import run_protocols
    from glt.report.tables import protocol_table

    check_out_folder(args.out)
    res = run_protocols(args.benchmark, args.method, args.out, seed=args.seed, overrides=args.overrides,
                        yaml_file=args.yaml_file, preset=args.preset, resume=args.resume, overwrite=args.overwrite)
    print(protocol_table([(args.out, res)]))
    return 0
