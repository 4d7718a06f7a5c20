"""Mixed precision settings: bf16 autocast really runs on the CPU when asked for; what cannot run
here is refused before anything is written."""

from __future__ import annotations

import pytest
import torch

from conftest import fast_overrides
from glt.cli.main import main
from glt.config import build_config
from glt.engine.precision import Precision
from glt.engine.trainer import train


def test_bf16_autocast_changes_the_arithmetic_but_trains(tiny_benchmark, tmp_path):
    base = fast_overrides(2) + ["data.augment=none"]
    full = train(build_config(method="ce", benchmark=str(tiny_benchmark), overrides=base), tmp_path / "fp32")
    half = train(build_config(method="ce", benchmark=str(tiny_benchmark), overrides=base + ["amp=bf16"]), tmp_path / "bf16")
    wa = torch.load(tmp_path / "fp32" / "checkpoints" / "last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "bf16" / "checkpoints" / "last.pt", weights_only=True)["model"]
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa if wa[k].is_floating_point())
    assert 0 < diff < 0.05  # bf16 rounding, not a different training
    assert abs(half["glt/test_cbl"]["accuracy"] - full["glt/test_cbl"]["accuracy"]) <= 0.25


def test_auto_precision_is_off_on_the_cpu():
    p = Precision("auto", torch.device("cpu"))
    assert p.dtype is None and p.scaler is None and p.grad_scale == 1.0


@pytest.mark.parametrize("setting, message", [
    ("amp=fp16", "amp=fp16 needs a CUDA device"),
    ("amp=half", "amp must be one of auto, none, bf16, fp16"),
])
def test_unusable_precision_is_refused_before_writing(setting, message, tiny_benchmark, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--benchmark", str(tiny_benchmark), "--out", str(out), *fast_overrides(1), setting])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
