"""`glt train`: train one method on one track (train / val of the track), then score its test splits."""

from __future__ import annotations

import json

from glt.cli.common import add_config_args, add_out_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train one method on one track's training set",
        description="Train on TRACK/train, keep the epoch with the best TRACK/val accuracy, and score it on the "
        "track's test splits. Writes config.yaml, metrics.jsonl, checkpoints/, predictions/ and eval.json into --out.",
    )
    p.add_argument("--benchmark", help="benchmark directory (or data.benchmark=DIR)")
    p.add_argument("--method", help="method name, e.g. ce, blsoftmax, logit_adj (see `glt methods`)")
    p.add_argument("--track", choices=["glt", "cbl"], help="training track (default glt)")
    p.add_argument("--seed", type=int)
    add_out_args(p)
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.cli.common import check_out_folder, train_config
    from glt.experiment import train_run

    check_out_folder(args.out)
    cfg = train_config(args)
    results = train_run(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    print(json.dumps({s: {k: m[k] for k in ("accuracy", "precision", "f1")} for s, m in results.items()}, indent=2))
    return 0
