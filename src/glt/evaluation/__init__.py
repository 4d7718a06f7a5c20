"""Metrics (definitions: docs/metrics.md), the groupers behind their breakdowns, and the three GLT protocols.
Imports no torch."""

from glt.evaluation.definitions import METRIC_DEFINITIONS
from glt.evaluation.groupers import Grouper
from glt.evaluation.metadata import SplitMetadata
from glt.evaluation.metrics import evaluate, evaluate_split
from glt.evaluation.protocols import PROTOCOLS

__all__ = ["METRIC_DEFINITIONS", "PROTOCOLS", "Grouper", "SplitMetadata", "evaluate", "evaluate_split"]
