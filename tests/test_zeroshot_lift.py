"""CLIP zero-shot and LIFT-style tuning (glt.methods.zeroshot, glt.methods.lift) on a tiny randomly initialised
open_clip model from a real config, saved to a local weights file; every reference is computed here with
open_clip itself (its tokenizer, encode_text, encode_image) or written out by hand. Nothing is downloaded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import fast_overrides, make_tiny_benchmark
from glt.config import build_config
from glt.engine.trainer import Setup, train
from glt.errors import GLTError
from glt.methods import Context, Output, resolve_method
from glt.models import create_backbone
from glt.models.text_classifier import class_names, init_text_head
from glt.runtime.checkpoint import load_checkpoint
from glt.runtime.run_dir import RunDir

TINY_CLIP = Path(__file__).parent / "data" / "glt-tiny-clip.json"
ARCH = "zeroshot-test-clip"  # a name no other test lists
NAMES = ["square top left", "square top right", "square bottom left", "square bottom right"]
TEMPLATES = ["a photo of a {}.", "an image showing the {}."]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(open_clip, the CLIP model, its weights file, class-names file, templates file). The tiny config's text
    tower takes open_clip's real tokenizer: its vocabulary is the tokenizer's (49408), the rest as in the file."""
    open_clip = pytest.importorskip("open_clip")
    pytest.importorskip("peft")
    tmp = tmp_path_factory.mktemp("clip")
    cfg = json.loads(TINY_CLIP.read_text())
    cfg["text_cfg"]["vocab_size"] = 49408
    (tmp / f"{ARCH}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp / f"{ARCH}.json")
    logging.disable(logging.WARNING)  # open_clip's "initialized randomly" warning
    torch.manual_seed(0)
    model = open_clip.create_model(ARCH).eval()
    logging.disable(logging.NOTSET)
    torch.save(model.state_dict(), tmp / "clip.pt")
    (tmp / "names.json").write_text(json.dumps(NAMES))
    (tmp / "templates.txt").write_text("\n".join(TEMPLATES) + "\n")
    yield open_clip, model, tmp / "clip.pt", tmp / "names.json", tmp / "templates.txt"
    open_clip.factory._MODEL_CONFIGS.pop(ARCH, None)  # open_clip's registry is global: leave it as found


@pytest.fixture(scope="module")
def bench32(tmp_path_factory):
    return make_tiny_benchmark(tmp_path_factory.mktemp("bench32") / "tiny", size=32)  # the tower's image size


def reference_classifier(open_clip, model, templates) -> torch.Tensor:
    """Per class: open_clip's encode_text of every prompt, each L2-normalised, averaged, normalised again."""
    tok = open_clip.get_tokenizer(ARCH)
    rows = []
    with torch.no_grad():
        for name in NAMES:
            e = model.encode_text(tok([t.format(name) if isinstance(t, str) else t(name) for t in templates]))
            m = (e / e.norm(dim=1, keepdim=True)).mean(0)
            rows.append(m / m.norm())
    return torch.stack(rows)


def overrides(clip, *extra) -> list[str]:
    return fast_overrides(1) + [f"model.backbone=open_clip:{ARCH}", f"model.weights_file={clip[2]}",
                                f"method_args.class_names={clip[3]}", "data.image_size=32", *extra]


def test_zero_shot_classifier_is_open_clips_prompt_average(clip):
    open_clip, model, weights, names, templates = clip
    backbone = create_backbone(f"open_clip:{ARCH}", weights_file=str(weights))
    head = torch.nn.Linear(backbone.out_features, len(NAMES), bias=False)
    for spec, expect in ((str(templates), TEMPLATES), ("simple", ["a photo of a {}."]),
                         ("imagenet", open_clip.OPENAI_IMAGENET_TEMPLATES)):
        scale = init_text_head(head, backbone, str(names), spec, None, len(NAMES))
        torch.testing.assert_close(head.weight.detach(), reference_classifier(open_clip, model, expect),
                                   rtol=0, atol=1e-6)
        assert scale == pytest.approx(float(model.logit_scale.detach().exp()))
    # names from the benchmark (underscores read as spaces), the file's count checked
    assert class_names(None, ["hot_dog", "cat"], 2) == ["hot dog", "cat"]
    with pytest.raises(GLTError, match="has 4 names for 3 classes"):
        class_names(str(names), None, 3)
    # a tower-only file has no text tower to build a classifier from
    torch.save(backbone.state_dict(), weights.parent / "tower.pt")
    tower_only = create_backbone(f"open_clip:{ARCH}", weights_file=str(weights.parent / "tower.pt"))
    with pytest.raises(GLTError, match="has no text tower"):
        init_text_head(head, tower_only, str(names), "simple", None, len(NAMES))
    with pytest.raises(GLTError, match="needs an open_clip"):
        init_text_head(head, create_backbone("small_cnn", width=2), str(names), "simple", None, len(NAMES))


def test_zero_shot_predicts_argmax_of_scaled_cosine(clip, bench32, tmp_path):
    open_clip, model, weights, names, templates = clip
    cfg = build_config(method="zeroshot", benchmark=str(bench32),
                       overrides=overrides(clip, f"method_args.templates={templates}"))
    results = train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "eval.json").is_file() and set(results) >= {"glt/test_gbl"}
    classifier = reference_classifier(open_clip, model, TEMPLATES)
    setup = Setup(cfg)
    setup.load_weights(load_checkpoint(RunDir(tmp_path / "run").best))  # as `glt eval`: no text tower needed
    ds = setup.dataset("glt/test_gbl", train=False)
    images = ds.__getitems__(list(range(len(ds))))[0]  # the test-time transform, as the loop's loader
    with torch.no_grad():
        img = model.encode_image(images)
        hand = model.logit_scale.exp() * F.normalize(img, dim=1) @ classifier.T
        ours = setup.method.predict_logits(setup.model.eval(), images)
    torch.testing.assert_close(ours, hand, rtol=1e-5, atol=1e-5)
    rows = (tmp_path / "run" / "predictions" / "glt__test_gbl.csv").read_text().splitlines()[1:]
    predicted = dict(r.split(",") for r in rows)
    assert [int(predicted[i]) for i in ds.table.id] == hand.argmax(1).tolist()


def _lift(tuning: str, backbone, **settings):
    spec = resolve_method("lift")
    labels = np.repeat(np.arange(4), [8, 4, 2, 2])
    ctx = Context(4, np.bincount(labels), 1, batch_size=4, labels=labels)
    m = spec.create(spec.settings_cls(tuning=tuning, **settings), None, ctx)
    return m, m.build_model(backbone)


def test_lift_loss_is_ce_on_logits_plus_tau_log_prior():
    m, _ = _lift("full", create_backbone("small_cnn", width=2), tau=0.5)
    z, y = torch.randn(5, 4, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 3, 0])
    prior = np.array([8, 4, 2, 2]) / 16
    ref = np.mean([-(z[i, t].item() + 0.5 * np.log(prior[t]))
                   + np.log(sum(np.exp(z[i, j].item() + 0.5 * np.log(prior[j])) for j in range(4)))
                   for i, t in enumerate(y.tolist())])
    assert float(m.loss(Output(z, torch.zeros(5, 1)), y)) == pytest.approx(ref, rel=1e-5)
    assert m.stages()[0].trainable == "all"
    assert _lift("linear", create_backbone("small_cnn", width=2))[0].stages()[0].trainable == "head_eval"
    with pytest.raises(GLTError, match="unknown tuning 'lorra'"):
        _lift("lorra", create_backbone("small_cnn", width=2))


def test_lora_trains_only_adapters_and_head_and_starts_as_the_base(clip):
    open_clip, model, weights, *_ = clip
    r = 2
    _, net = _lift("lora", create_backbone(f"open_clip:{ARCH}", weights_file=str(weights)), lora_r=r, lora_alpha=4.0)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n or n.startswith("head.") for n in trainable)
    # by hand from the config: per block attention in_proj (d -> 3d), out_proj (d -> d), MLP c_fc (d -> 4d),
    # c_proj (4d -> d); each adapted layer r * (in + out), then the head's C x embed_dim
    cfg = json.loads(TINY_CLIP.read_text())["vision_cfg"]
    d, layers = cfg["width"], cfg["layers"]
    per_block = r * ((d + 3 * d) + (d + d) + (d + 4 * d) + (4 * d + d))
    embed = json.loads(TINY_CLIP.read_text())["embed_dim"]
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == layers * per_block + 4 * embed
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # LoRA's B starts at zero: the adapted tower is the base tower
        torch.testing.assert_close(net.eval().forward_features(x), model.encode_image(x), rtol=0, atol=1e-6)


def _visual(state: dict) -> dict:
    """The backbone's base weights under open_clip's own names (peft's `.base_layer` removed)."""
    return {"visual." + k.removeprefix("backbone.visual.").replace(".base_layer", ""): v for k, v in state.items()
            if k.startswith("backbone.") and ".lora_" not in k}


@pytest.mark.parametrize("tuning", ["lora", "linear"])
def test_one_epoch_changes_only_what_the_tuning_trains(clip, bench32, tmp_path, tuning):
    open_clip, model, weights, *_ = clip
    cfg = build_config(method="lift", benchmark=str(bench32),
                       overrides=overrides(clip, f"method_args.tuning={tuning}", "method_args.templates=simple",
                                           "optim.lr=0.5", "checkpoint_every=1"))
    train(cfg, tmp_path / "run")
    state = load_checkpoint(RunDir(tmp_path / "run").last)["model"]
    original = model.state_dict()
    base = _visual(state)
    # peft adapts nn.MultiheadAttention by merging the adapter into the attention weights for the forward and
    # subtracting it again after: those base weights keep float rounding (~1e-8), every other one is untouched
    merged = {k for k in base if tuning == "lora" and ".attn." in k and k.endswith("weight")}
    assert base and all(torch.equal(v, original[k]) for k, v in base.items() if k not in merged)
    for k in merged:
        torch.testing.assert_close(base[k], original[k], rtol=0, atol=1e-6)
    text_init = reference_classifier(open_clip, model, ["a photo of a {}."])
    assert not torch.allclose(F.normalize(state["head.weight"], dim=1), text_init), "the head trained"
    lora = {k: v for k, v in state.items() if ".lora_B." in k}
    if tuning == "lora":
        assert lora and any(v.abs().sum() > 0 for v in lora.values()), "the adapters trained"
    else:
        assert not lora


def test_ifl_lift_runs_one_epoch(clip, bench32, tmp_path):
    cfg = build_config(method="ifl+lift", benchmark=str(bench32),
                       overrides=overrides(clip, "method_args.templates=simple", "wrapper_args.alpha_milestones=[0,0]",
                                           "wrapper_args.rebuild_after=[0]"))
    results = train(cfg, tmp_path / "run")
    assert set(results) == {"glt/test_glt", "glt/test_cbl", "glt/test_gbl"}
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("center_loss" in x for x in lines)
    assert Setup(cfg).method.center_kind == "cosine"  # LIFT's head compares by angle
