"""The per-epoch records of a training: metrics.jsonl, and TensorBoard when asked."""

from __future__ import annotations

from glt.runtime.run_dir import RunDir


class MetricsLog:
    """metrics.jsonl, and TensorBoard when `tensorboard=true` (rank 0 only)."""

    def __init__(self, run: RunDir, cfg):
        self.run = run
        self.tb = None
        if cfg.tensorboard:
            from glt.runtime.tensorboard import TensorBoardLogger

            self.tb = TensorBoardLogger(run.root)

    def log(self, record: dict) -> None:
        self.run.log(record)
        if self.tb is not None:
            self.tb.log(record)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
