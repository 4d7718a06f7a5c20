"""`glt score`: score predictions made by any model (CSV id,prediction) on a benchmark split."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="score a predictions CSV (id,prediction) on a split",
        description="Score predictions made by any model. FILE is a CSV with the columns id,prediction, one row per "
        "sample of the split (ids as in the split table; for an imported benchmark, the key in the original "
        "annotation file). Prints the metrics as JSON: accuracy, precision, f1 and the breakdowns.",
    )
    p.add_argument("--benchmark", required=True, help="benchmark directory")
    p.add_argument("--split", required=True, help="TRACK/SPLIT, e.g. glt/test_gbl")
    p.add_argument("--predictions", required=True, metavar="FILE")
    p.add_argument("--out", help="also write the JSON to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.evaluation.score import score_predictions
    from glt.io import write_json

    metrics = score_predictions(args.benchmark, args.split, args.predictions)
    if args.out:
        write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))
    return 0
