"""Metrics (definitions: docs/metrics.md) and the three GLT protocols. Imports no torch."""

from glt.evaluation.metrics import METRIC_DEFINITIONS, evaluate, group_metrics, group_predictions, grouped_metrics
from glt.evaluation.protocols import PROTOCOLS

__all__ = ["METRIC_DEFINITIONS", "PROTOCOLS", "evaluate", "group_metrics", "group_predictions", "grouped_metrics"]
