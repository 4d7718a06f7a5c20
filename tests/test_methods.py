"""The method zoo: every registered method (and the IFL combinations of the paper) trains one short epoch on
the tiny benchmark and predicts; every loss and test-time rule is checked against its formula written out
by hand (numpy, loops) on small inputs."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from omegaconf import OmegaConf

from conftest import fast_overrides
from glt.cli.main import main
from glt.config import OptimConfig, build_config
from glt.runtime.checkpoint import load_checkpoint
from glt.runtime.run_dir import RunDir
from glt.engine import trainer
from glt.engine.trainer import Setup, stage_optim, train
from glt.errors import GLTError
from glt.methods import Context, Output, Stage, combinations, resolve_method, zoo_names
from glt.methods.bbn import reversed_weights
from glt.methods.losses import class_balanced_weights, ldam_margins
from glt.methods.lff import generalized_ce
from glt.methods.tade import inverse_prior
from glt.models import create_backbone, create_head
from glt.models.branched import BranchedBackbone

COUNTS = np.array([6, 3, 1])
BN_STATS = {"running_mean", "running_var", "num_batches_tracked"}
# every base method IFL can wrap, from the registry (a new method is trained here without editing this file)
IFL_COMBOS = ["ifl", *combinations("ifl")]
# one epoch of every stage; IFL's center loss on from the first epoch and environments rebuilt after it
SHORT = {"crt": ["method_args.classifier_epochs=1"], "lws": ["method_args.classifier_epochs=1"]}
IFL_SHORT = ["wrapper_args.alpha_milestones=[0,0]", "wrapper_args.rebuild_after=[0]"]
COSINE_CENTER = {"ride", "ldam"}  # normalised classifiers: IFL's cosine center loss (the paper's setting)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions on a loaded 2-core machine run ~20x faster on one thread than on two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def method(name: str, counts=COUNTS, epochs: int = 10, batch_size: int = 8, **settings):
    spec = resolve_method(name)
    labels = np.repeat(np.arange(len(counts)), counts)
    ctx = Context(len(counts), np.asarray(counts), epochs, batch_size=batch_size, labels=labels)
    return spec.create(spec.base.Settings(**settings), spec.wrapper_settings(), ctx)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_reference(logits, labels, weight=None):
    """Cross-entropy written out: mean (or class-weighted mean) of -log softmax(z)_y."""
    p = softmax(np.asarray(logits, dtype=np.float64))
    nll = np.array([-math.log(p[i, y]) for i, y in enumerate(labels)])
    w = np.ones(len(labels)) if weight is None else np.array([weight[y] for y in labels])
    return float((w * nll).sum() / w.sum())


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


LOGITS = rand(5, 3)
LABELS = torch.tensor([0, 1, 2, 0, 2])


def loss_of(m, logits=LOGITS, labels=LABELS, **extra):
    return float(m.loss(Output(logits, torch.zeros(len(logits), 1), extra), labels).detach())


# ---- every method end to end ----------------------------------------------------------------------------


def _train(tiny_benchmark, out, name, extra=()):
    base = name.split("+")[-1]
    over = fast_overrides(1) + SHORT.get(base, []) + list(extra)
    if "+" in name:
        over += IFL_SHORT + (["wrapper_args.center_loss=cosine"] if base in COSINE_CENTER else [])
    cfg = build_config(method=name, benchmark=str(tiny_benchmark), overrides=over)
    return train(cfg, out)


@pytest.mark.parametrize("name", zoo_names() + IFL_COMBOS)  # zeroshot: tests/test_zeroshot_lift.py
def test_every_method_trains_one_epoch_and_predicts(tiny_benchmark, tmp_path, name):
    results = _train(tiny_benchmark, tmp_path / "run", name)
    assert set(results) == {"glt/test_glt", "glt/test_cbl", "glt/test_gbl"}
    for split, metrics in results.items():
        assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["precision"] <= 1.0
        rows = (tmp_path / "run" / "predictions" / (split.replace("/", "__") + ".csv")).read_text().splitlines()
        assert rows[0] == "id,prediction" and len(rows) > 1
        assert all(0 <= int(r.split(",")[1]) < 4 for r in rows[1:])
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(math.isfinite(x["train_loss"]) for x in lines)
    if "+" in name:
        assert any("center_loss" in x for x in lines)  # the center loss ran on the method's features


@pytest.mark.parametrize("name", zoo_names() + IFL_COMBOS)  # zeroshot: tests/test_zeroshot_lift.py
def test_methods_command_shows_every_method(name, capsys):
    with pytest.raises(SystemExit) as e:
        main(["methods", name])
    assert e.value.code == 0
    assert name.split("+")[-1] in capsys.readouterr().out


def test_bbn_cannot_be_combined_with_ifl_environments(tiny_benchmark):
    cfg = build_config(method="ifl+bbn", benchmark=str(tiny_benchmark), overrides=fast_overrides(1))
    with pytest.raises(GLTError, match="environments"):
        Setup(cfg).method.stages()


# ---- class-prior losses -----------------------------------------------------------------------------


def test_balanced_softmax_and_logit_adjusted_loss_are_ce_on_prior_shifted_logits():
    prior = COUNTS / COUNTS.sum()
    z = LOGITS.numpy().astype(np.float64)
    for tau in (1.0, 0.5):
        # -log(p_y^tau e^{z_y} / sum_j p_j^tau e^{z_j}), written with the prior outside the exponent
        ref = np.mean([
            -math.log(prior[y] ** tau * math.exp(z[i, y]) / sum(prior[j] ** tau * math.exp(z[i, j]) for j in range(3)))
            for i, y in enumerate(LABELS.tolist())
        ])
        assert loss_of(method("logit_adj_loss", tau=tau)) == pytest.approx(ref, rel=1e-5)
        assert loss_of(method("blsoftmax", prior_power=tau)) == pytest.approx(ref, rel=1e-5)


def test_logit_adjusted_loss_predicts_with_plain_logits():
    m = method("logit_adj_loss")
    model = m.build_model(create_backbone("small_cnn", width=4)).eval()
    x = rand(2, 3, 16, 16)
    torch.testing.assert_close(m.predict_logits(model, x), model(x))


def test_focal_loss_with_gamma_0_is_ce_and_follows_its_formula():
    assert loss_of(method("focal", gamma=0.0)) == pytest.approx(float(F.cross_entropy(LOGITS, LABELS)), rel=1e-6)
    p = softmax(LOGITS.numpy().astype(np.float64))
    ref = np.mean([-(1 - p[i, y]) ** 2 * math.log(p[i, y]) for i, y in enumerate(LABELS.tolist())])
    assert loss_of(method("focal", gamma=2.0)) == pytest.approx(ref, rel=1e-5)


# ---- LDAM-DRW and RIDE ------------------------------------------------------------------------------


def test_ldam_margins_follow_n_to_the_minus_quarter_scaled_to_half():
    counts = np.array([100, 10, 1])
    np.testing.assert_allclose(ldam_margins(counts), [0.5 / 100**0.25, 0.5 / 10**0.25, 0.5])
    np.testing.assert_allclose(ldam_margins(np.array([16, 81]), 0.3), [0.3, 0.3 * 2 / 3])


def test_class_balanced_weights():
    beta = 0.9
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    np.testing.assert_allclose(class_balanced_weights(COUNTS, beta), np.array(raw) * 3 / sum(raw))


def _cosine_logits(head, features):
    w = head.weight.detach().numpy().astype(np.float64)
    f = features.numpy().astype(np.float64)
    cos = np.array([[f[i] @ w[c] / np.linalg.norm(f[i]) / np.linalg.norm(w[c]) for c in range(len(w))]
                    for i in range(len(f))])
    return head.scale * cos


def test_ldam_loss_and_deferred_reweighting():
    m = method("ldam", epochs=10, beta=0.9)
    model = m.build_model(create_backbone("small_cnn", width=4))
    features = rand(5, model.feature_dim)
    logits = model.head(features)
    cos_logits = _cosine_logits(model.head, features)
    np.testing.assert_allclose(logits.detach().numpy(), cos_logits, rtol=1e-5, atol=1e-5)
    margins = ldam_margins(COUNTS)
    shifted = cos_logits.copy()
    for i, y in enumerate(LABELS.tolist()):
        shifted[i, y] -= 30 * margins[y]  # s * (cos - m_y) on the true class
    for epoch, weight in ((7, None), (8, class_balanced_weights(COUNTS, 0.9))):  # DRW from 80% of 10 epochs
        m.on_epoch_start(Stage("main", 10), epoch)
        assert loss_of(m, logits, LABELS) == pytest.approx(ce_reference(shifted, LABELS.tolist(), weight), rel=1e-5)


def test_ride_loss_is_ldam_per_expert_plus_diversity():
    m = method("ride", epochs=10, beta=0.9, reweight_factor=0.5)
    expert = rand(5, 3, 3, seed=1) * 5  # (B, experts, C)
    mean = expert.mean(1)
    margins = ldam_margins(COUNTS)
    prior = COUNTS / COUNTS.sum()
    for epoch, reweight in ((8, False), (9, True)):  # the original: re-weighting for epoch > 0.8 * epochs
        m.on_epoch_start(Stage("main", 10), epoch)
        weight = class_balanced_weights(COUNTS, 0.9) if reweight else None
        if reweight:
            t = 3 * prior * 0.5 + 1 - 0.5
            t = t / t.max()
        else:
            t = np.ones(3)
        ref = 0.0
        for e in range(3):
            z = expert[:, e].numpy().astype(np.float64)
            shifted = z.copy()
            for i, y in enumerate(LABELS.tolist()):
                shifted[i, y] -= 30 * margins[y]
            ref += ce_reference(shifted, LABELS.tolist(), weight)
            target = softmax(mean.numpy() / t)
            log_q = np.log(softmax(z / t))
            kl = np.sum(target * (np.log(target) - log_q)) / len(z)
            ref += -0.2 * t.mean() ** 2 * kl
        got = loss_of(m, mean, LABELS, expert_logits=expert)
        assert got == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize("in_features,num_classes", [(4, 3), (128, 10), (2048, 7)])
def test_cosine_head_starts_like_the_originals_normed_linear(in_features, num_classes):
    """LDAM-DRW, RIDE, TADE and the study build their normalised classifier as a (in, out) weight
    `uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)`: unit-norm class vectors. The norm sets the effective
    learning rate of a scale-invariant head, so it is part of the method (nn.Linear's init is ~0.58)."""
    torch.manual_seed(3)
    original = torch.empty(num_classes, in_features).uniform_(-1, 1).t().renorm(2, 1, 1e-5).mul(1e5).t()
    torch.manual_seed(3)
    head = create_head("cosine", in_features, num_classes, scale=30.0)
    torch.testing.assert_close(head.weight.detach(), original)
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(num_classes))
    experts = create_head("multi_expert", 3 * in_features, num_classes, num_experts=3, expert_head="cosine")
    for expert in experts.experts:
        torch.testing.assert_close(expert.weight.norm(dim=1), torch.ones(num_classes))


def test_ride_and_tade_experts_share_early_layers():
    m = method("ride")
    backbone = create_backbone("small_cnn", width=4)
    model = m.build_model(backbone)
    assert len(model.backbone.branches) == 3 and len(model.backbone.trunk) == 3  # stem + 2 shared blocks
    x = rand(2, 3, 16, 16)
    out = m.forward(model, x)
    # reduced-width experts (the original's reduce_dimension): 3/4 of the backbone's features each
    assert model.backbone.branch_features == 3 * backbone.out_features // 4
    assert out.features.shape == (2, 3 * model.backbone.branch_features)
    assert out.extra["expert_logits"].shape == (2, 3, 3)
    torch.testing.assert_close(out.logits, out.extra["expert_logits"].mean(1))
    # each expert's logits come from its own branch and cosine head
    f1 = model.backbone.forward_branch(x, 1)
    torch.testing.assert_close(out.extra["expert_logits"][:, 1], model.head.experts[1](f1))


def test_multistep_methods_scale_their_milestones_with_the_epochs():
    for name, epochs in (("ldam", [8, 9]), ("ride", [6, 8]), ("bbn", [6, 8])):
        (stage,) = method(name, epochs=10).stages()
        optim = OmegaConf.structured(OptimConfig)
        assert list(stage_optim(optim, stage).milestones) == epochs
        optim.milestones = [3]  # the user's explicit milestones win
        assert list(stage_optim(optim, stage).milestones) == [3]


def test_method_train_defaults_reach_the_config(tiny_benchmark):
    ldam = build_config(method="ldam", benchmark=str(tiny_benchmark))
    assert (ldam.optim.schedule, ldam.optim.gamma, ldam.optim.weight_decay) == ("multistep", 0.01, 2e-4)
    assert build_config(method="randaug", benchmark=str(tiny_benchmark)).data.augment == "randaugment"
    assert build_config(method="ifl+randaug", benchmark=str(tiny_benchmark)).data.augment == "randaugment"


# ---- TADE -------------------------------------------------------------------------------------------


def test_inverse_prior_hands_out_the_values_in_reverse_rank():
    torch.testing.assert_close(inverse_prior(torch.tensor([0.6, 0.3, 0.1])), torch.tensor([0.1, 0.3, 0.6]))
    torch.testing.assert_close(inverse_prior(torch.tensor([0.3, 0.6, 0.1])), torch.tensor([0.3, 0.1, 0.6]))


def test_tade_expert_losses():
    m = method("tade", tau=2.0)
    expert = rand(5, 3, 3, seed=2) * 3
    p = COUNTS / COUNTS.sum()
    inv = p[::-1]  # COUNTS is sorted: the reversed prior
    y = LABELS.tolist()
    z = expert.numpy().astype(np.float64)
    ref = (ce_reference(z[:, 0], y)  # expert 1: the long-tailed distribution
           + ce_reference(z[:, 1] + np.log(p), y)  # expert 2: Balanced Softmax
           + ce_reference(z[:, 2] + np.log(p) - 2.0 * np.log(inv), y))  # expert 3: inverse prior
    assert loss_of(m, expert.mean(1), LABELS, expert_logits=expert) == pytest.approx(ref, rel=1e-4)


# ---- decoupling ---------------------------------------------------------------------------------------


def test_tau_norm_with_tau_0_is_the_identity_and_tau_1_normalises_the_weights():
    x = rand(4, 3, 16, 16)
    m0 = method("tau_norm", tau=0.0)
    model = m0.build_model(create_backbone("small_cnn", width=4)).eval()
    assert model.head.bias is None  # the original's linear heads have no bias
    for bias in (False, True):  # the default head, and one built with a bias
        torch.manual_seed(1)
        model.head = create_head("linear", model.feature_dim, 3, bias=bias)
        with torch.no_grad():
            torch.testing.assert_close(m0.predict_logits(model, x), model(x))
            m1 = method("tau_norm", tau=1.0)
            f = model.forward_features(x).numpy().astype(np.float64)
            w = model.head.weight.numpy().astype(np.float64)
            b = model.head.bias.numpy().astype(np.float64) if bias else np.zeros(3)
            ref = np.array([[f[i] @ (w[c] / np.linalg.norm(w[c])) + b[c] for c in range(3)] for i in range(4)])
            np.testing.assert_allclose(m1.predict_logits(model, x).numpy(), ref, rtol=1e-4, atol=1e-5)


def test_lws_with_unit_scales_equals_the_plain_head_and_learns_only_scales_in_stage_two():
    plain = create_head("linear", 8, 3)
    lws = create_head("lws", 8, 3)
    lws.load_state_dict(plain.state_dict(), strict=False)
    f = rand(4, 8)
    torch.testing.assert_close(lws(f), plain(f))
    m = method("lws")
    model = m.build_model(create_backbone("small_cnn", width=4))
    head = model.head
    m.on_epoch_start(Stage("main", 10), 0)
    assert head.weight.requires_grad and not head.scales.requires_grad
    m.on_epoch_start(Stage("classifier", 10, "class_aware", "head"), 3)
    assert head.bias is None  # as the original's models/ClassifierLWS.py
    assert not head.weight.requires_grad and head.scales.requires_grad
    loss, _, _ = m.training_step(model, rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 0]), torch.arange(4))
    loss.backward()
    assert head.weight.grad is None and head.scales.grad.abs().sum() > 0
    with torch.no_grad():
        lws.scales.copy_(torch.tensor([2.0, 1.0, 0.5]))
    torch.testing.assert_close(lws(f), plain(f) * torch.tensor([2.0, 1.0, 0.5]))


def test_crt_reinitialises_only_the_head_at_the_start_of_stage_two():
    m = method("crt")
    model = m.build_model(create_backbone("small_cnn", width=4))
    head0 = model.head.weight.detach().clone()
    backbone0 = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    assert [s.trainable for s in m.stages()] == ["all", "head"]
    assert m.sampler_options(m.stages()[1]) == {"per_class": 4}
    m.on_epoch_start(m.stages()[0], 0)
    torch.testing.assert_close(model.head.weight, head0)
    second = m.stages()[1]
    m.on_epoch_start(second, 1)  # a resumed stage 2 keeps its head
    torch.testing.assert_close(model.head.weight, head0)
    m.on_epoch_start(second, 0)
    assert not torch.equal(model.head.weight, head0)
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, backbone0[k])


def test_decoupled_second_stage_from_an_earlier_run(tiny_benchmark, tmp_path):
    first = tmp_path / "ce"
    _train(tiny_benchmark, first, "ce")
    ce = load_checkpoint(first / "checkpoints" / "best.pt")["model"]
    for name in ("crt", "lws", "tau_norm"):
        out = tmp_path / name
        _train(tiny_benchmark, out, name, [f"method_args.init_from={first}"])
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert {x["stage_index"] for x in lines} == {0}  # only the second stage ran
        got = load_checkpoint(out / "checkpoints" / "best.pt")["model"]
        stats = {k for k in ce if k.startswith("backbone.") and k.rsplit(".", 1)[1] in BN_STATS}
        assert stats
        for k, v in ce.items():
            if k.startswith("backbone.") and k not in stats:  # frozen parameters
                torch.testing.assert_close(got[k], v, msg=f"{name}: {k}")
        for k in stats:
            if name == "tau_norm":  # nothing trained: the checkpoint's BatchNorm statistics
                torch.testing.assert_close(got[k], ce[k], msg=f"{name}: {k}")
            else:  # the backbone stays in train mode in stage 2, as the original's train_stage2.py
                assert not torch.equal(got[k], ce[k]), f"{name}: {k}"
        if name == "crt":
            assert not torch.equal(got["head.weight"], ce["head.weight"])
        else:
            torch.testing.assert_close(got["head.weight"], ce["head.weight"])
        if name == "lws":
            assert not torch.equal(got["head.scales"], torch.ones(4))
    # a finished run is re-scored (`glt eval`) without its first-stage folder
    before = (tmp_path / "lws" / "eval.json").read_text()
    shutil.move(first, tmp_path / "moved")
    run = RunDir(tmp_path / "lws")
    trainer.test_run(Setup(run.load_config()), run)
    assert (tmp_path / "lws" / "eval.json").read_text() == before
    with pytest.raises(GLTError, match="init_from"):
        _train(tiny_benchmark, tmp_path / "bad", "crt", [f"method_args.init_from={tmp_path / 'nowhere'}"])
    with pytest.raises(GLTError, match="does not fit"):  # an LDAM run has a cosine head without bias
        ldam = tmp_path / "ldam"
        _train(tiny_benchmark, ldam, "ldam")
        _train(tiny_benchmark, tmp_path / "bad2", "lws", [f"method_args.init_from={ldam}"])


def test_lws_resumed_inside_stage_two_matches_the_uninterrupted_run(tiny_benchmark, tmp_path, monkeypatch):
    over = fast_overrides(1) + ["method_args.classifier_epochs=2", "seed=1"]
    cfg = build_config(method="lws", benchmark=str(tiny_benchmark), overrides=over)
    train(cfg, tmp_path / "full")
    cls = resolve_method("lws").base
    epoch_start = cls.on_epoch_start

    def interrupted(self, stage, epoch):  # stop at the start of the second classifier epoch
        if (stage.name, epoch) == ("classifier", 1):
            raise KeyboardInterrupt
        epoch_start(self, stage, epoch)

    with monkeypatch.context() as patch:
        patch.setattr(cls, "on_epoch_start", interrupted)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "part")
    train(cfg, tmp_path / "part", resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert (tmp_path / "part" / "eval.json").read_text() == (tmp_path / "full" / "eval.json").read_text()


# ---- Deconfound-TDE ---------------------------------------------------------------------------------


def _tde_reference(f, w, d, heads, tau, gamma, alpha):
    """Per-head loop of the causal-norm classifier with the direct effect of d removed."""
    f, w, d = (np.asarray(a, dtype=np.float64) for a in (f, w, d))
    size = f.shape[1] // heads
    out = np.zeros((len(f), len(w)))
    for h in range(heads):
        sl = slice(h * size, (h + 1) * size)
        for i in range(len(f)):
            x = f[i, sl] / np.linalg.norm(f[i, sl])
            dh = d[sl] / np.linalg.norm(d[sl])
            x = x - alpha * (x @ dh) * dh
            for c in range(len(w)):
                out[i, c] += tau / heads * x @ (w[c, sl] / (np.linalg.norm(w[c, sl]) + gamma))
    return out


def test_tde_classifier_and_its_test_time_effect_removal():
    m = method("tde")
    assert m.alpha == 2.0 and method("tde", counts=[4, 4, 4]).alpha == 0.0  # balanced training set
    model = m.build_model(create_backbone("small_cnn", width=4))
    head = model.head
    f = rand(3, model.feature_dim)
    d = rand(model.feature_dim, seed=3)
    w = head.weight.detach()
    ref0 = _tde_reference(f, w, d, 2, 16.0, 1 / 32, 0.0)
    np.testing.assert_allclose(head(f).detach().numpy(), ref0, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(head.counterfactual(f, d, 0.0).detach().numpy(), ref0, rtol=1e-4, atol=1e-4)
    ref2 = _tde_reference(f, w, d, 2, 16.0, 1 / 32, 2.0)
    np.testing.assert_allclose(head.counterfactual(f, d, 2.0).detach().numpy(), ref2, rtol=1e-4, atol=1e-4)


def test_tde_tracks_the_moving_average_feature():
    m = method("tde", momentum=0.9)
    model = m.build_model(create_backbone("small_cnn", width=4)).train()
    x = rand(4, 3, 16, 16)
    _, out, _ = m.training_step(model, x, torch.tensor([0, 1, 2, 0]), torch.arange(4))
    torch.testing.assert_close(m.direction, 0.1 * out.features.detach().mean(0))
    model.eval()
    with torch.no_grad():
        expect = model.head.counterfactual(model.forward_features(x), m.direction, 2.0)
        torch.testing.assert_close(m.predict_logits(model, x), expect)
    state = m.state_dict()
    other = method("tde")
    other.build_model(create_backbone("small_cnn", width=4))
    other.load_state_dict(state)
    torch.testing.assert_close(other.direction, m.direction)


# ---- BBN -------------------------------------------------------------------------------------------


def test_bbn_reversed_sampling_and_cumulative_learning():
    labels = np.repeat(np.arange(3), COUNTS)
    w = reversed_weights(labels, 3)
    mass = np.bincount(labels, weights=w) / w.sum()
    np.testing.assert_allclose(mass, (1 / COUNTS) / (1 / COUNTS).sum())
    m = method("bbn", epochs=10)
    m.on_epoch_start(Stage("main", 10), 0)
    assert m.mix == pytest.approx(1 - (1 / 10) ** 2)  # the original's 1 - ((e - 1) / E)^2, 0-based e
    m.on_epoch_start(Stage("main", 10), 5)
    assert m.mix == pytest.approx(1 - (4 / 10) ** 2)
    with pytest.raises(GLTError, match="even"):
        method("bbn", batch_size=7, branch_batch="split")


def test_bbn_training_step_mixes_the_two_branches():
    m = method("bbn", epochs=10)
    n = int(COUNTS.sum())
    model = m.build_model(create_backbone("small_cnn", width=4)).eval()  # eval: BatchNorm per call is the same
    m.on_epoch_start(Stage("main", 10), 5)  # a = 1 - (4 / 10)^2
    x = rand(4, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 2])
    index = torch.tensor([0, 7, 9 + n, 8 + n])  # two uniform draws, two reversed ones
    loss, out, _ = m.training_step(model, x, y, index)
    a = 1 - (4 / 10) ** 2
    fa = model.backbone.forward_branch(x[:2], 0)
    fb = model.backbone.forward_branch(x[2:], 1)
    logits = model.head(2 * torch.cat([a * fa, (1 - a) * fb], 1))
    ref = a * F.cross_entropy(logits, y[:2]) + (1 - a) * F.cross_entropy(logits, y[2:])
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(out.logits, torch.cat([logits, logits]))
    # test time: both branches on the same image, side by side
    with torch.no_grad():
        both = torch.cat([model.backbone.forward_branch(x, 0), model.backbone.forward_branch(x, 1)], 1)
        torch.testing.assert_close(m.predict_logits(model, x), model.head(both))
    opts = m.sampler_options(m.stages()[0])
    assert opts["samples_per_env"] == n and opts["env_weights"].shape == (2, n)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_branched_backbone_with_one_branch_is_the_backbone(name):
    backbone = create_backbone(name).eval()
    branched = BranchedBackbone(backbone, 1, 1).eval()
    x = rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(branched(x), backbone(x))
    two = BranchedBackbone(backbone, 2, 2)
    assert two.out_features == 2 * backbone.out_features
    with pytest.raises(GLTError, match="branch stages"):
        BranchedBackbone(backbone, 2, 4)


def test_branched_backbone_refuses_a_backbone_it_cannot_split():
    with pytest.raises(GLTError, match="cannot split"):
        BranchedBackbone(torch.nn.Linear(3, 3), 2)


# ---- Mixup and LfF -----------------------------------------------------------------------------------


def test_mixup_loss_mixes_the_two_label_sets():
    m = method("mixup", alpha=1.0)
    model = m.build_model(create_backbone("small_cnn", width=4)).eval()
    x = rand(4, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 0])
    torch.manual_seed(0)
    loss, out, logs = m.training_step(model, x, y, torch.arange(4))
    y_a, y_b, lam = out.extra["mix"]
    assert 0 <= lam <= 1 and logs["mixup_lambda"] == lam and torch.equal(y_a, y)
    mixed = lam * F.cross_entropy(out.logits, y_a) + (1 - lam) * F.cross_entropy(out.logits, y_b)
    torch.testing.assert_close(loss, mixed)
    off = method("mixup", alpha=0.0)
    loss0, out0, _ = off.training_step(model, x, y, torch.arange(4))
    torch.testing.assert_close(out0.logits, model(x))
    torch.testing.assert_close(loss0, F.cross_entropy(model(x), y))


def test_mixup_and_randaug_evaluate_clean_images():
    """Augmentation is for training only: mixup predicts with the plain forward pass, and RandAugment is in the
    training transform only (the test transform is the default one)."""
    from torchvision.transforms import v2

    from glt.data.transforms import build_transforms

    m = method("mixup", alpha=1.0)
    model = m.build_model(create_backbone("small_cnn", width=4)).eval()
    x = rand(4, 3, 16, 16)
    torch.manual_seed(0)
    with torch.no_grad():
        torch.testing.assert_close(m.predict_logits(model, x), model(x))
    from glt.data.randaugment import RandAugment

    _, test_default = build_transforms("small", 16, "default")
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for augment, kind in (("randaugment", RandAugment), ("randaugment_torchvision", v2.RandAugment)):
        train_ra, test_ra = build_transforms("small", 16, augment)
        assert any(isinstance(t, kind) for t in train_ra.transforms)
        assert not any(isinstance(t, (RandAugment, v2.RandAugment)) for t in test_ra.transforms)
        torch.testing.assert_close(test_ra(image), test_default(image))


def test_generalized_ce_has_the_gradient_of_one_minus_p_to_the_q():
    z1 = rand(4, 3).requires_grad_(True)
    z2 = z1.detach().clone().requires_grad_(True)
    y = torch.tensor([0, 1, 2, 1])
    generalized_ce(z1, y, 0.7).sum().backward()
    p_y = F.softmax(z2, 1).gather(1, y[:, None]).squeeze(1)
    (1 - p_y**0.7).sum().backward()
    torch.testing.assert_close(z1.grad, z2.grad)


def test_lff_weights_use_per_sample_averages_divided_by_the_class_maximum():
    m = method("lff", ema=0.5, class_max=True, biased_init="copy")  # the LfF paper's form
    y = torch.tensor([0, 0, 1])
    idx = torch.tensor([0, 1, 6])
    w1 = m.sample_weights(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 1.0]), y, idx)
    # first sight: averages are the losses; class 0 maxima: biased 2, debiased 1
    lb, ld = np.array([0.5, 1.0, 1.0]), np.array([1.0, 1.0, 1.0])
    np.testing.assert_allclose(w1.numpy(), lb / (lb + ld), rtol=1e-5)
    w2 = m.sample_weights(torch.tensor([3.0]), torch.tensor([2.0]), y[:1], idx[:1])
    # sample 0 again: 0.5 * 1 + 0.5 * 3 = 2 (biased), 0.5 * 1 + 0.5 * 2 = 1.5 (debiased); class maxima 2, 1.5
    assert float(w2) == pytest.approx(1.0 / (1.0 + 1.0), rel=1e-5)
    model = m.build_model(create_backbone("small_cnn", width=4))
    assert m.extra_modules()["biased"] is not model
    for a, b in zip(model.parameters(), m.extra_modules()["biased"].parameters()):
        assert a is not b and torch.equal(a, b)
