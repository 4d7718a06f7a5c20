"""What every key of the evaluation's result means (printed by `glt score`; docs/metrics.md says more), and the
order in which `glt score` prints them: the headline numbers first, then the breakdowns."""

from __future__ import annotations

METRIC_DEFINITIONS: dict[str, str] = {
    "source": "docs/metrics.md; original: KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch",
    "accuracy": "correct predictions / samples (top-1; the original's 'Recall/AC', utils/general_utils.py: "
                "calculate_recall)",
    "precision": "mean over the classes present in the labels of TP_c / P_c, P_c = predictions of class c "
                 "in the split; a class never predicted counts 0 (utils/general_utils.py: calculate_precision)",
    "f1": "2 * accuracy * precision / (accuracy + precision); 0 when both are 0 (the original divides by zero)",
    "worst_class_accuracy": "lowest per_class accuracy (recall) over the classes present in the split (glt; not "
                            "in the original)",
    "worst_attribute_accuracy": "lowest accuracy over the non-empty attribute groups (glt; not in the original)",
    "worst_group_accuracy": "lowest accuracy over the class x attribute groups with at least one sample; the "
                            "attribute is the split table's 'attribute' column (on multilabel benchmarks such as "
                            "MSCOCO-GLT the attribute group of the sample, not its binary vector) (glt; "
                            "SubpopBench's worst-group accuracy)",
    "top5_accuracy": "scores only: fraction of samples whose label is among the k = min(5, num_classes) highest "
                     "scores (ties ranked by class index, as the arg-max prediction)",
    "expected_calibration_error": "scores only: sum over 15 equal-width bins (b/15, (b+1)/15] of the confidence "
                                  "(the largest softmax probability; logits are softmaxed first) of "
                                  "(bin samples / samples) * |accuracy in bin - mean confidence in bin|",
    "num_samples": "samples in the split or group",
    "num_groups": "class x attribute groups with at least one sample (those worst_group_accuracy is taken over)",
    "score_kind": "scores only: 'logits' or 'probs', as given by --scores or detected (probabilities when every "
                  "entry lies in [0, 1]; their rows must sum to 1 within 1e-3)",
    "top_k": "scores only: the k of top5_accuracy, min(5, num_classes)",
    "by_frequency": "per frequency group of the class (many/medium/few): accuracy over the group's samples; "
                    "precision sums TP_c / P_c over the group's samples with P_c counted over the WHOLE split "
                    "and divides by the classes present in the group (test_baseline.py: print_score, "
                    "premask=False)",
    "by_attribute": "per attribute value (or attribute group): accuracy over the group's samples; precision "
                    "with P_c counted INSIDE the group, divided by the classes present in the group "
                    "(test_baseline.py: print_score, premask=True); f1 from these two",
    "by_attribute.precision_split_counts": "glt's second number: the group's precision with P_c counted over "
                                           "the WHOLE split, as by_frequency does (not in the original)",
    "per_class": "count (samples per class), accuracy (recall of the class; null if absent), precision "
                 "(TP_c / P_c over the split; 0 if never predicted) (glt; not in the original)",
    "per_class_attribute": "count and accuracy of every class x attribute group, lists indexed [class][attribute] "
                           "(accuracy null for an empty group) (glt; not in the original)",
    "per_attribute_accuracy": "multilabel benchmarks: accuracy over the samples having each binary attribute "
                              "(glt; not in the original)",
    "per_attribute_count": "multilabel benchmarks: samples having each binary attribute",
    "empty groups": "a group without samples has num_samples 0 and null metrics (the original skips it)",
}

# the order of the printed result; keys not listed follow in their own order
KEY_ORDER: tuple[str, ...] = (
    "accuracy", "precision", "f1", "worst_class_accuracy", "worst_attribute_accuracy", "worst_group_accuracy",
    "top5_accuracy", "expected_calibration_error", "num_samples", "num_groups", "score_kind", "top_k",
    "by_frequency", "by_attribute", "per_class", "per_class_attribute", "per_attribute_accuracy",
    "per_attribute_count",
)


def ordered(metrics: dict) -> dict:
    """`metrics` with the keys in KEY_ORDER first (the headline numbers), the rest after them."""
    first = {k: metrics[k] for k in KEY_ORDER if k in metrics}
    return {**first, **{k: v for k, v in metrics.items() if k not in first}}
