"""The benchmark directory: the contract between building and training.

    DIR/manifest.json                 name, kind, classes, attribute kind, tracks and their splits
    DIR/splits/<track>/<split>.parquet   one table per split: id, path, label, frequency, attribute[, attributes]

Splits are named ``TRACK/SPLIT`` (``glt/train``, ``cbl/test_gbl``...).
"""

from glt.benchmark.manifest import FREQUENCY_GROUPS, KINDS, TRACK_SPLITS, Manifest, parse_split_name
from glt.benchmark.split import SplitTable
from glt.benchmark.directory import Benchmark, write_benchmark

__all__ = [
    "Benchmark",
    "FREQUENCY_GROUPS",
    "KINDS",
    "Manifest",
    "SplitTable",
    "TRACK_SPLITS",
    "parse_split_name",
    "write_benchmark",
]
