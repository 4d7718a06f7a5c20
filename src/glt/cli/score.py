"""`glt score`: score predictions made by any model (CSV id,prediction) on a benchmark split.
Imports neither torch nor the training code: scoring works where only numpy / pandas / pyarrow exist."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="score a predictions CSV (id,prediction) on a split",
        description="Score predictions made by any model. FILE is a CSV with the columns id,prediction, one row per "
        "sample of the split (ids as in the split table; for an imported benchmark, the key in the original "
        "annotation file). Prints the metrics as JSON: accuracy, precision, f1, the breakdowns by_frequency and "
        "by_attribute, worst_attribute_accuracy, per_class, and 'definitions', which says how each number is "
        "computed (by_frequency precision counts a class's predictions over the whole split, by_attribute "
        "precision inside the attribute group, as the original code does; by_attribute also gives "
        "precision_split_counts). Empty groups are null. See docs/metrics.md.",
    )
    p.add_argument("--benchmark", required=True, help="benchmark directory")
    p.add_argument("--split", required=True, help="TRACK/SPLIT, e.g. glt/test_gbl")
    p.add_argument("--predictions", required=True, metavar="FILE")
    p.add_argument("--out", help="also write the JSON to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.evaluation.metrics import METRIC_DEFINITIONS
    from glt.evaluation.score import score_predictions
    from glt.io import strict_json, write_json

    metrics = score_predictions(args.benchmark, args.split, args.predictions)
    out = strict_json({**metrics, "definitions": METRIC_DEFINITIONS})
    if args.out:
        write_json(args.out, out)
    print(json.dumps(out, indent=2, allow_nan=False))
    return 0
