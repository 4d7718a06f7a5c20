"""`glt report --tensorboard`: replay the metrics.jsonl of finished runs into TensorBoard event files, with
the training loop's own logger and tag rules (glt.runtime.tensorboard)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from tqdm.auto import tqdm

from glt.errors import GLTError
from glt.io import atomic_dir
from glt.runtime.tensorboard import (
    LOG_DIR,
    METRICS,
    TensorBoardLogger,
    read_records,
    summary_writer_class,
)

__all__ = ["TensorBoardLogger", "export_tensorboard", "export_tensorboard_runs", "run_folders", "summary_writer_class"]


def export_tensorboard(run_dir: str | os.PathLike) -> Path:
    """Replay a run folder's metrics.jsonl into `<run_dir>/tensorboard` (replacing what is there), so
    runs trained without TensorBoard can be viewed. Wall times are rebuilt from the records' epoch
    seconds, ending at the file's modification time. Returns the event folder."""
    run_dir = Path(run_dir)
    records = read_records(run_dir / METRICS)
    summary_writer_class()
    end = (run_dir / METRICS).stat().st_mtime
    seconds = [r.get("seconds") if isinstance(r.get("seconds"), (int, float)) else 0.0 for r in records]
    t = end - math.fsum(seconds)
    with atomic_dir(run_dir / LOG_DIR, overwrite=True) as tmp:
        logger = TensorBoardLogger(run_dir, log_dir=tmp)
        for rec, sec in zip(records, seconds):
            t += sec
            logger.log(rec, walltime=t)
        logger.close()
    return run_dir / LOG_DIR


def run_folders(paths: list[str | os.PathLike]) -> list[Path]:
    """Every run folder (one holding a metrics.jsonl) under the given folders, in sorted order."""
    found = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise GLTError(f"no such run folder: {p}")
        found += [m.parent for m in sorted(p.rglob(METRICS))]
    return list(dict.fromkeys(found))


def export_tensorboard_runs(paths: list[str | os.PathLike], progress: bool = True) -> list[Path]:
    """`export_tensorboard` for every run folder under `paths`; returns their event folders."""
    folders = run_folders(paths)
    if not folders:
        raise GLTError(f"no run folder ({METRICS}) found under {', '.join(map(str, paths))}")
    summary_writer_class()
    return [export_tensorboard(f) for f in tqdm(folders, desc="tensorboard", unit="run", disable=not progress or None)]
