"""Scoring a run's model on a split: the validation and test metrics of an epoch's record, and the final
test of the best checkpoint (predictions + eval.json)."""

from __future__ import annotations

import numpy as np

from glt.data import SplitDataset
from glt.engine.predict import predict, write_predictions
from glt.engine.setup import Setup
from glt.evaluation import SplitMetadata
from glt.evaluation import evaluate_split as evaluate_split_metadata
from glt.io import write_json
from glt.runtime import distributed as dist
from glt.runtime.checkpoint import load_checkpoint
from glt.runtime.run_dir import RunDir

# the scalar headlines of a split's evaluation that an epoch's record keeps (model selection reads them);
# a key the evaluation does not produce is left out
HEADLINES = ("accuracy", "precision", "worst_attribute_accuracy", "worst_class_accuracy")


def headlines(metrics: dict) -> dict[str, float]:
    return {k: metrics[k] for k in HEADLINES if k in metrics}


def evaluate_split(setup: Setup, split: str, ds: SplitDataset | None = None, progress: bool = False) -> tuple[np.ndarray, dict]:
    cfg = setup.cfg
    ds = ds or setup.dataset(split, train=False)
    preds = predict(setup.method, setup.model, ds, cfg.data.eval_batch_size, setup.inputs, cfg.data.num_workers,
                    progress, split, setup.precision.autocast)
    m = setup.bench.manifest
    meta = SplitMetadata.from_table(ds.table, setup.num_classes, m.num_attributes, m.attribute_names or None)
    return preds, evaluate_split_metadata(meta, preds)


def test_run(setup: Setup, run: RunDir, progress: bool = False) -> dict:
    """Score the best-validation checkpoint on every test split of the track; write predictions + eval.json
    (every rank predicts its share, rank 0 writes)."""
    dist.barrier()  # rank 0 may have just written the checkpoint
    setup.load_weights(load_checkpoint(run.best))
    results = {}
    for split in setup.test_splits():
        preds, metrics = evaluate_split(setup, split, progress=progress)
        if dist.is_main():
            write_predictions(run.predictions(split), setup.bench.split(split).id, preds)
        results[split] = metrics
    if dist.is_main():
        write_json(run.eval, {"method": setup.cfg.method, "seed": setup.cfg.seed, "splits": results})
    dist.barrier()
    return results
