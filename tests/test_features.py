"""The frozen-feature store (`glt features`, glt.features): features against a direct forward pass, resuming
after a kill, the record, the ImageNet contamination warning and the failed-download error. Small randomly
initialised timm / open_clip models on a 32 px generated benchmark; nothing is downloaded."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import glt
from conftest import make_tiny_benchmark
from glt.benchmark import Benchmark
from glt.errors import GLTError
from glt.features import FeatureStore, extract_features

TINY_CLIP = Path(__file__).parent / "data" / "glt-tiny-clip.json"
VIT = "timm:vit_tiny_patch16_224"
VIT_OPTIONS = {"img_size": 32, "patch_size": 8}
SPLITS = ["glt/train", "glt/test_gbl"]
# float16 keeps 11 significant bits: rounding a float32 to it moves it by at most 2^-11 of its value
# (half an ulp is 2^-11 relative; below 2^-14 the spacing is fixed at 2^-24). 1e-5 more absorbs float32
# differences between a batch of 8 and the reference's one batch (summation order inside matmuls).
F16_REL = 2.0**-11
F32_ABS = 1e-5


@pytest.fixture(scope="module")
def bench32(tmp_path_factory) -> Path:
    # 32 px: the models' own input size, so the eval transform (resize 32, centre crop 32) keeps the pixels
    return make_tiny_benchmark(tmp_path_factory.mktemp("feat") / "tiny32", size=32)


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    timm = pytest.importorskip("timm")
    torch.manual_seed(1)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **VIT_OPTIONS).eval()
    path = tmp_path_factory.mktemp("w") / "vit.pt"
    torch.save(ref.state_dict(), path)
    return path, ref


def reference_features(bench: Path, split: str, model, mean, std) -> np.ndarray:
    """Each image read with PIL, scaled to [0, 1], normalised by hand, one forward pass in float32."""
    b = Benchmark(bench)
    x = np.stack([np.asarray(Image.open(b.source_image_path(p)).convert("RGB")) for p in b.split(split).path])
    x = (x.astype(np.float32) / 255 - np.array(mean, np.float32)) / np.array(std, np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()


def assert_float16_of(stored: np.ndarray, ref: np.ndarray) -> None:
    assert stored.dtype == np.float16 and stored.shape == ref.shape
    err = np.abs(stored.astype(np.float32) - ref)
    bound = np.abs(ref) * F16_REL + F32_ABS
    assert (err <= bound).all(), f"max excess {float((err - bound).max())}"


def test_timm_store_equals_a_direct_forward_pass(bench32, vit_file, tmp_path):
    path, ref = vit_file
    store = extract_features(bench32, VIT, tmp_path / "s", weights_file=str(path), splits=SPLITS, batch_size=8,
                             options=VIT_OPTIONS, progress=False)
    mean, std = ref.pretrained_cfg["mean"], ref.pretrained_cfg["std"]
    b = Benchmark(bench32)
    for split in SPLITS:
        feats = store.features(split)
        assert isinstance(feats, np.memmap)
        assert_float16_of(np.asarray(feats), reference_features(bench32, split, ref, mean, std))
        assert list(store.ids(split)) == list(b.split(split).id)
    r = store.record
    assert r["backbone"] == VIT and r["weights"] is None and r["feature_dim"] == ref.num_features
    assert r["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r["glt_version"] == glt.__version__ and r["dtype"] == "float16"
    t = r["transform"]
    assert (t["image_size"], t["resize"], t["crop"]) == (32, [32], [32, 32])
    assert t["mean"] == list(mean) and t["std"] == list(std)
    assert r["splits"]["glt/train"]["rows"] == len(b.split("glt/train"))
    assert json.loads((tmp_path / "s" / "store.json").read_text()) == r
    assert store.splits == SPLITS


def test_open_clip_store_equals_encode_image(bench32, tmp_path):
    open_clip = pytest.importorskip("open_clip")
    open_clip.add_model_config(TINY_CLIP)
    torch.manual_seed(2)
    ref = open_clip.create_model("glt-tiny-clip").eval()
    torch.save(ref.state_dict(), tmp_path / "clip.pt")
    store = extract_features(bench32, "open_clip:glt-tiny-clip", tmp_path / "s", weights_file=str(tmp_path / "clip.pt"),
                             splits=["glt/test_gbl"], batch_size=8, progress=False)
    expect = reference_features(bench32, "glt/test_gbl", ref.encode_image, open_clip.OPENAI_DATASET_MEAN,
                                open_clip.OPENAI_DATASET_STD)
    assert_float16_of(np.asarray(store.features("glt/test_gbl")), expect)
    assert store.record["feature_dim"] == json.loads(TINY_CLIP.read_text())["embed_dim"]


class Killed(Exception):
    pass


def test_resume_after_a_kill_equals_an_uninterrupted_run(bench32, vit_file, tmp_path):
    path, _ = vit_file
    kw = dict(weights_file=str(path), splits=SPLITS, batch_size=8, chunk_rows=16, options=VIT_OPTIONS, progress=False)
    whole = extract_features(bench32, VIT, tmp_path / "whole", **kw)

    def kill(split, rows):
        raise Killed

    with pytest.raises(Killed):
        extract_features(bench32, VIT, tmp_path / "cut", on_chunk=kill, **kw)
    cut = FeatureStore(tmp_path / "cut")
    assert cut.progress("glt/train") == {"rows": cut.record["splits"]["glt/train"]["rows"], "rows_done": 16,
                                         "complete": False, "seconds": cut.progress("glt/train")["seconds"]}
    with pytest.raises(GLTError, match="incomplete .16 of"):
        cut.features("glt/train")
    seen = []
    again = extract_features(bench32, VIT, tmp_path / "cut", on_chunk=lambda s, r: seen.append((s, r)), **kw)
    assert seen[0] == ("glt/train", 32), "the re-run starts after the committed chunk"
    for split in SPLITS:
        np.testing.assert_array_equal(np.asarray(again.features(split)), np.asarray(whole.features(split)))
    # a re-run over a complete store computes nothing; other settings are refused, never mixed
    seen.clear()
    extract_features(bench32, VIT, tmp_path / "cut", on_chunk=lambda s, r: seen.append(r), **kw)
    assert seen == []
    with pytest.raises(GLTError, match="other settings .weights_sha256"):
        extract_features(bench32, VIT, tmp_path / "cut", **{**kw, "weights_file": None})


def imagenet_glt_copy(src: Path, dst: Path, builder: str = "imagenet") -> Path:
    """The generated benchmark relabelled as if `glt build imagenet` had made it."""
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m.update(image_style="imagenet", info={"builder": builder})
    if "kind" in m:
        m["kind"] = "imagenet_glt"
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_contamination_warning_for_imagenet_weights_on_imagenet_glt(bench32, tmp_path, monkeypatch, capsys):
    timm = pytest.importorskip("timm")
    bench = imagenet_glt_copy(bench32, tmp_path / "inglt")
    monkeypatch.setattr(timm.models._builder, "load_pretrained", lambda *a, **k: None)  # the weights "load" offline
    store = extract_features(bench, VIT, tmp_path / "s", weights="augreg_in21k_ft_in1k", splits=["glt/test_gbl"],
                             options=VIT_OPTIONS, progress=False)
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "ImageNet-21k" in err[0] and "ImageNet's train folder" in err[0]
    c = store.record["contamination"]
    assert c["benchmark_from_imagenet_train"] and c["warning"] in err[0]
    assert store.record["weights_name"] == "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    # a random init, or the same weights on a benchmark of other images, is not warned about
    extract_features(bench, VIT, tmp_path / "r", splits=["glt/test_gbl"], options=VIT_OPTIONS, progress=False)
    folder = imagenet_glt_copy(bench32, tmp_path / "folder", builder="folder")
    extract_features(folder, VIT, tmp_path / "f", weights="augreg_in21k_ft_in1k", splits=["glt/test_gbl"],
                     options=VIT_OPTIONS, progress=False)
    assert "warning" not in capsys.readouterr().err


def test_contamination_rules():
    from glt.features.contamination import imagenet_trained

    assert imagenet_trained("ResNet50_Weights.IMAGENET1K_V2")
    assert imagenet_trained("vit_small_patch14_dinov2.lvd142m")
    assert imagenet_trained("convnext_base.clip_laion2b_augreg_ft_in12k_in1k")
    for web in ("ViT-B-32/laion2b_s34b_b79k", "ViT-B-16/openai", "ViT-L-14/datacomp_xl_s13b_b90k", None):
        assert imagenet_trained(web) is None


def test_failed_download_through_the_cli(bench32, tmp_path, monkeypatch, capsys):
    open_clip = pytest.importorskip("open_clip")
    from huggingface_hub.errors import LocalEntryNotFoundError

    from glt.cli.main import main

    def offline(*a, **k):
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub (offline)")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)
    with pytest.raises(SystemExit) as e:
        main(["features", "--benchmark", str(bench32), "--backbone", "open_clip:ViT-B-32", "--weights",
              "laion2b_s34b_b79k", "--out", str(tmp_path / "s"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("glt: error: cannot download the weights 'laion2b_s34b_b79k' of backbone 'open_clip:ViT-B-32'")
    assert "--weights-file" in err and not (tmp_path / "s" / "store.json").exists()


def test_store_errors(bench32, tmp_path):
    with pytest.raises(GLTError, match="feature store not found"):
        FeatureStore(tmp_path / "nope")
    store = extract_features(bench32, "small_cnn", tmp_path / "s", splits=["glt/val"], options={"width": 4},
                             progress=False, batch_size=8)
    with pytest.raises(GLTError, match="has no split 'glt/train'"):
        store.features("glt/train")
    with pytest.raises(GLTError, match="unknown split"):
        extract_features(bench32, "small_cnn", tmp_path / "t", splits=["glt/trian"], progress=False)
    with pytest.raises(GLTError, match="takes 32 px images only"):
        extract_features(bench32, VIT, tmp_path / "u", image_size=64, options=VIT_OPTIONS, progress=False)


def test_shared_split_is_copied_and_the_cli_writes_a_store(tiny_benchmark, tmp_path, capsys):
    from glt.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["features", "--benchmark", str(tiny_benchmark), "--backbone", "small_cnn", "--option", "width=4",
              "--splits", "glt/test_gbl,cbl/test_gbl", "--out", str(tmp_path / "s"), "--workers", "0", "--no-progress"])
    assert e.value.code == 0 and "2 splits, 32-d features of small_cnn" in capsys.readouterr().out
    store = FeatureStore(tmp_path / "s")
    b = Benchmark(tiny_benchmark)
    assert list(b.split("glt/test_gbl").id) == list(b.split("cbl/test_gbl").id)  # the fixture shares them
    assert store.progress("cbl/test_gbl")["copied_from"] == "glt/test_gbl"
    np.testing.assert_array_equal(store.features("cbl/test_gbl"), store.features("glt/test_gbl"))
    assert store.record["options"] == {"width": 4} and store.record["seed"] == 0


def test_a_store_sees_what_training_fed_the_backbone(bench32, tmp_path):
    """A backbone without a fixed input size, on a benchmark whose training runs feed another size than the
    manifest's (ColorDigits-GLT style: 32 px images, trained at 16): the store's rows are the backbone's
    output on the very batches a training run's test-time path gives it (glt.engine.setup.Setup)."""
    from glt.config import build_config
    from glt.engine.setup import Setup

    cfg = build_config(method="ce", benchmark=str(bench32), overrides=["model.options.width=4"])
    assert cfg.data.image_size != Benchmark(bench32).manifest.image_size  # the case this test is about
    setup = Setup(cfg, torch.device("cpu"))
    torch.save(setup.model.backbone.state_dict(), tmp_path / "cnn.pt")
    store = extract_features(bench32, "small_cnn", tmp_path / "s", weights_file=str(tmp_path / "cnn.pt"),
                             splits=["glt/val"], options={"width": 4}, batch_size=8, progress=False)
    assert store.record["transform"]["image_size"] == cfg.data.image_size
    ds = setup.dataset("glt/val", train=False)
    images, _, _ = ds.__getitems__(list(range(len(ds))))
    setup.model.eval()
    with torch.no_grad():
        expect = setup.model.backbone(images).numpy()
    got = np.asarray(store.features("glt/val"), dtype=np.float32)
    np.testing.assert_allclose(got, expect, rtol=F16_REL, atol=F32_ABS)


def test_features_takes_a_weights_file_through_weights_as_train_does(bench32, tmp_path):
    """`glt features --weights FILE` reads the file as `--weights-file FILE` does (the same record and rows)."""
    from glt.cli.main import main

    torch.save(create_cnn_state(), tmp_path / "cnn.pt")
    for flag, out in (("--weights", "a"), ("--weights-file", "b")):
        with pytest.raises(SystemExit) as e:
            main(["features", "--benchmark", str(bench32), "--backbone", "small_cnn", "--option", "width=4",
                  flag, str(tmp_path / "cnn.pt"), "--splits", "glt/val", "--out", str(tmp_path / out), "--no-progress"])
        assert e.value.code == 0
    a, b = FeatureStore(tmp_path / "a"), FeatureStore(tmp_path / "b")
    assert a.record["weights_file"] == b.record["weights_file"] == str((tmp_path / "cnn.pt").resolve())
    assert a.record["weights"] is None and a.record["weights_sha256"] == b.record["weights_sha256"]
    np.testing.assert_array_equal(np.asarray(a.features("glt/val")), np.asarray(b.features("glt/val")))


def create_cnn_state():
    from glt.models import create_backbone

    return create_backbone("small_cnn", width=4).state_dict()
