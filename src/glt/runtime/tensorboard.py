"""TensorBoard event files from a run's metrics.jsonl records (optional dependency: tensorboard): the
logger the training loop writes through, and the record -> tag rules `glt report --tensorboard` replays with.

One scalar per numeric value of a record, nested dicts / lists flattened into the tag:

    train_loss -> loss/train          train_accuracy -> accuracy/train   val_accuracy -> accuracy/val
    val_precision -> precision/val    lr -> lr                           seconds -> time/epoch_seconds
    train_seconds -> time/train_seconds   stage_index / epoch -> progress/stage_index, progress/epoch
    center_loss -> loss/center        <method>_<name> -> <method>/<name>  (ifl_alpha -> ifl/alpha)
    ifl_environments {"epoch", "environments": [{effective_size, class_imbalance, attribute_share: [..]}]}
        -> ifl/env0/effective_size, ifl/env0/class_imbalance, ifl/env0/attribute_share/0, ...

The step is an epoch counter running across stages (a decoupling method's second stage continues
after the first), so every curve reads left to right in training order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from glt.errors import GLTError
from glt.runtime.layout import METRICS
from glt.runtime.layout import TENSORBOARD as LOG_DIR  # <run>/tensorboard

# the training loop's own keys; the rest is split at the first underscore into method/name
TAGS = {
    "train_loss": "loss/train",
    "center_loss": "loss/center",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/val",
    "val_precision": "precision/val",
    "val_worst_attribute_accuracy": "worst_attribute_accuracy/val",
    "val_worst_class_accuracy": "worst_class_accuracy/val",
    "lr": "lr",
    "seconds": "time/epoch_seconds",
    "train_seconds": "time/train_seconds",
    "stage_index": "progress/stage_index",
    "epoch": "progress/epoch",
}


def tag_of(key: str) -> str:
    """The TensorBoard tag of a top-level record key."""
    if key in TAGS:
        return TAGS[key]
    group, _, name = key.partition("_")
    return f"{group}/{name}" if name else key


def _flatten(tag: str, value) -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{tag}/{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _flatten(f"{tag}/{i}", v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield tag, float(value)
    # strings (the stage name), booleans and nulls are not scalars


def record_scalars(record: dict) -> dict[str, float]:
    """{tag: value} of one metrics.jsonl record."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if key == "ifl_environments" and isinstance(value, dict):
            # the rebuild's own "epoch" is the record's epoch: only the environments are logged
            for i, env in enumerate(value.get("environments", [])):
                out.update(_flatten(f"ifl/env{i}", env))
        else:
            out.update(_flatten(tag_of(key), value))
    return out


def summary_writer_class():
    """torch's SummaryWriter, or a GLTError saying how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard raises ImportError without the tensorboard package
        raise GLTError("TensorBoard logging needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter


class TensorBoardLogger:
    """Writes metrics.jsonl records as TensorBoard scalars into `<run_root>/tensorboard` (or `log_dir`).

    Call `.log(record)` after each epoch and `.close()` at the end. The global step is the epoch counter
    across stages: stage s starts after the epochs of stages 0..s-1. A resumed run's earlier stages are
    read from its metrics.jsonl, and events at or after the first resumed step are purged, so a resumed
    run's curves carry no duplicates."""

    def __init__(self, run_root: str | os.PathLike, log_dir: str | os.PathLike | None = None):
        self._writer_cls = summary_writer_class()  # fails here, not after the first epoch, without tensorboard
        self.run_root = Path(run_root)
        self.log_dir = Path(log_dir) if log_dir is not None else self.run_root / LOG_DIR
        self._writer = None
        self._stage_epochs: dict[int, int] = {}  # stage index -> epochs seen (last epoch + 1)
        for rec in read_records(self.run_root / METRICS, missing_ok=True):
            self._see(rec)

    def _see(self, record: dict) -> None:
        s, e = int(record.get("stage_index", 0)), int(record.get("epoch", 0))
        self._stage_epochs[s] = max(self._stage_epochs.get(s, 0), e + 1)

    def step(self, record: dict) -> int:
        """The global step of a record: its epoch plus the epochs of all earlier stages."""
        s = int(record.get("stage_index", 0))
        return sum(n for i, n in self._stage_epochs.items() if i < s) + int(record.get("epoch", 0))

    def log(self, record: dict, walltime: float | None = None) -> int:
        """Write one scalar per numeric value of `record`; returns the step used."""
        self._see(record)
        step = self.step(record)
        if self._writer is None:
            self._writer = self._writer_cls(str(self.log_dir), purge_step=step)
        for tag, value in record_scalars(record).items():
            self._writer.add_scalar(tag, value, step, walltime=walltime)
        self._writer.flush()  # one record per epoch: visible at once, and nothing lost if the run is killed
        return step

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path: Path, missing_ok: bool = False) -> list[dict]:
    if not path.is_file():
        if missing_ok:
            return []
        raise GLTError(f"no {METRICS} in run folder {path.parent}")
    records = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise GLTError(f"malformed {path} line {i}: {e}") from None
        if not isinstance(rec, dict):
            raise GLTError(f"malformed {path} line {i}: not a JSON object")
        records.append(rec)
    return records
