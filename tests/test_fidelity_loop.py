"""The training loop's part of the paper recipe (docs/fidelity.md): which epochs the evaluated checkpoint may
come from, the head bias, the normalisation and the class-count order handed to the methods. Each is compared
with a reference written from the original's code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import fast_overrides, make_tiny_benchmark
from glt.config import build_config
from glt.data.dataset import read_image
from glt.engine import trainer
from glt.engine.trainer import Setup, train


def _original_selection(val_accuracies: list[float], checkpoint_step: int) -> int:
    """utils/checkpoint_utils.py Checkpoint.save: only epochs with epoch % checkpoint_step == 0 and the last are
    saved; among them the first strictly better validation accuracy becomes the best."""
    num_epochs = len(val_accuracies)
    best_epoch, best = -1, -1.0
    for epoch, acc in enumerate(val_accuracies):
        if epoch % checkpoint_step != 0 and epoch < num_epochs - 1:
            continue
        if acc > best:
            best_epoch, best = epoch, acc
    return best_epoch


@pytest.mark.parametrize("every", [1, 3])
def test_evaluated_epoch_is_selected_among_the_original_checkpoint_epochs(every, tiny_benchmark, tmp_path,
                                                                          monkeypatch):
    # scripted validation accuracies, so the rule decides: the best epoch overall (1) is not a checkpoint epoch
    # of every=3 (0, 3 and the last, 4)
    script = [0.1, 0.9, 0.5, 0.3, 0.2]
    real = trainer.evaluate_split
    calls = []

    def scripted(setup, split, ds=None, progress=False):
        preds, metrics = real(setup, split, ds, progress)
        if split.endswith("/val"):
            metrics = {**metrics, "accuracy": script[len(calls)]}
            calls.append(split)
        return preds, metrics

    monkeypatch.setattr(trainer, "evaluate_split", scripted)
    cfg = build_config(method="ce", benchmark=str(tiny_benchmark),
                       overrides=[*fast_overrides(len(script)), f"select_every={every}"])
    train(cfg, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_accuracy"] for r in records] == script
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == _original_selection(script, every) == (1 if every == 1 else 3)


def test_linear_heads_have_no_bias_unless_asked(tiny_benchmark):
    for method in ("ce", "crt", "lws", "bbn", "ifl"):
        plain = Setup(build_config(method=method, benchmark=str(tiny_benchmark), overrides=fast_overrides(1)))
        assert plain.model.head.bias is None, method
        biased = Setup(build_config(method=method, benchmark=str(tiny_benchmark),
                                    overrides=[*fast_overrides(1), "model.head_bias=true"]))
        assert biased.model.head.bias is not None, method
        extra = sum(p.numel() for p in biased.model.parameters()) - sum(p.numel() for p in plain.model.parameters())
        assert extra == biased.model.head.weight.shape[0]  # exactly one bias per class


@pytest.mark.parametrize("in_memory", [True, False])
def test_normalisation_settings_reach_the_transforms(in_memory, tiny_benchmark):
    """data.mean / data.std normalise what the model sees (the original: Normalize(rgb_mean, rgb_std) of the
    dataset config), in the in-memory batch path and in the per-image path."""
    mean, std = [0.25, 0.5, 0.75], [0.5, 0.25, 0.125]
    cfg = build_config(method="ce", benchmark=str(tiny_benchmark),
                       overrides=[*fast_overrides(1), f"data.mean={mean}", f"data.std={std}",
                                  f"data.cache_images={str(in_memory).lower()}"])
    ds = Setup(cfg).dataset("glt/val", train=False)
    rows = list(range(4))
    got = ds.__getitems__(rows)[0] if ds.batched else torch.stack([ds[i][0] for i in rows])
    # the tiny benchmark's images are already at the model's size: the test transform only normalises
    raw = torch.stack([read_image(ds._paths[i]) for i in rows]).float() / 255
    want = (raw - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def twelve_classes(tmp_path_factory):
    return make_tiny_benchmark(tmp_path_factory.mktemp("bench12") / "tiny12", num_classes=12)


def test_prior_order_reaches_the_methods(twelve_classes):
    """With more than 10 classes the original's count_dataset orders the counts as the class ids sort as text
    (0, 1, 10, 11, 2, ...): entry 2 holds class 10's count. Only the methods that read count_dataset get it."""
    over = [*fast_overrides(1), "data.prior_order=original_text_sort"]
    text_order = [0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9]
    for method, buggy in (("blsoftmax", True), ("ldam", True), ("logit_adj", False), ("ce", False)):
        setup = Setup(build_config(method=method, benchmark=str(twelve_classes), overrides=over))
        counts = np.asarray(setup.ctx.label_counts)
        assert len(set(counts.tolist())) > 4  # the profile tells classes apart
        want = counts[text_order] if buggy else counts
        np.testing.assert_array_equal(setup.ctx.class_counts, want, err_msg=method)
    right = Setup(build_config(method="blsoftmax", benchmark=str(twelve_classes), overrides=fast_overrides(1)))
    np.testing.assert_array_equal(right.ctx.class_counts, right.ctx.label_counts)



@pytest.mark.parametrize("drop_last", [True, False])
def test_last_smaller_batch_is_trained_only_if_asked(drop_last, tiny_benchmark, tmp_path, monkeypatch):
    """The original's DataLoader keeps drop_last=False: ceil(N / B) steps an epoch; glt's default drops it."""
    loaders = []
    real = trainer.make_loader

    def recording(*args, **kwargs):
        loaders.append(real(*args, **kwargs))
        return loaders[-1]

    monkeypatch.setattr(trainer, "make_loader", recording)
    cfg = build_config(method="ce", benchmark=str(tiny_benchmark),
                       overrides=[*fast_overrides(1), f"data.drop_last={str(drop_last).lower()}"])
    train(cfg, tmp_path / "run")
    n, b = len(Setup(cfg).bench.split("glt/train")), cfg.data.batch_size
    assert n % b  # the tiny benchmark's split leaves a smaller last batch
    steps = sum(1 for _ in loaders[0])
    assert steps == (n // b if drop_last else -(-n // b))
