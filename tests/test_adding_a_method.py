"""docs/adding-a-method.md's worked example is a real method: the block of the doc is run here, registered,
its loss checked against the label-smoothing formula written out, and it and `ifl+<it>` trained for one epoch
on the tiny benchmark through the public API."""

from __future__ import annotations

import json
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import fast_overrides
from glt.config import build_config
from glt.engine.trainer import train
from glt.methods import METHODS, Context, Output, resolve_method

DOC = Path(__file__).resolve().parent.parent / "docs" / "adding-a-method.md"


@pytest.fixture
def example(monkeypatch):
    """The doc's example block, executed: its method registered for this test only."""
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))  # the registry as it was, after the test
    block = re.search(r"<!-- example -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/adding-a-method.md lost its example block"
    module = types.ModuleType("adding_a_method_example")  # a real module: dataclasses look their class up in it
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block.group(1), str(DOC), "exec"), module.__dict__)
    assert "label_smoothing" in METHODS
    return module.LabelSmoothing


def test_example_loss_is_label_smoothing(example):
    counts = np.array([5, 3, 2])
    ctx = Context(3, counts, 1, labels=np.repeat(np.arange(3), counts))
    spec = resolve_method("label_smoothing")
    m = spec.create(spec.settings_cls(eps=0.2), None, ctx)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    got = float(m.loss(Output(logits, torch.zeros(2, 1)), labels))
    want = 0.0
    for z, y in zip(logits.tolist(), labels.tolist()):
        log_p = [v - math.log(sum(math.exp(u) for u in z)) for v in z]
        target = [0.2 / 3 + (0.8 if c == y else 0.0) for c in range(3)]
        want -= sum(t * lp for t, lp in zip(target, log_p)) / 2
    assert got == pytest.approx(want, rel=1e-6)
    assert spec.search_space()["method_args.eps"].high == 0.3  # its own range beside the optimiser's


@pytest.mark.parametrize("name", ["label_smoothing", "ifl+label_smoothing"])
def test_example_trains_one_epoch_alone_and_under_ifl(example, tiny_benchmark, tmp_path, name):
    over = fast_overrides(1) + ["method_args.eps=0.2"]
    if name.startswith("ifl+"):  # the center loss on from the first epoch, environments rebuilt after it
        over += ["wrapper_args.alpha_milestones=[0,0]", "wrapper_args.rebuild_after=[0]"]
    cfg = build_config(method=name, benchmark=str(tiny_benchmark), overrides=over)
    assert cfg.method_args.eps == 0.2
    results = train(cfg, tmp_path / "run")
    assert set(results) == {"glt/test_glt", "glt/test_cbl", "glt/test_gbl"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results.values())
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(math.isfinite(x["train_loss"]) for x in lines)
    if name.startswith("ifl+"):
        assert "center_loss" in lines[-1] and "ifl_environments" in lines[-1]
