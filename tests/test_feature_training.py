"""Training heads on a frozen-feature store (`data.features`, glt.features.dataset, the "features" backbone):
a head trained on the store against the same head trained by hand on the frozen backbone's own outputs, the
methods that run on a store through the one loop, `glt eval` of such a run, and the errors (a store of another
benchmark, a missing split, a method that needs images). A small random CNN on the tiny benchmark; no download."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import make_tiny_benchmark
from glt.benchmark import Benchmark
from glt.cli.main import main
from glt.config import build_config
from glt.data import create_sampler
from glt.engine.trainer import train
from glt.errors import GLTError
from glt.features import extract_features
from glt.features.dataset import FeatureDataset
from glt.features.store import FeatureStore
from glt.models.backbones import SmallCNN

WIDTH = 8  # SmallCNN(width=8): 64 features
SEED = 0
LR, MOMENTUM, WD = 0.05, 0.9, 5e-4
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
FAST = ["data.num_workers=0", "progress=false", "data.batch_size=16"]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> tuple[Path, SmallCNN]:
    torch.manual_seed(5)
    net = SmallCNN(width=WIDTH).eval()  # eval: BatchNorm with its (initial) running statistics
    path = tmp_path_factory.mktemp("w") / "cnn.pt"
    torch.save(net.state_dict(), path)
    return path, net


@pytest.fixture(scope="module")
def store(tiny_benchmark, cnn, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store") / "s"
    extract_features(tiny_benchmark, "small_cnn", out, weights_file=str(cnn[0]), options={"width": WIDTH},
                     batch_size=32, progress=False)
    return out


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


def run_on_store(bench, store, method, out, *overrides):
    cfg = build_config(method=method, benchmark=str(bench), overrides=[*FAST, f"data.features={store}", *overrides])
    return cfg, train(cfg, out)


def frozen_features(bench: Path, split: str, net) -> torch.Tensor:
    """The backbone's float32 output on each image, read with PIL and normalised by hand (the store's eval
    transform on 16 px images: no resize, no crop)."""
    b = Benchmark(bench)
    x = np.stack([np.asarray(Image.open(b.source_image_path(p)).convert("RGB")) for p in b.split(split).path])
    mean, std = (np.array(v, np.float32) for v in IMAGENET)
    x = (x.astype(np.float32) / 255 - mean) / std
    with torch.no_grad():
        return net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())


def test_head_on_the_store_matches_the_head_on_the_frozen_backbone(tiny_benchmark, store, cnn, tmp_path):
    """ce on the store (1 epoch, constant lr, batch 8) against the same SGD run by hand on the frozen CNN's float32
    outputs: same initial head (nn.Linear drawn right after seeding, as the loop's Setup draws it: the
    identity backbone draws nothing), same sampler order. The stores's float16 rounding δf = f16(f) - f is the only
    difference; its effect on the logits is bounded along the reference trajectory (below), and the run must
    stay inside that bound."""
    net = cnn[1]
    st = FeatureStore(store)
    assert st.record["transform"]["mean"] == list(IMAGENET[0]) and st.record["transform"]["crop"] == [16, 16]
    out = tmp_path / "ce"
    cfg, _ = run_on_store(tiny_benchmark, store, "ce", out, "epochs=1", "data.batch_size=8", "data.drop_last=false",
                          "optim.schedule=constant", f"optim.lr={LR}", f"optim.momentum={MOMENTUM}",
                          f"optim.weight_decay={WD}", f"seed={SEED}")
    assert cfg.model.backbone == "features" and cfg.data.features == str(store.resolve())
    bench = Benchmark(tiny_benchmark)
    train_table = bench.split("glt/train")
    f = frozen_features(tiny_benchmark, "glt/train", net)
    f16 = torch.from_numpy(np.asarray(st.features("glt/train"), dtype=np.float32))
    df = f16 - f
    labels = torch.as_tensor(train_table.label)
    C = bench.manifest.num_classes

    torch.manual_seed(SEED)
    W = torch.nn.Linear(f.shape[1], C, bias=False).weight.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([W], lr=LR, momentum=MOMENTUM, weight_decay=WD)
    sampler = create_sampler("instance", train_table.label, C, seed=SEED * 1009)
    sampler.set_epoch(0)
    order = torch.as_tensor(list(sampler))
    # Bound on ||W_store - W_ref||_F (e_w) and on the momentum buffers' difference (e_b). For one sample, the
    # CE gradient is g(W, f) = (p - e_y) f^T with p = softmax(W f), and the softmax Jacobian has norm <= 1/2, so
    #   ||g(W', f') - g(W, f')|| <= 1/2 ||W' - W|| ||f'||^2            (the weights differ)
    #   ||g(W, f') - g(W, f)||   <= (1/2 ||W||_2 ||f'|| + ||p - e_y||) ||δf||   (the stored feature differs)
    # torch's SGD: b <- mu b + g + wd W, W <- W - lr b, hence e_b <- mu e_b + (h + wd) e_w + d, e_w <- e_w + lr e_b
    # with h, d the batch means of the two factors. Float32 sums in another order add 2^-20 of the step's
    # gradient norm (about 8 ulps) to d.
    e_w = e_b = 0.0
    for batch in order.split(8):
        fb, dfb, yb = f[batch], df[batch], labels[batch]
        logits = fb @ W.T
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            p = logits.softmax(1) - F.one_hot(yb, C)
            fn, dn = (fb + dfb).norm(dim=1), dfb.norm(dim=1)
            h = float((0.5 * fn**2).mean())
            d = float(((0.5 * torch.linalg.matrix_norm(W, 2) * fn + p.norm(dim=1)) * dn).mean())
            d += 2.0**-20 * float(W.grad.norm() + WD * W.norm())
        e_b = MOMENTUM * e_b + (h + WD) * e_w + d
        e_w = e_w + LR * e_b
        opt.step()
    W_ref = W.detach()

    W_store = torch.load(out / "checkpoints" / "best.pt", weights_only=True)["model"]["head.weight"]
    assert (W_store - W_ref).norm() <= e_w
    checked = margins = 0
    for split in ("glt/test_glt", "glt/test_cbl", "glt/test_gbl"):
        ft = frozen_features(tiny_benchmark, split, net)
        ft16 = torch.from_numpy(np.asarray(st.features(split), dtype=np.float32))
        ref, got = ft @ W_ref.T, ft16 @ W_store.T
        # logits: (W' - W) f' + W (f' - f), per class <= e_w ||f'|| + ||W_c|| ||δf||, plus float32 rounding
        bound = e_w * ft16.norm(dim=1, keepdim=True) + W_ref.norm(dim=1) * (ft16 - ft).norm(dim=1, keepdim=True)
        bound = bound + 1e-5 * (1 + ref.abs())
        assert ((got - ref).abs() <= bound).all(), float(((got - ref).abs() - bound).max())
        with open(out / "predictions" / f"{split.replace('/', '__')}.csv") as fh:
            written = np.array([int(r["prediction"]) for r in csv.DictReader(fh)])
        assert (written == got.argmax(1).numpy()).all()  # the run scored the stored features with its head
        top2 = ref.topk(2, dim=1).values
        sure = (top2[:, 0] - top2[:, 1]) > 2 * bound.max(1).values  # no logit shift inside the bound flips these
        assert (written[sure.numpy()] == ref.argmax(1).numpy()[sure.numpy()]).all()
        checked, margins = checked + len(ref), margins + int(sure.sum())
    assert margins >= 0.9 * checked, f"the bound decides only {margins} of {checked} predictions"


def test_methods_train_on_the_store_and_eval_rescores(tiny_benchmark, store, tmp_path, capsys):
    runs = {
        "ce": [], "blsoftmax": [], "logit_adj": [],
        "crt": ["method_args.classifier_epochs=1"],
        # the adapter gives IFL's center loss a representation to shape; alpha > 0 from the second epoch
        "ifl+ce": ["model.options.adapter=16", "wrapper_args.alphas=[0.0,0.01,0.01]"],
    }
    for method, extra in runs.items():
        out = tmp_path / method.replace("+", "_")
        run_on_store(tiny_benchmark, store, method, out, "epochs=2", *extra)
        ev = json.loads((out / "eval.json").read_text())
        assert ev["method"] == method and set(ev["splits"]) == {"glt/test_glt", "glt/test_cbl", "glt/test_gbl"}
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert len(lines) == (3 if method == "crt" else 2)
    state = torch.load(tmp_path / "ifl_ce" / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert state["backbone.adapter.0.weight"].shape == (16, FeatureStore(store).feature_dim)
    assert state["head.weight"].shape[1] == 16
    ifl_lines = [json.loads(x) for x in (tmp_path / "ifl_ce" / "metrics.jsonl").read_text().splitlines()]
    assert ifl_lines[1]["center_loss"] > 0  # trained on the environment sampler's tagged indices, with the center loss
    before = json.loads((tmp_path / "blsoftmax" / "eval.json").read_text())
    (tmp_path / "blsoftmax" / "eval.json").unlink()
    capsys.readouterr()
    assert cli("eval", tmp_path / "blsoftmax") == 0
    assert json.loads((tmp_path / "blsoftmax" / "eval.json").read_text()) == before


@pytest.mark.parametrize("method", ["logit_adj_loss", "focal", "ldam", "lws", "tau_norm", "tde", "irm+blsoftmax"])
def test_more_head_methods_run_on_the_store(tiny_benchmark, store, tmp_path, method):
    extra = ["method_args.classifier_epochs=1"] if method == "lws" else []
    run_on_store(tiny_benchmark, store, method, tmp_path / "run", "epochs=1", *extra)
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["method"] == method


def test_environment_indices_read_the_drawn_rows(tiny_benchmark, store):
    st, bench = FeatureStore(store), Benchmark(tiny_benchmark)
    ds = FeatureDataset(st, bench, "glt/train")
    n = len(ds)
    feats, labels, index = ds.__getitems__([3, 5 + n, 7 + 2 * n])
    rows = [3, 5, 7]
    assert feats.dtype == torch.float32 and index.tolist() == [3, 5 + n, 7 + 2 * n]
    assert torch.equal(feats, torch.from_numpy(np.asarray(st.features("glt/train"))[rows].astype(np.float32)))
    assert labels.tolist() == [int(bench.split("glt/train").label[r]) for r in rows]
    one = ds[5 + n]
    assert torch.equal(one[0], feats[1]) and one[2] == 5 + n


def one_line_error(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_a_store_of_another_benchmark_is_refused(tiny_benchmark, cnn, tmp_path):
    other = make_tiny_benchmark(tmp_path / "other", num_classes=5)
    out = tmp_path / "other_store"
    extract_features(other, "small_cnn", out, weights_file=str(cnn[0]), options={"width": WIDTH}, progress=False)
    with pytest.raises(GLTError) as e:
        run_on_store(tiny_benchmark, out, "ce", tmp_path / "run", "epochs=1")
    one_line_error(e, str(out), "glt/train", "does not match")


def test_a_missing_or_incomplete_split_is_refused(tiny_benchmark, cnn, tmp_path):
    out = tmp_path / "part"
    extract_features(tiny_benchmark, "small_cnn", out, weights_file=str(cnn[0]), options={"width": WIDTH},
                     splits=["glt/train", "glt/test_glt", "glt/test_cbl", "glt/test_gbl"], progress=False)
    with pytest.raises(GLTError) as e:
        run_on_store(tiny_benchmark, out, "ce", tmp_path / "run", "epochs=1")
    one_line_error(e, str(out), "glt/val")
    extract_features(tiny_benchmark, "small_cnn", out, weights_file=str(cnn[0]), options={"width": WIDTH},
                     splits=["glt/val"], progress=False)
    prog = out / "glt" / "test_gbl.progress.json"
    prog.write_text(json.dumps({**json.loads(prog.read_text()), "complete": False}))
    with pytest.raises(GLTError) as e:
        run_on_store(tiny_benchmark, out, "ce", tmp_path / "run2", "epochs=1")
    one_line_error(e, str(out), "glt/test_gbl", "incomplete")
    with pytest.raises(GLTError) as e:
        build_config(method="ce", benchmark=str(tiny_benchmark), overrides=[f"data.features={tmp_path / 'nowhere'}"])
    one_line_error(e, "data.features", "nowhere")


@pytest.mark.parametrize("method, named", [("mixup", "mixes input images"), ("bbn", "branches"),
                                           ("ifl+ride", "'ride'"), ("randaug", "RandAugment"), ("lff", "biased")])
def test_a_method_that_needs_images_is_refused(tiny_benchmark, store, method, named):
    with pytest.raises(GLTError) as e:
        build_config(method=method, benchmark=str(tiny_benchmark), overrides=[*FAST, f"data.features={store}"])
    one_line_error(e, f"method '{method}'", "feature store", named)


def test_a_declared_need_decides_over_the_table():
    from glt.methods.feature_support import image_reason

    assert image_reason(type("M", (), {"name": "mine", "needs_images": "it crops images"})) == "it crops images"
    assert image_reason(type("M", (), {"name": "mixup", "needs_images": False})) is None  # the class's word wins
    assert image_reason(type("M", (), {"name": "mine", "needs_images": True})) == "it needs images"
    assert "text tower" in image_reason(type("M", (), {"name": "clip", "needs_text_tower": True}))
    assert image_reason(type("M", (), {"name": "mine"})) is None


def test_image_settings_do_not_apply_to_a_store(tiny_benchmark, store, cnn):
    for extra, key in ((f"model.weights_file={cnn[0]}", "model.weights_file"), ("data.augment=randaugment", "augment")):
        with pytest.raises(GLTError) as e:
            build_config(method="ce", benchmark=str(tiny_benchmark), overrides=[f"data.features={store}", extra])
        one_line_error(e, key, "data.features")
