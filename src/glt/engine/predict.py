"""Prediction over a dataset and writing / reading prediction files (CSV: id,prediction)."""

from __future__ import annotations

import contextlib
import csv
import os

import numpy as np
import torch
from tqdm.auto import tqdm

from glt.data import make_loader
from glt.io import atomic_path
from glt.runtime import distributed as dist


@torch.no_grad()
def predict(method, model, dataset, batch_size: int, inputs, num_workers: int = 0, progress: bool = False, desc="",
            autocast=contextlib.nullcontext):
    """Arg-max predictions of `method.predict_logits` for every row of `dataset`, in row order.
    `inputs` moves a batch of images to the model's device. In a multi-process run each rank predicts
    every world_size-th row and the predictions are gathered, so every rank returns all of them."""
    model.eval()
    rows = dist.shard(len(dataset))
    loader = make_loader(dataset, batch_size, sampler=rows.tolist(), num_workers=num_workers)
    found_index, found_pred = [], []
    for images, _, index in tqdm(loader, desc=desc, leave=False, disable=not progress):
        with autocast():
            logits = method.predict_logits(model, inputs(images))
        found_index.append(torch.as_tensor(index))
        found_pred.append(logits.argmax(1).cpu())
    index = torch.cat(found_index) if found_index else torch.zeros(0, dtype=torch.long)
    pred = torch.cat(found_pred) if found_pred else torch.zeros(0, dtype=torch.long)
    both = dist.all_gather_rows(torch.stack([index.long(), pred.long()], 1))
    preds = np.full(len(dataset), -1, dtype=np.int64)
    preds[both[:, 0].numpy()] = both[:, 1].numpy()
    return preds


def write_predictions(path: str | os.PathLike, ids: np.ndarray, predictions: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "prediction"])
            w.writerows(zip(ids.tolist(), predictions.tolist()))
