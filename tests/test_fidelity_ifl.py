"""IFL against the original code (KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch): each test compares glt
with a plain re-implementation of what the original does, written from reading train_center_dual.py,
train_center_triple.py, train_irm_dual.py, utils/training_utils.py and utils/general_utils.py
(docs/fidelity.md, section C and section bugs)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from glt.methods import Context, Stage, resolve_method
from glt.methods.base import Output

STAGE = Stage("main", 10, sampler="environments")


# ---- the original, re-implemented from its source -------------------------------------------------------------
def orig_generate_intra_weight(cat_socres: dict, total_image: int, tg_scale: float = 4.0) -> torch.Tensor:
    """train_center_dual.py generate_intra_weight."""
    intra_weight = torch.zeros(total_image).fill_(0.0)
    for cat, cat_items in cat_socres.items():
        cat_size = len(cat_items)
        if cat_size < 5:
            for ind in list(cat_items.keys()):
                intra_weight[ind] = 1.0 / max(cat_size, 1.0)
            continue
        cat_inds = list(cat_items.keys())
        cat_scores = torch.FloatTensor([cat_items[ind] for ind in cat_inds])
        cat_scores = cat_scores - cat_scores.min()
        cat_scores = cat_scores / (cat_scores.max() + 1e-9)
        cat_scores = (1.0 - cat_scores).abs() + 1e-5
        head_mean = torch.topk(cat_scores, k=int(cat_size * 0.8), largest=False)[0].mean().item()
        tail_mean = torch.topk(cat_scores, k=int(cat_size * 0.2), largest=True)[0].mean().item()
        scale = tail_mean / head_mean + 1e-5
        exp_scale = torch.FloatTensor([tg_scale]).log() / torch.FloatTensor([scale]).log()
        exp_scale = exp_scale.clamp(min=1, max=10)
        cat_scores = cat_scores**exp_scale
        cat_scores = cat_scores + 1e-12
        cat_scores = cat_scores / cat_scores.sum()
        for ind, score in zip(cat_inds, cat_scores.tolist()):
            intra_weight[ind] = score
    return intra_weight


def orig_generate_inter_weight(all_scores: dict, total_image: int, tg_scale: float = 4.0) -> torch.Tensor:
    """train_center_dual.py generate_inter_weight."""
    inter_weight = torch.zeros(total_image).fill_(1.0)
    for ind, prb in all_scores.items():
        inter_weight[ind] = prb
    inter_weight = inter_weight - inter_weight.min()
    inter_weight = inter_weight / (inter_weight.max() + 1e-9)
    inter_weight = (1.0 - inter_weight).abs() + 1e-5
    head_mean = torch.topk(inter_weight, k=int(total_image * 0.8), largest=False)[0].mean().item()
    tail_mean = torch.topk(inter_weight, k=int(total_image * 0.2), largest=True)[0].mean().item()
    scale = tail_mean / head_mean + 1e-5
    exp_scale = (torch.FloatTensor([tg_scale]).log() / torch.FloatTensor([scale]).log()).clamp(min=1, max=10)
    inter_weight = inter_weight**exp_scale + 1e-12
    return inter_weight / inter_weight.sum()


def orig_env_by_score(all_ind, all_lab, all_prb, total_image, env_type="intra", scales=(4.0,)):
    """train_center_dual.py / train_center_triple.py update_env_by_score: one weight vector per environment."""
    cat_socres = {cat: {} for cat in sorted(set(all_lab))}
    all_scores = {}
    for ind, lab, prb in zip(all_ind, all_lab, all_prb):
        cat_socres[lab][ind] = prb  # a sample drawn twice keeps its last score
        all_scores[ind] = prb
    envs = [torch.ones(total_image)]
    for tg in scales:
        e = torch.ones(total_image)
        if env_type in ("inter", "inter_intra"):
            e = e * orig_generate_inter_weight(all_scores, total_image, tg)
        if env_type in ("intra", "inter_intra"):
            e = e * orig_generate_intra_weight(cat_socres, total_image, tg)
        envs.append(e)
    return torch.stack(envs).double().numpy()


def orig_env_by_correct(all_ind, all_lab, all_pred, total_image):
    """train_center_dual.py update_env_by_correct."""
    correct_index = [i for i, y, p in zip(all_ind, all_lab, all_pred) if p == y]
    env1 = torch.zeros(total_image)
    for idx in correct_index:
        env1[idx] = 1.0
    return torch.stack([env1, 1.0 - env1]).double().numpy()


def orig_count_dataset(all_labels) -> np.ndarray:
    """utils/general_utils.py count_dataset."""
    label_freq = {}
    for label in all_labels:
        key = str(label)
        label_freq[key] = label_freq.get(key, 0) + 1
    label_freq = dict(sorted(label_freq.items()))
    return np.array(list(label_freq.values()))


class OrigCenterTripletLoss(nn.Module):
    """utils/training_utils.py CenterTripletLoss (centers given instead of drawn)."""

    def __init__(self, centers):
        super().__init__()
        self.centers = centers
        self.triplet_loss = nn.TripletMarginLoss(margin=1.0, p=2)

    def forward(self, x, preds, labels):
        preds = preds.softmax(-1)
        idxs = torch.arange(x.shape[0])
        preds[idxs, labels] = -1
        adv_labels = preds.max(-1)[1]
        return self.triplet_loss(x, self.centers[labels], self.centers[adv_labels])


# ---- helpers ----------------------------------------------------------------------------------------------------
def _ifl(labels, batch_size=8, **settings):
    spec = resolve_method("ifl+ce")
    c = int(labels.max()) + 1
    ctx = Context(c, np.bincount(labels, minlength=c), 10, batch_size=batch_size, labels=labels)
    kw = {"rebuild_after": [5], "schedule_epochs": 10, "budget": "original", **settings}
    m = spec.create(spec.base.Settings(), spec.wrapper.Settings(**kw), ctx)
    from glt.models import create_backbone

    m.build_model(create_backbone("small_cnn", width=4))
    return m


def _logits_for(prob: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Logits whose softmax gives `prob` to the true class (the rest shared equally)."""
    p = ((1 - prob) / (num_classes - 1))[:, None].repeat(1, num_classes)
    p[torch.arange(len(labels)), labels] = prob
    return p.log()


def _draws(labels, n_draws, seed, unique_scores=True):
    """An epoch's draw sequence with repeats and undrawn samples; each draw its own score."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    rows = rng.choice(n, size=n_draws, p=np.r_[np.full(n - 7, 1.0), np.zeros(7)] / (n - 7))  # 7 never drawn
    probs = rng.uniform(0.02, 0.98, n_draws)
    return rows, probs


def _feed(m, labels, rows, probs, batch, rank=0, world=1, steps=None, start=0):
    """Feed the draws to the IFL wrapper as the training loop would on `rank` of `world` processes: each global
    batch of `batch` draws is split across the ranks every world-th draw (glt.data.samplers)."""
    c = m.ctx.num_classes
    idx = np.arange(len(rows))[rank::world]
    b = batch // world
    chunks = [idx[i : i + b] for i in range(0, len(idx), b)]
    for k, chunk in enumerate(chunks[start : None if steps is None else start + steps]):
        r = torch.as_tensor(rows[chunk])
        y = torch.as_tensor(labels[rows[chunk]])
        logits = _logits_for(torch.as_tensor(probs[chunk], dtype=torch.float32), y, c)
        m.record_scores(Output(logits, torch.zeros(len(chunk), 1)), y, r)
    return len(chunks)


LABELS = np.repeat(np.arange(5), [40, 25, 12, 6, 3])  # a class of 3: uniform weights inside it


# ---- item 1: the scores of the epoch --------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["intra", "inter", "inter_intra"])
def test_last_score_and_undrawn_samples_as_the_original(rule):
    labels = LABELS
    m = _ifl(labels, env_rule=rule)
    rows, probs = _draws(labels, 2 * len(labels), seed=1)
    assert len(set(rows.tolist())) < len(rows)  # repeats ...
    assert len(set(rows.tolist())) < len(labels)  # ... and samples never drawn
    m.on_epoch_start(STAGE, 5)
    _feed(m, labels, rows, probs, batch=8)
    m.on_epoch_end(STAGE, 5)
    want = orig_env_by_score(rows.tolist(), labels[rows].tolist(), probs.astype(np.float32).tolist(), len(labels), rule)
    np.testing.assert_allclose(m.env_weights.numpy(), want, rtol=1e-4, atol=1e-9)
    if rule == "intra":
        undrawn = np.setdiff1d(np.arange(len(labels)), rows)
        assert (m.env_weights[1].numpy()[undrawn] == 0).all()


def test_correctness_rule_as_the_original():
    labels = LABELS
    m = _ifl(labels, env_rule="correctness")
    rows, _ = _draws(labels, 2 * len(labels), seed=2)
    rng = np.random.default_rng(3)
    right = rng.random(len(rows)) < 0.5  # each draw right or wrong on its own
    probs = np.where(right, 0.9, 0.1)  # true-class score above / below every other class's (5 classes)
    m.on_epoch_start(STAGE, 5)
    _feed(m, labels, rows, probs, batch=8)
    m.on_epoch_end(STAGE, 5)
    preds = np.where(right, labels[rows], -1)
    want = orig_env_by_correct(rows.tolist(), labels[rows].tolist(), preds.tolist(), len(labels))
    np.testing.assert_array_equal(m.env_weights.numpy(), want)


def test_mean_and_carry_settings_keep_glts_former_rule():
    labels = LABELS
    m = _ifl(labels, epoch_scores="mean", undrawn="carry")
    rows, probs = _draws(labels, 2 * len(labels), seed=4)
    m.on_epoch_start(STAGE, 5)
    _feed(m, labels, rows, probs, batch=8)
    m.on_epoch_end(STAGE, 5)
    mean = np.bincount(rows, weights=probs.astype(np.float32), minlength=len(labels)) / np.maximum(
        np.bincount(rows, minlength=len(labels)), 1)
    drawn = np.bincount(rows, minlength=len(labels)) > 0
    np.testing.assert_allclose(m.scores.numpy()[drawn], mean[drawn], rtol=1e-6)
    assert (m.env_weights[1].numpy() > 0).all()  # undrawn samples get their class's mean, not weight 0


def test_undrawn_samples_keep_no_old_score():
    """The original's rebuild sees only the rebuild epoch's draws: a score from an earlier epoch is not used."""
    labels = LABELS
    m = _ifl(labels)
    rows0, probs0 = np.arange(len(labels)), np.full(len(labels), 0.5)  # epoch 4: every sample drawn
    m.on_epoch_start(STAGE, 4)
    _feed(m, labels, rows0, probs0, batch=8)
    m.on_epoch_end(STAGE, 4)
    rows, probs = _draws(labels, len(labels), seed=5)
    m.on_epoch_start(STAGE, 5)
    _feed(m, labels, rows, probs, batch=8)
    m.on_epoch_end(STAGE, 5)
    want = orig_env_by_score(rows.tolist(), labels[rows].tolist(), probs.astype(np.float32).tolist(), len(labels))
    np.testing.assert_allclose(m.env_weights.numpy(), want, rtol=1e-4, atol=1e-9)


def test_scores_resume_mid_epoch():
    """A checkpoint written inside the scoring epoch, loaded into a fresh wrapper, ends with the same
    environments (the trainer: on_epoch_start, then load_state_dict, then the remaining steps)."""
    labels = LABELS
    rows, probs = _draws(labels, 2 * len(labels), seed=6)
    full = _ifl(labels)
    full.on_epoch_start(STAGE, 5)
    _feed(full, labels, rows, probs, batch=8)
    full.on_epoch_end(STAGE, 5)
    part = _ifl(labels)
    part.on_epoch_start(STAGE, 5)
    _feed(part, labels, rows, probs, batch=8, steps=11)
    state = part.state_dict()
    resumed = _ifl(labels)
    resumed.on_epoch_start(STAGE, 5)
    resumed.load_state_dict(state)
    _feed(resumed, labels, rows, probs, batch=8, start=11)
    resumed.on_epoch_end(STAGE, 5)
    torch.testing.assert_close(resumed.env_weights, full.env_weights)


def _ddp_worker(rank, world, port, out_dir):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        labels = LABELS
        m = _ifl(labels)
        rows, probs = _draws(labels, 2 * len(labels), seed=7)
        m.on_epoch_start(STAGE, 5)
        _feed(m, labels, rows, probs, batch=8, rank=rank, world=world)
        m.on_epoch_end(STAGE, 5)
        np.save(os.path.join(out_dir, f"env{rank}.npy"), m.env_weights.numpy())
    finally:
        dist.destroy_process_group()


def test_last_means_the_global_batch_order_on_two_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    rows, probs = _draws(LABELS, 2 * len(LABELS), seed=7)
    want = orig_env_by_score(rows.tolist(), LABELS[rows].tolist(), probs.astype(np.float32).tolist(), len(LABELS))
    for r in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"env{r}.npy"), want, rtol=1e-4, atol=1e-9)


# ---- further schedule / environment rules ---------------------------------------------------------------------
def test_three_environments_use_the_triple_scripts_scales():
    """train_center_triple.py: e2 with sample_scale // 2, e3 with sample_scale."""
    labels = LABELS
    m = _ifl(labels, num_envs=3, batch_size=9)
    rows, probs = _draws(labels, 3 * len(labels), seed=8)
    m.on_epoch_start(STAGE, 5)
    _feed(m, labels, rows, probs, batch=9)
    m.on_epoch_end(STAGE, 5)
    want = orig_env_by_score(rows.tolist(), labels[rows].tolist(), probs.astype(np.float32).tolist(), len(labels),
                             scales=(4.0 // 2, 4.0))
    np.testing.assert_allclose(m.env_weights.numpy(), want, rtol=1e-4, atol=1e-9)


def test_budget_and_rebuilds_follow_the_original():
    """Each environment is a DistributionSampler of len(dataset) draws (budget=original; the default budget is
    glt's matched one, N / num_envs per environment); the environments are rebuilt at the end of epochs 60 and
    80 (update_milestones) or after every epoch (always_update, irm_dual / env_dual)."""
    labels = LABELS
    m = _ifl(labels, rebuild_after=[60, 80], budget="original")
    assert m.sampler_options(STAGE)["samples_per_env"] == len(labels)
    matched = _ifl(labels, rebuild_after=[60, 80], budget="matched")
    assert matched.sampler_options(STAGE)["samples_per_env"] == len(labels) // 2
    every = _ifl(labels, rebuild_every_epoch=True)
    for epoch in (0, 1, 2):
        every.on_epoch_start(STAGE, epoch)
        _feed(every, labels, np.arange(len(labels)), np.full(len(labels), 0.5), batch=8)
        assert "ifl_environments" in every.on_epoch_end(STAGE, epoch)


def test_alpha_schedule_is_get_center_weight():
    """train_center_dual.py get_center_weight with center_milestones [0, 60, 80], weights [0, 0.001, 0.005]."""
    def orig(epoch, milestones=(0, 60, 80), weights=(0.0, 0.001, 0.005)):
        w = weights[0]
        for i, ms in enumerate(milestones):
            if epoch >= ms:
                w = weights[i]
        return w

    spec = resolve_method("ifl")
    labels = LABELS
    ctx = Context(5, np.bincount(labels), 100, batch_size=8, labels=labels)
    m = spec.create(spec.base.Settings(), spec.wrapper.Settings(), ctx)
    assert [m.alpha(e) for e in range(100)] == [orig(e) for e in range(100)]


# ---- item 2: the triplet center loss ----------------------------------------------------------------------------
def test_triplet_center_loss_is_torchs_triplet_margin_loss():
    from glt.methods.ifl import center_loss

    torch.manual_seed(0)
    f = torch.randn(12, 6, requires_grad=True)
    centers = torch.randn(4, 6, requires_grad=True)
    logits = torch.randn(12, 4)
    y = torch.randint(0, 4, (12,))
    got = center_loss("triplet", f, y, centers, logits, margin=1.0)
    f2, c2 = f.detach().clone().requires_grad_(True), centers.detach().clone().requires_grad_(True)
    want = OrigCenterTripletLoss(c2)(f2, logits.clone(), y)
    torch.testing.assert_close(got, want)
    got.backward()
    want.backward()
    torch.testing.assert_close(f.grad, f2.grad)
    torch.testing.assert_close(centers.grad, c2.grad)


# ---- item 3: the initial centers ------------------------------------------------------------------------------
def test_initial_centers_come_from_the_runs_seed():
    """The original's CenterLoss draws nn.Parameter(torch.randn(C, D)) from the seeded global RNG after the
    model is built (main.py seeds it with --seed)."""
    from glt.models import create_backbone

    labels = LABELS
    spec = resolve_method("ifl+ce")
    got = {}
    for seed in (3, 4):
        ctx = Context(5, np.bincount(labels), 10, batch_size=8, labels=labels)
        torch.manual_seed(seed)
        m = spec.create(spec.base.Settings(), spec.wrapper.Settings(), ctx)
        model = m.build_model(create_backbone("small_cnn", width=4))
        got[seed] = m.centers.detach().clone()
        torch.manual_seed(seed)
        ref_model = spec.base(spec.base.Settings(), ctx).build_model(create_backbone("small_cnn", width=4))
        want = torch.randn(5, ref_model.feature_dim)
        torch.testing.assert_close(got[seed], want)
        assert model.feature_dim == ref_model.feature_dim
    assert not torch.equal(got[3], got[4])


# ---- item 7: the count_dataset bug, as an explicit option -------------------------------------------------------
@pytest.mark.parametrize("method", ["blsoftmax", "ldam", "ride", "tade", "ifl+blsoftmax"])
def test_prior_order_original_text_sort_reproduces_count_dataset(method):
    rng = np.random.default_rng(0)
    c = 23
    counts = np.sort(rng.integers(5, 400, c))[::-1]  # label 0 the largest
    labels = rng.permutation(np.repeat(np.arange(c), counts))
    spec = resolve_method(method)
    right = Context(c, np.bincount(labels, minlength=c), 10, labels=labels)
    spec.create(spec.base.Settings(), spec.wrapper_settings(), right)
    np.testing.assert_array_equal(right.class_counts, np.bincount(labels))  # the default: entry c is class c
    bug = Context(c, np.bincount(labels, minlength=c), 10, labels=labels, prior_order="original_text_sort")
    spec.create(spec.base.Settings(), spec.wrapper_settings(), bug)
    want = orig_count_dataset(labels.tolist())
    np.testing.assert_array_equal(bug.class_counts, want)
    torch.testing.assert_close(bug.prior, torch.as_tensor(want / want.sum(), dtype=torch.float32))
    np.testing.assert_array_equal(bug.label_counts, np.bincount(labels))
    assert not np.array_equal(want, np.bincount(labels))  # more than 10 classes: misaligned


@pytest.mark.parametrize("method", ["ce", "logit_adj", "bbn", "focal"])
def test_prior_order_leaves_integer_keyed_counts_alone(method):
    """compute_adjustment (logit adjustment) and train_bbn.py count with integer keys: right in the original."""
    labels = np.repeat(np.arange(12), np.arange(12, 0, -1) * 3)
    ctx = Context(12, np.bincount(labels), 10, batch_size=8, labels=labels, prior_order="original_text_sort")
    spec = resolve_method(method)
    spec.create(spec.base.Settings(), None, ctx)
    np.testing.assert_array_equal(ctx.class_counts, np.bincount(labels))


def test_prior_order_is_a_config_key_off_in_the_paper_preset(tmp_path):
    from glt.config import build_config
    from glt.errors import GLTError

    from conftest import make_tiny_benchmark

    bench = make_tiny_benchmark(tmp_path / "b")
    assert build_config(method="blsoftmax", benchmark=str(bench)).data.prior_order == "label"
    cfg = build_config(method="blsoftmax", benchmark=str(bench), overrides=["data.prior_order=original_text_sort"])
    assert cfg.data.prior_order == "original_text_sort"
    with pytest.raises(GLTError, match="prior_order"):
        build_config(method="blsoftmax", benchmark=str(bench), overrides=["data.prior_order=text"])
    with pytest.raises(GLTError, match="prior_order"):
        Context(3, np.ones(3), 1, prior_order="text")


# ---- further: ifl+ldam scores the classifier's cosines ----------------------------------------------------------
def test_ldam_scores_are_the_softmax_of_the_cosines():
    """train_center_ldam_dual.py scores softmax(predictions) where ClassifierLDAM's predictions are the cosines
    (LDAMLoss multiplies by s = 30 itself); glt's LDAM logits are s * cos."""
    spec = resolve_method("ifl+ldam")
    labels = LABELS
    ctx = Context(5, np.bincount(labels), 10, batch_size=8, labels=labels)
    m = spec.create(spec.base.Settings(), spec.wrapper.Settings(rebuild_after=[5], schedule_epochs=10), ctx)
    torch.manual_seed(0)
    cos = torch.rand(len(labels), 5) * 2 - 1
    rows = torch.arange(len(labels))
    y = torch.as_tensor(labels)
    m.on_epoch_start(STAGE, 5)
    m.record_scores(Output(30.0 * cos, torch.zeros(len(labels), 1)), y, rows)
    m.on_epoch_end(STAGE, 5)
    want = cos.softmax(1)[rows, y]
    torch.testing.assert_close(m.scores, want)
    trained = spec.create(spec.base.Settings(), spec.wrapper.Settings(score_logits="trained"), ctx)
    assert trained.score_divisor == 1.0 and m.score_divisor == 30.0
