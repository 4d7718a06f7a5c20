"""Metrics (SPEC 3) and the three GLT protocols."""

from glt.evaluation.metrics import evaluate, group_metrics, grouped_metrics
from glt.evaluation.protocols import PROTOCOLS

__all__ = ["PROTOCOLS", "evaluate", "group_metrics", "grouped_metrics"]
