"""`glt score`: score what any model predicted on a benchmark split: classes (CSV id,prediction) or scores
(.npy N x C, or CSV id,0,...,C-1). Imports neither torch nor the training code: scoring works where only
numpy / pandas / pyarrow exist."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="score predictions (CSV id,prediction) or class scores (.npy / CSV) on a split",
        description="Score predictions made by any model. FILE is either a CSV with the columns id,prediction "
        "(the predicted class of every sample of the split; ids as in the split table, for an imported benchmark "
        "the key in the original annotation file), or class scores, logits or probabilities: a .npy array of shape "
        "samples x classes with rows in the split's order, or a CSV with the columns id,0,1,...,C-1. Prints the "
        "metrics as JSON, headline numbers first (accuracy, precision, f1, worst_class_accuracy, "
        "worst_attribute_accuracy, worst_group_accuracy over class x attribute groups; with scores also "
        "top5_accuracy, k = min(5, classes), and expected_calibration_error, 15 bins), then the breakdowns "
        "by_frequency, by_attribute, per_class, per_class_attribute, and 'definitions', which says how each number "
        "is computed (by_frequency precision counts a class's predictions over the whole split, by_attribute "
        "precision inside the attribute group, as the original code does). Empty groups are null. See "
        "docs/metrics.md.",
    )
    p.add_argument("--benchmark", required=True, help="benchmark directory")
    p.add_argument("--split", required=True, help="TRACK/SPLIT, e.g. glt/test_gbl")
    p.add_argument("--predictions", required=True, metavar="FILE",
                   help="CSV id,prediction; or scores: .npy (rows in split order) or CSV id,0,...,C-1")
    p.add_argument("--scores", choices=("logits", "probs"), default=None,
                   help="what a scores file holds (default: probabilities when every entry lies in [0, 1], then "
                        "checked to sum to 1 per row within 1e-3; else logits)")
    p.add_argument("--summary", action="store_true", help="print a short aligned table instead of the JSON")
    p.add_argument("--out", help="also write the JSON to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.evaluation.definitions import METRIC_DEFINITIONS
    from glt.evaluation.score import score_predictions
    from glt.evaluation.summary import summary_table
    from glt.io import strict_json, write_json

    metrics = score_predictions(args.benchmark, args.split, args.predictions, getattr(args, "scores", None))
    out = strict_json({**metrics, "definitions": METRIC_DEFINITIONS})
    if args.out:
        write_json(args.out, out)
    if getattr(args, "summary", False):
        print(summary_table(metrics, f"{args.split} of {args.benchmark}: {args.predictions}"), end="")
    else:
        print(json.dumps(out, indent=2, allow_nan=False))
    return 0
