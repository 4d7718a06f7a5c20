"""Prediction over a dataset and writing / reading prediction files (CSV: id,prediction)."""

from __future__ import annotations

import csv
import os

import numpy as np
import torch
from tqdm.auto import tqdm

from glt.data import make_loader
from glt.io import atomic_path


@torch.no_grad()
def predict(method, model, dataset, batch_size: int, device, num_workers: int = 0, progress: bool = False, desc=""):
    """Arg-max predictions of `method.predict_logits` for every row of `dataset`, in row order."""
    model.eval()
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers)
    preds = np.empty(len(dataset), dtype=np.int64)
    for images, _, index in tqdm(loader, desc=desc, leave=False, disable=not progress):
        logits = method.predict_logits(model, images.to(device, non_blocking=True))
        preds[index.numpy()] = logits.argmax(1).cpu().numpy()
    return preds


def write_predictions(path: str | os.PathLike, ids: np.ndarray, predictions: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "prediction"])
            w.writerows(zip(ids.tolist(), predictions.tolist()))
