"""The GPU check: a few real training steps of ResNeXt-50 on CUDA, through benchmarks/gpu_smoke.py.

Marked `gpu`: skipped when torch sees no CUDA device, so the default run passes on a CPU machine; on a
GPU machine run it with `python -m pytest -m gpu tests/test_gpu_smoke.py`. The full measurement (all
precisions, the `glt train` loop) stays `benchmarks/gpu_smoke.sh`.
"""

from __future__ import annotations

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_smoke.py"

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")


def _gpu_smoke():
    # the script is not a package module: load it by path so the test uses its exact step
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(**kw) -> Namespace:
    base = dict(batch=32, size=112, steps=5, warmup=2, channels_last=True, compile=False)
    base.update(kw)
    return Namespace(**base)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_resnext_steps_train_on_cuda(precision):
    """Forward + backward + SGD steps run on the GPU, keep the weights finite and use GPU memory."""
    smoke = _gpu_smoke()
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    r = smoke.raw_throughput(precision, _args(), torch.device("cuda"))
    assert r["finite"], f"{precision}: parameters not finite after {r}"
    assert r["images_per_s"] > 0
    assert r["peak_gib"] > 0  # the steps really ran on the device


@pytest.mark.gpu
@needs_cuda
def test_glt_train_loop_on_cuda(tmp_path):
    """One short `glt train` (ce, ResNeXt-50, bf16 autocast) on a synthetic JPEG benchmark, on the GPU."""
    smoke = _gpu_smoke()
    args = _args(loop_images=256, loop_epochs=1, workers=2, loop_amp="bf16" if torch.cuda.is_bf16_supported() else "fp16",
                 threads=1)
    loop = smoke.loop_run(args, torch.device("cuda"), tmp_path)
    assert len(loop["epochs"]) == 1 and loop["epochs"][0] > 0
    assert (tmp_path / "run" / "eval.json").is_file()


@pytest.mark.gpu
@needs_cuda
def test_feature_store_on_cuda_with_autocast_matches_the_cpu_store(tmp_path):
    """`glt features` on the GPU under fp16 autocast gives the CPU float32 store's rows up to fp16 rounding:
    each fp16 rounding moves a value by at most 2^-11 (4.9e-4) of it, and the small CNN's few convolutions
    compound that to about 1e-2 relative; features here are ~0.1 in size, so 1e-3 absolute is ~1% of them."""
    import numpy as np

    from conftest import make_tiny_benchmark
    from glt.features import extract_features
    from glt.models import create_backbone

    bench = make_tiny_benchmark(tmp_path / "b", size=32)
    torch.save(create_backbone("small_cnn", width=8).state_dict(), tmp_path / "cnn.pt")
    kw = dict(weights_file=str(tmp_path / "cnn.pt"), splits=["glt/val"], options={"width": 8}, batch_size=16,
              progress=False)
    cpu = extract_features(bench, "small_cnn", tmp_path / "cpu", device="cpu", amp="none", **kw)
    gpu = extract_features(bench, "small_cnn", tmp_path / "gpu", device="cuda", amp="fp16", **kw)
    assert gpu.record["amp"] == "fp16"
    a = np.asarray(cpu.features("glt/val"), dtype=np.float32)
    b = np.asarray(gpu.features("glt/val"), dtype=np.float32)
    np.testing.assert_allclose(b, a, rtol=1e-2, atol=1e-3)
