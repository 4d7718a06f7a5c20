"""A run's output folder:

    config.yaml        the resolved config
    metrics.jsonl      one JSON line per epoch
    checkpoints/       last.pt (resume), best.pt (best validation accuracy)
    predictions/       <split>.csv  (id,prediction) for each test split of the track
    eval.json          metrics of each test split; its presence marks the run complete
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from glt.errors import GLTError
from glt.io import write_text


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    config = property(lambda self: self.root / "config.yaml")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")
    eval = property(lambda self: self.root / "eval.json")

    def predictions(self, split: str) -> Path:
        return self.root / "predictions" / (split.replace("/", "__") + ".csv")

    @property
    def complete(self) -> bool:
        return self.eval.is_file()

    def load_config(self):
        if not self.config.is_file():
            raise GLTError(f"{self.root} is not a run folder (no config.yaml)")
        try:
            return OmegaConf.load(self.config)
        except Exception as e:
            raise GLTError(f"malformed run config {self.config}: {str(e).splitlines()[0]}") from None

    def prepare(self, cfg, resume: bool, overwrite: bool) -> str:
        """Claim the folder for `cfg`. Returns 'new', 'resume' or 'complete'."""
        text = OmegaConf.to_yaml(cfg)
        if self.root.exists() and any(self.root.iterdir()):
            if overwrite:
                shutil.rmtree(self.root)
            elif not self.config.is_file():
                raise GLTError(f"output folder {self.root} is not empty and holds no run (use --overwrite)")
            elif self.config.read_text() != text:
                raise GLTError(
                    f"output folder {self.root} holds a different run (its config.yaml differs); "
                    "use another --out, or --overwrite"
                )
            elif self.complete:
                return "complete"
            elif resume and self.last.is_file():
                return "resume"
            elif resume:
                shutil.rmtree(self.root)
            else:
                raise GLTError(f"output folder {self.root} holds an unfinished run: use --resume to continue it, or --overwrite")
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(self.config, text)
        return "new"

    def log(self, record: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_log(self, stage: int, epoch: int) -> None:
        """On resume, drop lines logged after the checkpoint (an epoch killed after its line was written)."""
        if not self.metrics.is_file():
            return
        keep = []
        for line in self.metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: its epoch is trained again
                continue
            if (rec["stage_index"], rec["epoch"]) < (stage, epoch):
                keep.append(line)
        write_text(self.metrics, "".join(k + "\n" for k in keep))
