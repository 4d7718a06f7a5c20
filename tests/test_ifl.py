"""IFL: environment weights against a slow per-class reference, samplers, center loss, schedule, resume,
and score gathering across two gloo processes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import fast_overrides
from glt.config import build_config
from glt.data.samplers import EnvironmentSampler, WeightedSampler
from glt.engine.trainer import train
from glt.methods import Context, resolve_method
from glt.methods.environments import build_environments, pareto_weights
from glt.methods.ifl import center_loss


def slow_intra_weights(scores, labels, num_classes, tg_scale=4.0):
    """The intra-class Pareto rule (docs/ifl.md, "Weights") class by class, with torch.topk as the original."""
    out = np.zeros(len(scores))
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        n = len(idx)
        if n == 0:
            continue
        if n < 5:
            out[idx] = 1.0 / n
            continue
        s = torch.tensor(scores[idx], dtype=torch.float64)
        s = s - s.min()
        s = s / (s.max() + 1e-9)
        w = (1.0 - s).abs() + 1e-5
        head = torch.topk(w, k=int(n * 0.8), largest=False)[0].mean()
        tail = torch.topk(w, k=int(n * 0.2), largest=True)[0].mean()
        scale = tail / head + 1e-5
        gamma = torch.clamp(torch.log(torch.tensor(tg_scale, dtype=torch.float64)) / torch.log(scale), 1, 10)
        w = w**gamma + 1e-12
        out[idx] = (w / w.sum()).numpy()
    return out


@pytest.mark.parametrize("seed", range(4))
def test_pareto_weights_match_reference(seed):
    rng = np.random.default_rng(seed)
    c = 15
    sizes = rng.integers(1, 60, c)
    sizes[3] = 0  # an empty class
    sizes[4] = 4  # a small class: uniform weights
    labels = rng.permutation(np.repeat(np.arange(c), sizes))
    scores = rng.beta(0.5 + seed, 0.7, len(labels))
    scores[labels == 5] = 0.3  # a class where every score ties
    got = pareto_weights(scores, labels, c)
    want = slow_intra_weights(scores, labels, c)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    # every class sums to one: e2 is class-balanced
    sums = np.bincount(labels, weights=got, minlength=c)
    np.testing.assert_allclose(sums[sizes > 0], 1.0)


def test_inter_rule_and_correctness_rule():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    scores = rng.random(200)
    inter = build_environments("inter", scores, None, labels, 4)[1]
    np.testing.assert_allclose(inter, slow_intra_weights(scores, np.zeros(200, int), 1))
    correct = rng.random(200) < 0.7
    e = build_environments("correctness", scores, correct, labels, 4)
    assert np.array_equal(e[0], correct.astype(float)) and np.array_equal(e[1], 1 - correct)
    three = build_environments("intra", scores, None, labels, 4, num_envs=3)
    assert three.shape == (3, 200)
    # the third environment is sharper (its head/tail ratio target is 4 against e2's 2, as train_center_triple.py)
    ess = [(w.sum() ** 2) / (w**2).sum() for w in three]
    assert ess[2] < ess[1] < ess[0]


def test_weighted_sampler_never_draws_zero_weight():
    labels = np.arange(50) % 5
    w = np.ones(50)
    w[::3] = 0
    s = WeightedSampler(labels, 5, seed=1, weights=w, num_samples=5000)
    drawn = np.array(list(iter(s)))
    assert not np.isin(drawn, np.flatnonzero(w == 0)).any()
    env = np.stack([np.ones(50), w])
    es = EnvironmentSampler(labels, 5, seed=2, env_weights=env, samples_per_env=400, batch_size=8)
    tagged = np.array(list(iter(es)))
    rows, envs = tagged % 50, tagged // 50
    assert not np.isin(rows[envs == 1], np.flatnonzero(w == 0)).any()
    # each batch of 8 takes 4 samples from each environment
    assert len(tagged) == 800
    for b in range(0, 800, 8):
        assert sorted(envs[b : b + 8].tolist()) == [0] * 4 + [1] * 4


def test_sampler_state_goes_through_explicit_setters():
    """The loop's `sampler.update(**method.sampler_update(...))` reaches the typed setters; an unknown state is
    an error that applies nothing, a wrong shape is refused."""
    labels = np.arange(20) % 4
    es = EnvironmentSampler(labels, 4, seed=0, samples_per_env=20, batch_size=4)
    w = np.stack([np.ones(20), (np.arange(20) < 5).astype(float)])
    es.update(env_weights=w)
    np.testing.assert_array_equal(es.env_weights, w)
    tagged = np.array(list(iter(es)))
    rows, envs = tagged % 20, tagged // 20
    assert set(rows[envs == 1].tolist()) <= set(range(5)) and set(envs.tolist()) == {0, 1}
    with pytest.raises(AttributeError, match="bogus.*env_weights"):
        es.update(env_weights=np.ones((2, 20)), bogus=1)
    np.testing.assert_array_equal(es.env_weights, w)  # nothing applied
    with pytest.raises(ValueError, match="shape"):
        es.set_env_weights(np.ones((3, 20)))
    ws = WeightedSampler(labels, 4, seed=0, num_samples=200)
    ws.update(weights=(labels == 2).astype(float), epoch=3)
    assert ws.epoch == 3 and set(iter(ws)) <= set(np.flatnonzero(labels == 2).tolist())


def test_center_loss_gradients():
    torch.manual_seed(0)
    f = torch.randn(6, 5, requires_grad=True)
    centers = torch.randn(3, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    loss = center_loss("euclidean", f, y, centers)
    loss.backward()
    diff = f.detach() - centers.detach()[y]
    torch.testing.assert_close(loss, (diff**2).sum(1).mean())
    torch.testing.assert_close(f.grad, 2 * diff / 6)
    want = torch.zeros(3, 5).index_add_(0, y, -2 * diff / 6)
    torch.testing.assert_close(centers.grad, want)
    cos = center_loss("cosine", f.detach(), y, centers.detach())
    ref = np.mean([1 - np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
                   for a, b in zip(f.detach().numpy(), centers.detach().numpy()[y])])
    assert float(cos) == pytest.approx(ref, rel=1e-5)


def _ifl(tiny_benchmark, alpha, **kw):
    spec = resolve_method("ifl+ce")
    labels = np.repeat(np.arange(3), 4)
    ctx = Context(3, np.bincount(labels), 10, batch_size=4, labels=labels)
    cfg = spec.wrapper.Settings(alphas=[alpha, alpha, alpha], **kw)
    m = spec.create(spec.base.Settings(), cfg, ctx)
    from glt.models import create_backbone

    model = m.build_model(create_backbone("small_cnn", width=4))
    return m, model


def test_center_update_does_not_depend_on_alpha(tiny_benchmark):
    """The original divides the centers' gradient by alpha: the center step is the same for any alpha."""
    from glt.methods import Stage

    moved = []
    for alpha in (0.001, 0.5):
        torch.manual_seed(0)
        m, model = _ifl(tiny_benchmark, alpha)
        start = m.centers.detach().clone()
        m.on_epoch_start(Stage("main", 10, sampler="environments"), 9)
        x = torch.randn(4, 3, 16, 16)
        y = torch.tensor([0, 1, 2, 0])
        loss, out, logs = m.training_step(model, x, y, torch.tensor([0, 4, 8, 1]))
        loss.backward()
        m.after_step()
        moved.append(m.centers.detach() - start)
        assert "center_loss" in logs
    torch.testing.assert_close(moved[0], moved[1], rtol=1e-4, atol=1e-6)
    assert moved[0].abs().sum() > 0


def test_ifl_run_logs_environments_and_resumes_identically(tiny_benchmark, tmp_path):
    over = fast_overrides(5) + ["seed=3"]
    cfg = build_config(method="ifl", benchmark=str(tiny_benchmark), overrides=over)
    full = train(cfg, tmp_path / "full")
    lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rebuilt = [x for x in lines if "ifl_environments" in x]
    assert [x["epoch"] for x in rebuilt] == [3, 4]  # 60% and 80% of 5 epochs
    env = rebuilt[0]["ifl_environments"]["environments"]
    assert env[1]["class_imbalance"] == pytest.approx(1.0)  # e2 is class-balanced
    assert env[0]["class_imbalance"] > 2  # e1 is the long-tailed training distribution
    # a run interrupted at the start of epoch 4 (after the rebuild of epoch 3) resumes with the same
    # environments and ends with the same predictions as the uninterrupted run
    part = tmp_path / "part"
    ifl_cls = resolve_method("ifl").wrapper
    saved = ifl_cls.on_epoch_start

    def stop_at_epoch_4(self, stage, epoch):
        if epoch == 4:
            raise KeyboardInterrupt
        return saved(self, stage, epoch)

    ifl_cls.on_epoch_start = stop_at_epoch_4
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, part)
    finally:
        ifl_cls.on_epoch_start = saved
    from glt.runtime.checkpoint import load_checkpoint

    assert load_checkpoint(part / "checkpoints" / "last.pt")["epoch"] == 3
    resumed = train(cfg, part, resume=True)
    for split in full:
        assert resumed[split]["accuracy"] == full[split]["accuracy"]
    a = load_checkpoint(part / "checkpoints" / "last.pt")["method"]["env_weights"]
    b = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["method"]["env_weights"]
    torch.testing.assert_close(a, b)


def _gather_worker(rank, world, port, out_dir):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from glt.methods import Stage

        labels = np.repeat(np.arange(4), [30, 20, 10, 8])
        spec = resolve_method("ifl+ce")
        ctx = Context(4, np.bincount(labels), 10, batch_size=8, labels=labels)
        m = spec.create(spec.base.Settings(), spec.wrapper.Settings(rebuild_after=[50], budget="matched"), ctx)
        from glt.models import create_backbone

        m.build_model(create_backbone("small_cnn", width=4))  # sizes the centers
        stage = Stage("main", 10, sampler="environments")
        sampler = EnvironmentSampler(labels, 4, seed=0, rank=rank, world_size=world,
                                     **m.sampler_options(stage))
        sampler.set_epoch(5)
        m.on_epoch_start(stage, 5)
        idx = torch.tensor(list(iter(sampler)))
        # each rank scores only its own samples (a fake forward with rank-dependent logits)
        torch.manual_seed(rank)
        from glt.methods.base import Output

        rows = idx % len(labels)
        y = torch.as_tensor(labels[rows.numpy()])
        logits = torch.randn(len(idx), 4)
        m.record_scores(Output(logits, torch.zeros(len(idx), 1)), y, rows)
        logs = m.on_epoch_end(stage, 5)
        np.save(os.path.join(out_dir, f"idx{rank}.npy"), idx.numpy())
        np.save(os.path.join(out_dir, f"env{rank}.npy"), m.env_weights.numpy())
        np.save(os.path.join(out_dir, f"scores{rank}.npy"), m.scores.numpy())
        assert "ifl_environments" in logs
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_scores_and_environments_agree(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_gather_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    i0, i1 = np.load(tmp_path / "idx0.npy"), np.load(tmp_path / "idx1.npy")
    # together the ranks cover the epoch's draw: disjoint slices of one sequence
    full = EnvironmentSampler(np.repeat(np.arange(4), [30, 20, 10, 8]), 4, seed=0, samples_per_env=34, batch_size=8)
    full.set_epoch(5)
    seq = np.array(list(iter(full)))
    assert np.array_equal(np.sort(np.concatenate([i0, i1])), np.sort(seq))
    assert np.array_equal(i0, seq[0::2]) and np.array_equal(i1, seq[1::2])
    np.testing.assert_array_equal(np.load(tmp_path / "scores0.npy"), np.load(tmp_path / "scores1.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "env0.npy"), np.load(tmp_path / "env1.npy"))


def test_center_loss_follows_the_classifier():
    labels = np.repeat(np.arange(3), 4)
    ctx = Context(3, np.bincount(labels), 10, batch_size=4, labels=labels)
    kinds = {}
    for name in ("ifl+ldam", "ifl+ride", "ifl+ce", "ifl"):
        spec = resolve_method(name)
        kinds[name] = spec.create(spec.base.Settings(), spec.wrapper.Settings(), ctx).center_kind
    assert kinds == {"ifl+ldam": "cosine", "ifl+ride": "cosine", "ifl+ce": "euclidean", "ifl": "euclidean"}
    spec = resolve_method("ifl+ldam")
    forced = spec.create(spec.base.Settings(), spec.wrapper.Settings(center_loss="triplet"), ctx)
    assert forced.center_kind == "triplet"
