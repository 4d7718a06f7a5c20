"""The folders glt writes: one meaning per file name, old `glt run` folders (results.json) still read,
and the per-epoch records that model selection reads (metrics.jsonl)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import fast_overrides
from glt.cli.main import main
from glt.config import build_config
from glt.engine.trainer import Setup, train
from glt.evaluation import evaluate
from glt.experiment import collect_results
from glt.runtime import layout
from glt.runtime.checkpoint import load_checkpoint


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


def test_each_file_name_has_one_meaning():
    training = [layout.CONFIG, layout.METRICS, layout.LAST, layout.BEST, layout.EVAL, layout.LOCK]
    report = [layout.REPORT_JSON, layout.REPORT_MD, layout.REPORT_CSV, layout.REPORT_TEX]
    names = [*training, layout.PROTOCOLS, *report]
    assert len(set(names)) == len(names)
    assert layout.PROTOCOLS not in layout.REPORT_LAYOUT and layout.REPORT_JSON not in layout.RUN_LAYOUT
    # a `glt run` folder may hold an older glt's results.json: --overwrite counts it as glt's
    assert layout.OLD_PROTOCOLS in layout.PROTOCOL_LAYOUT


@pytest.fixture(scope="module")
def old_run(tiny_benchmark, tmp_path_factory):
    """A `glt run` folder as glt wrote it before protocols.json: the protocols in results.json."""
    out = tmp_path_factory.mktemp("old") / "run"
    assert cli("run", "--benchmark", tiny_benchmark, "--method", "ce", "--out", out, *fast_overrides(1)) == 0
    (out / layout.PROTOCOLS).rename(out / layout.OLD_PROTOCOLS)
    return out


def test_old_run_folder_is_reported(old_run, tmp_path):
    saved = json.loads((old_run / layout.OLD_PROTOCOLS).read_text())
    runs = collect_results([old_run])
    assert [(folder, r["CLT"]["accuracy"]) for folder, r in runs] == [(old_run, saved["CLT"]["accuracy"])]
    rep = tmp_path / "report"
    assert cli("report", old_run, "--out", rep) == 0
    summary = json.loads((rep / layout.REPORT_JSON).read_text())
    assert summary["ce"]["GLT"]["accuracy"]["mean"] == pytest.approx(saved["GLT"]["accuracy"])
    # a report written into the runs' folder (a sweep's results.json) is not taken for a run
    sweep = tmp_path / "sweep"
    shutil.copytree(old_run, sweep / "runs" / "ce" / "seed0")
    shutil.copy(rep / layout.REPORT_JSON, sweep / layout.REPORT_JSON)
    assert [f for f, _ in collect_results([sweep])] == [sweep / "runs" / "ce" / "seed0"]


def test_old_run_folder_is_evaluated_and_resumed(old_run, tiny_benchmark, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(old_run, folder)
    saved = json.loads((folder / layout.OLD_PROTOCOLS).read_text())
    assert cli("eval", folder) == 0
    rewritten = json.loads((folder / layout.PROTOCOLS).read_text())
    for p in ("CLT", "GLT", "ALT"):
        assert rewritten[p]["accuracy"] == saved[p]["accuracy"]
    assert rewritten["train_class_counts"] == saved["train_class_counts"]  # kept from the old file
    assert not (folder / layout.OLD_PROTOCOLS).exists()  # replaced: one protocols file per folder
    assert len(collect_results([folder])) == 1
    again = tmp_path / "again"
    shutil.copytree(old_run, again)
    assert cli("run", "--benchmark", tiny_benchmark, "--method", "ce", "--out", again, "--resume",
               *fast_overrides(1)) == 0  # complete: nothing trained again
    assert json.loads((again / layout.PROTOCOLS).read_text())["GLT"] == saved["GLT"]
    assert not (again / layout.OLD_PROTOCOLS).exists()
    (again / layout.PROTOCOLS).rename(again / layout.OLD_PROTOCOLS)
    assert cli("run", "--benchmark", tiny_benchmark, "--method", "ce", "--out", again, "--overwrite",
               *fast_overrides(1)) == 0  # the old file is glt's: --overwrite accepts the folder
    assert not (again / layout.OLD_PROTOCOLS).exists() and (again / layout.PROTOCOLS).is_file()


# ---- per-epoch records ------------------------------------------------------------------------------------


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / layout.METRICS).read_text().splitlines()]


@torch.no_grad()
def _reference(setup: Setup, split: str) -> dict[str, float]:
    """Headlines of `split` from a plain forward pass and numpy: accuracy, worst attribute / class accuracy
    (lowest mean over the groups present), and precision as glt.evaluation computes it from these predictions."""
    setup.model.eval()
    ds = setup.dataset(split, train=False)
    rows = list(range(len(ds)))
    images = ds.__getitems__(rows)[0] if ds.batched else torch.stack([ds[i][0] for i in rows])
    pred = setup.method.predict_logits(setup.model, setup.inputs(images)).argmax(1).numpy()
    t = ds.table
    correct = pred == t.label
    m = setup.bench.manifest
    return {
        "accuracy": correct.mean(),
        "worst_attribute_accuracy": min(correct[t.attribute == a].mean() for a in np.unique(t.attribute)),
        "worst_class_accuracy": min(correct[t.label == c].mean() for c in np.unique(t.label)),
        "precision": evaluate(t.label, pred, m.num_classes, t.frequency, t.attribute, m.num_attributes)["precision"],
    }


def test_epoch_records_hold_the_validation_and_test_headlines(tiny_benchmark, tmp_path):
    over = [*fast_overrides(2), "select_every=1", "deterministic=true"]
    plain = build_config(method="ce", benchmark=str(tiny_benchmark), overrides=over)
    logged = build_config(method="ce", benchmark=str(tiny_benchmark), overrides=[*over, "log_test_metrics=true"])
    train(plain, tmp_path / "plain")
    train(logged, tmp_path / "logged")
    a, b = _records(tmp_path / "plain"), _records(tmp_path / "logged")
    assert all("test" not in r for r in a)
    timing = ("seconds", "train_seconds", "test")
    # scoring the test splits every epoch changes nothing of the training
    assert [{k: v for k, v in r.items() if k not in timing} for r in a] == \
           [{k: v for k, v in r.items() if k not in timing} for r in b]
    wa = load_checkpoint(tmp_path / "plain" / layout.LAST)["model"]
    wb = load_checkpoint(tmp_path / "logged" / layout.LAST)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    setup = Setup(logged)
    setup.load_weights(load_checkpoint(tmp_path / "logged" / layout.LAST))  # the last epoch's weights
    last = b[-1]
    val = _reference(setup, "glt/val")
    for k in ("accuracy", "precision", "worst_attribute_accuracy", "worst_class_accuracy"):
        assert last[f"val_{k}"] == pytest.approx(val[k], abs=1e-12), k
    assert sorted(last["test"]) == sorted(setup.test_splits()) == ["glt/test_cbl", "glt/test_gbl", "glt/test_glt"]
    for split, got in last["test"].items():
        want = _reference(setup, split)
        assert set(got) == set(want)
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-12), (split, k)
