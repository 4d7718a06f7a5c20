"""TensorBoard logging: records in, event files read back with tensorboard's own reader."""

from __future__ import annotations

import json
import math
import sys

import pytest

from glt.cli.main import main
from glt.errors import GLTError
from glt.report.tensorboard import TensorBoardLogger, export_tensorboard


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


def _records() -> list[dict]:
    """Records shaped like the training loop's (ifl+crt: a main stage of 3 epochs with an IFL rebuild
    after epoch 1, then a 2-epoch classifier stage), values all distinct."""
    recs = []
    for si, (stage, epochs) in enumerate((("main", 3), ("classifier", 2))):
        for e in range(epochs):
            k = len(recs) + 1
            rec = {
                "stage": stage, "stage_index": si, "epoch": e, "lr": 0.1 / k, "train_loss": 2.0 / k,
                "train_accuracy": 0.1 * k, "val_accuracy": 0.09 * k, "val_precision": 0.08 * k,
                "train_seconds": 1.5 * k, "seconds": 2.0 * k, "center_loss": 0.7 / k,
                "ifl_alpha": 0.001 * e, "ifl_scored_fraction": 1.0 - 0.01 * k,
            }
            if (si, e) == (0, 1):
                rec["ifl_environments"] = {"epoch": 1, "environments": [
                    {"effective_size": 120.5, "class_imbalance": 30.0, "attribute_share": [0.7, 0.2, 0.1]},
                    {"effective_size": 40.25, "class_imbalance": 1.5, "attribute_share": [0.5, 0.3, 0.2]},
                ]}
            recs.append(rec)
    return recs


# the tag each key must land under, written out by hand (the specification the code is checked against)
EXPECTED_TAGS = {
    "stage_index": "progress/stage_index", "epoch": "progress/epoch", "lr": "lr", "train_loss": "loss/train",
    "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/val", "val_precision": "precision/val",
    "train_seconds": "time/train_seconds", "seconds": "time/epoch_seconds", "center_loss": "loss/center",
    "ifl_alpha": "ifl/alpha", "ifl_scored_fraction": "ifl/scored_fraction",
}
STEPS = [0, 1, 2, 3, 4]  # epochs counted across the two stages


def _expected(records, steps) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for rec, step in zip(records, steps):
        for key, tag in EXPECTED_TAGS.items():
            out.setdefault(tag, {})[step] = rec[key]
        for i, env in enumerate(rec.get("ifl_environments", {}).get("environments", [])):
            out.setdefault(f"ifl/env{i}/effective_size", {})[step] = env["effective_size"]
            out.setdefault(f"ifl/env{i}/class_imbalance", {})[step] = env["class_imbalance"]
            for a, share in enumerate(env["attribute_share"]):
                out.setdefault(f"ifl/env{i}/attribute_share/{a}", {})[step] = share
    return out


def _read_events(log_dir) -> dict[str, list[tuple[int, float, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _assert_events_match(events, expected):
    assert set(events) == set(expected)
    for tag, by_step in expected.items():
        got = events[tag]
        assert [s for s, _, _ in got] == sorted(by_step), tag  # one event per step, no duplicates
        for step, value, _ in got:
            assert value == pytest.approx(by_step[step], rel=1e-6, abs=1e-7), (tag, step)  # float32 on disk


def test_logger_writes_every_numeric_value(tmp_path):
    pytest.importorskip("tensorboard")
    records = _records()
    with TensorBoardLogger(tmp_path) as logger:
        steps = [logger.log(r) for r in records]
    assert steps == STEPS
    events = _read_events(tmp_path / "tensorboard")
    _assert_events_match(events, _expected(records, STEPS))
    # every numeric leaf of the input is one event (the rebuild's own epoch repeats the record's)
    leaves = sum(sum(isinstance(v, (int, float)) for v in r.values()) + 2 * (2 + 3) * ("ifl_environments" in r)
                 for r in records)
    assert sum(len(v) for v in events.values()) == leaves


def test_resumed_run_continues_the_step_and_drops_the_lost_epochs(tmp_path):
    """A run killed during stage 1 and resumed from its stage-0 epoch-2 checkpoint: the new logger
    learns stage 0's length from metrics.jsonl, and events of the lost epochs are purged."""
    pytest.importorskip("tensorboard")
    records = _records()
    with TensorBoardLogger(tmp_path) as first:
        for r in records:  # everything logged once, then stage 1 is lost
            first.log({**r, "train_loss": -1.0} if r["stage_index"] == 1 else r)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:3]))
    with TensorBoardLogger(tmp_path) as second:
        assert [second.log(r) for r in records[3:]] == STEPS[3:]
    _assert_events_match(_read_events(tmp_path / "tensorboard"), _expected(records, STEPS))


def test_export_replays_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    records = _records()
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for _ in range(2):  # a second export replaces the first, it does not add to it
        assert export_tensorboard(run) == run / "tensorboard"
    assert len(list((run / "tensorboard").iterdir())) == 1
    events = _read_events(run / "tensorboard")
    _assert_events_match(events, _expected(records, STEPS))
    walls = [w for _, _, w in events["loss/train"]]
    assert all(b - a == pytest.approx(r["seconds"], abs=1e-3) for a, b, r in zip(walls, walls[1:], records[1:]))
    assert walls[-1] == pytest.approx((run / "metrics.jsonl").stat().st_mtime, abs=1e-3)


def test_report_tensorboard_replays_every_run_folder(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    records = _records()
    folders = [tmp_path / "runs" / "ifl+crt" / "seed0" / t for t in ("glt", "cbl")]
    for f in folders:
        f.mkdir(parents=True)
        (f / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    # `glt train` folders have no results.json: events are written, there is no table to print
    assert cli("report", tmp_path / "runs", "--tensorboard") == 0
    assert "2 run folder(s)" in capsys.readouterr().out
    for f in folders:
        _assert_events_match(_read_events(f / "tensorboard"), _expected(records, STEPS))


def test_malformed_metrics_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epoch": 1,\n')
    with pytest.raises(GLTError, match="line 2"):
        export_tensorboard(tmp_path)
    assert cli("report", tmp_path, "--tensorboard") == 2
    assert "metrics.jsonl line 2" in capsys.readouterr().err
    with pytest.raises(GLTError, match="no metrics.jsonl"):
        export_tensorboard(tmp_path / "missing")


def test_missing_tensorboard_package_is_a_glt_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now raises ImportError
    for name in [m for m in sys.modules if m.startswith("torch.utils.tensorboard")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(GLTError, match=r"needs the tensorboard package: pip install tensorboard"):
        TensorBoardLogger(tmp_path)
    assert not (tmp_path / "tensorboard").exists()
    (tmp_path / "metrics.jsonl").write_text(json.dumps(_records()[0]) + "\n")
    assert cli("report", tmp_path, "--tensorboard") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install tensorboard" in err


def test_non_scalars_are_skipped_not_failed(tmp_path):
    pytest.importorskip("tensorboard")
    with TensorBoardLogger(tmp_path) as logger:
        logger.log({"stage": "main", "stage_index": 0, "epoch": 0, "val_accuracy": math.nan, "flag": True,
                    "note": None, "extra_stats": {"a": [1, 2]}})
    events = _read_events(tmp_path / "tensorboard")
    assert set(events) == {"progress/stage_index", "progress/epoch", "accuracy/val",
                           "extra/stats/a/0", "extra/stats/a/1"}
    assert math.isnan(events["accuracy/val"][0][1])
    assert [v for _, v, _ in events["extra/stats/a/1"]] == [2.0]


def test_training_with_tensorboard_logs_what_metrics_jsonl_holds(tiny_benchmark, tmp_path):
    """The loop's `tensorboard=true`: every epoch of both crt stages, the same values as metrics.jsonl."""
    from conftest import fast_overrides
    from glt.config import build_config
    from glt.engine.trainer import train

    cfg = build_config(method="crt", benchmark=str(tiny_benchmark), overrides=fast_overrides(2) + ["tensorboard=true"])
    train(cfg, tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = _read_events(tmp_path / "run" / "tensorboard")
    val = events["accuracy/val"]
    assert [s for s, _, _ in val] == list(range(len(records)))  # steps run on across the two stages
    assert [v for _, v, _ in val] == pytest.approx([r["val_accuracy"] for r in records], rel=1e-6)
    loss = [v for _, v, _ in events["loss/train"]]
    assert loss == pytest.approx([r["train_loss"] for r in records], rel=1e-6)
