"""Backbones by name: open_clip vision towers, timm and torchvision weights, local files, failed downloads,
the catalogue behind `glt backbones`. Models are small and randomly initialised; nothing is downloaded."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch

from glt.errors import GLTError
from glt.models import create_backbone

TINY_CLIP = Path(__file__).parent / "data" / "glt-tiny-clip.json"
TINY_VIT = {"img_size": 32, "patch_size": 8}


@pytest.fixture(scope="module")
def open_clip():
    open_clip = pytest.importorskip("open_clip")
    open_clip.add_model_config(TINY_CLIP)  # registers 'glt-tiny-clip' from the real config format
    return open_clip


def offline(*args, **kwargs):
    """What huggingface_hub raises when there is no network and no cached copy."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub (offline)")


def images(n: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_open_clip_tower_from_a_full_clip_file_equals_encode_image(open_clip, tmp_path):
    ref = open_clip.create_model("glt-tiny-clip").eval()
    torch.save(ref.state_dict(), tmp_path / "clip.pt")  # a full CLIP state dict, text tower included
    b = create_backbone("open_clip:glt-tiny-clip", weights_file=str(tmp_path / "clip.pt")).eval()
    cfg = json.loads(TINY_CLIP.read_text())
    assert b.out_features == cfg["embed_dim"] and b.input_size == cfg["vision_cfg"]["image_size"]
    assert b.input_norm == (tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD))
    assert b.pretrained and b.weights_name is None
    assert not any(k.startswith(("transformer.", "token_embedding")) for k in b.state_dict()), "text tower dropped"
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(b(x), ref.encode_image(x), rtol=0, atol=1e-6)
    # the tower's own state dict (what a backbone saves) loads back the same way
    torch.save(b.state_dict(), tmp_path / "tower.pt")
    again = create_backbone("open_clip:glt-tiny-clip", weights_file=str(tmp_path / "tower.pt")).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), b(x), rtol=0, atol=0)


def test_open_clip_file_of_another_model_and_unknown_names(open_clip, tmp_path):
    state = open_clip.create_model("glt-tiny-clip").state_dict()
    del state["visual.proj"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(GLTError, match=r"bad\.pt does not match backbone 'open_clip:glt-tiny-clip'.*visual\.proj"):
        create_backbone("open_clip:glt-tiny-clip", weights_file=str(tmp_path / "bad.pt"))
    with pytest.raises(GLTError, match="weights file not found"):
        create_backbone("open_clip:glt-tiny-clip", weights_file=str(tmp_path / "nope.pt"))
    with pytest.raises(GLTError, match="unknown open_clip architecture 'ViT-B-33'; did you mean"):
        create_backbone("open_clip:ViT-B-33")
    with pytest.raises(GLTError, match="unknown pretrained tag of open_clip:ViT-B-32 'laion2b'.*laion2b_s34b_b79k"):
        create_backbone("open_clip:ViT-B-32", weights="laion2b")
    with pytest.raises(GLTError, match="unknown backbone prefix 'openclip:'"):
        create_backbone("openclip:ViT-B-32")


def test_open_clip_failed_download_is_one_clear_error(open_clip, monkeypatch):
    # open_clip's own create_model calls this and wraps what it raises in a RuntimeError
    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)
    with pytest.raises(GLTError) as e:
        create_backbone("open_clip:ViT-B-32", weights="laion2b_s34b_b79k")
    msg = str(e.value)
    assert "\n" not in msg and "'open_clip:ViT-B-32'" in msg and "'laion2b_s34b_b79k'" in msg and "--weights-file" in msg


def test_timm_local_file_equals_the_timm_model(tmp_path):
    timm = pytest.importorskip("timm")
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5, **TINY_VIT).eval()
    from safetensors.torch import save_file

    torch.save(ref.state_dict(), tmp_path / "vit.pt")  # with its classifier, as a fine-tuned checkpoint is
    save_file(ref.state_dict(), tmp_path / "vit.safetensors")  # the hub's format
    x = images()
    with torch.no_grad():
        expect = ref.forward_head(ref.forward_features(x), pre_logits=True)
    for name in ("vit.pt", "vit.safetensors"):
        b = create_backbone("timm:vit_tiny_patch16_224", weights_file=str(tmp_path / name), **TINY_VIT).eval()
        assert b.out_features == ref.num_features and b.input_size == 32
        assert b.input_norm == (tuple(ref.pretrained_cfg["mean"]), tuple(ref.pretrained_cfg["std"]))
        with torch.no_grad():
            torch.testing.assert_close(b(x), expect, rtol=0, atol=1e-6)
    assert create_backbone("timm:resnet18").input_size is None, "a CNN takes any image size"


def test_timm_tags_and_failed_download(monkeypatch):
    timm = pytest.importorskip("timm")
    with pytest.raises(GLTError, match="unknown weights tag of timm:vit_tiny_patch16_224 'in1k'.*augreg_in21k"):
        create_backbone("timm:vit_tiny_patch16_224", weights="in1k", **TINY_VIT)
    monkeypatch.setattr(timm.models._builder, "load_pretrained", offline)
    with pytest.raises(GLTError) as e:
        create_backbone("timm:vit_tiny_patch16_224", weights="augreg_in21k_ft_in1k", **TINY_VIT)
    msg = str(e.value)
    assert "\n" not in msg and "timm:vit_tiny_patch16_224" in msg and "augreg_in21k_ft_in1k" in msg
    assert "--weights-file" in msg
    # weights that "loaded" (the loader replaced by a no-op) are named by timm's arch.tag
    monkeypatch.setattr(timm.models._builder, "load_pretrained", lambda *a, **k: None)
    b = create_backbone("timm:vit_tiny_patch16_224", weights="augreg_in21k_ft_in1k", **TINY_VIT)
    assert b.weights_name == "vit_tiny_patch16_224.augreg_in21k_ft_in1k" and b.pretrained


def test_torchvision_weights_by_name(monkeypatch):
    import torchvision

    with pytest.raises(GLTError, match="unknown weights of backbone 'resnet18' 'IMAGENET1K_V3'; did you mean"):
        create_backbone("resnet18", weights="IMAGENET1K_V3")

    def no_network(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.raises(GLTError, match=r"cannot download the weights 'DEFAULT' of backbone 'resnet18'.*--weights-file"):
        create_backbone("resnet18", weights="DEFAULT")
    b = create_backbone("resnet18")
    assert b.out_features == 512 and b.weights_name is None and b.input_size is None
    assert create_backbone("vit_b_16", image_size=32).input_size == 32  # torchvision ViTs take one size


def test_small_cnn_unchanged():
    b = create_backbone("small_cnn", width=4)
    assert b.out_features == 32 and not b.pretrained and b.weights_name is None and b.input_norm is None
    with pytest.raises(GLTError, match="no published weights"):
        create_backbone("small_cnn", weights="DEFAULT")


def test_catalogue_lists_every_source(open_clip, capsys):
    import argparse

    import timm
    import torchvision

    from glt.cli import backbones as cli
    from glt.models.backbones import backbone_catalogue

    rows = dict(backbone_catalogue("resnet50"))
    assert rows["resnet50"] == list(torchvision.models.get_model_weights("resnet50").__members__)
    assert {f"timm:{n}" for n in timm.list_models("*resnet50*")} <= set(rows)
    tags = [t for a, t in open_clip.list_pretrained() if a == "ViT-B-32"]
    assert dict(backbone_catalogue("open_clip:ViT-B-32"))["open_clip:ViT-B-32"] == tags
    assert "open_clip:glt-tiny-clip" in dict(backbone_catalogue("tiny-clip"))
    assert "open_clip:glt-tiny-clip" not in dict(backbone_catalogue("tiny-clip", pretrained_only=True))
    assert cli.run(argparse.Namespace(pattern="open_clip:glt-tiny*", pretrained=False)) == 0
    assert capsys.readouterr().out.split() == ["open_clip:glt-tiny-clip"]
    with pytest.raises(GLTError, match="no backbone matches 'zzzq'"):
        cli.run(argparse.Namespace(pattern="zzzq", pretrained=False))


def test_train_takes_backbone_and_weights_file_from_the_command_line(tiny_benchmark, tmp_path):
    """`glt train --backbone timm:NAME --weights FILE`: the run starts from the file's weights (the same path
    a user takes offline), recorded in the run's config as model.backbone / model.weights_file."""
    timm = pytest.importorskip("timm")
    from omegaconf import OmegaConf

    from glt.cli.main import main
    from glt.runtime.checkpoint import load_checkpoint

    ref = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    torch.save(ref.state_dict(), tmp_path / "r10.pt")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--benchmark", str(tiny_benchmark), "--method", "ce", "--out", str(out),
              "--backbone", "timm:resnet10t", "--weights", str(tmp_path / "r10.pt"), "epochs=1", "optim.lr=1e-12",
              "data.num_workers=0", "progress=false", "threads=1"])
    assert e.value.code == 0
    cfg = OmegaConf.load(out / "config.yaml")
    assert (cfg.model.backbone, cfg.model.weights_file, cfg.model.weights) == (
        "timm:resnet10t", str(tmp_path / "r10.pt"), None)
    assert "width" not in cfg.model.options  # the small benchmark's small-CNN width is not passed to timm
    # learning rate 1e-12: the trained backbone is still the file's weights (BatchNorm statistics aside)
    state = load_checkpoint(out / "checkpoints" / "best.pt")["model"]
    for k, v in ref.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            torch.testing.assert_close(state[f"backbone.{k}"], v, rtol=0, atol=1e-6)


def test_a_fixed_size_backbone_refuses_other_image_sizes(tiny_benchmark, tmp_path, capsys):
    """A ViT built for 32 px images on a benchmark fed at another size: one line naming the setting to
    change, before any training, exit status 2, nothing written."""
    pytest.importorskip("timm")
    from glt.benchmark import Benchmark
    from glt.cli.main import main

    size = Benchmark(tiny_benchmark).manifest.image_size
    assert size != 32
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--benchmark", str(tiny_benchmark), "--method", "ce", "--out", str(out),
              "--backbone", "timm:vit_tiny_patch16_224", "model.options.img_size=32", "model.options.patch_size=8",
              "epochs=1", "data.num_workers=0", "progress=false", "threads=1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes 32 px images" in err[0] and "data.image_size=32" in err[0], err
    assert not out.exists()


def test_training_on_imagenet_glt_warns_about_contamination(tmp_path, capsys):
    """A weights file of unknown origin on a benchmark whose manifest says ImageNet-GLT (its test images come
    from ImageNet's train folder): `glt train` prints the contamination line once; on another benchmark none."""
    import json

    from conftest import make_tiny_benchmark

    from glt.cli.main import main

    weights = tmp_path / "cnn.pt"
    torch.save(create_backbone("small_cnn", width=16).state_dict(), weights)
    for kind, builder, warned in (("imagenet_glt", "imagenet", True), (None, None, False)):
        bench = make_tiny_benchmark(tmp_path / f"bench-{kind}")
        manifest = json.loads((bench / "manifest.json").read_text())
        manifest["kind"] = kind
        manifest["info"]["builder"] = builder
        (bench / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(SystemExit) as e:
            main(["train", "--benchmark", str(bench), "--method", "ce", "--out", str(tmp_path / f"run-{kind}"),
                  "--weights", str(weights), "epochs=1", "data.num_workers=0", "progress=false", "threads=1"])
        assert e.value.code == 0
        lines = [ln for ln in capsys.readouterr().err.splitlines() if "ImageNet-GLT" in ln]
        assert len(lines) == (1 if warned else 0), lines
        if warned:
            assert str(weights) in lines[0] and "test images" in lines[0]
