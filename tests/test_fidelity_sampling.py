"""glt against re-implementations of the original code (KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch)
for sampling, heads, decoupled training and the schedule (docs/fidelity.md, section A):

- data/Sampler_ClassAware.py: ClassAwareSampler's epoch length and draw order (ported below);
- models/ClassifierFC.py, ClassifierLA.py, ClassifierLWS.py: linear heads without a bias;
- train_stage2.py / utils/training_utils.py (create_optimizer_stage2): stage 2 freezes the backbone's
  parameters and leaves it in train mode, so BatchNorm statistics keep updating;
- utils/training_utils.py (create_scheduler) + the train scripts: the scheduler steps once per epoch."""

from __future__ import annotations

import copy
import json
import math
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import glt
from conftest import fast_overrides
from glt.config import OptimConfig, build_config
from glt.data.samplers import ClassAwareSampler
from glt.engine import trainer
from glt.engine.schedule import build_scheduler
from glt.errors import GLTError
from glt.methods import METHODS, Context, resolve_method
from glt.models import create_backbone, create_head

# ---- the original's class-aware sampler, ported (data/Sampler_ClassAware.py) ------------------------------
# Only the global `random` module is replaced by a seeded random.Random; the logic is the original's.


class RandomCycleIter:
    def __init__(self, data, rng: random.Random):
        self.data_list = list(data)
        self.rng = rng
        self.rng.shuffle(self.data_list)
        self.length = len(self.data_list)
        self.i = self.length - 1

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.i == self.length:
            self.i = 0
            self.rng.shuffle(self.data_list)
        return self.data_list[self.i]


def class_aware_sample_generator(cls_iter, data_iter_list, n, num_samples_cls=1):
    i = 0
    j = 0
    while i < n:
        if j >= num_samples_cls:
            j = 0
        if j == 0:
            temp_tuple = next(zip(*[data_iter_list[next(cls_iter)]] * num_samples_cls))
            yield temp_tuple[j]
        else:
            yield temp_tuple[j]
        i += 1
        j += 1


class OriginalClassAwareSampler:
    def __init__(self, labels, num_samples_cls=1, max_aug=4, seed=0):
        rng = random.Random(seed)
        num_images = len(labels)
        num_classes = len(np.unique(labels))
        self.class_iter = RandomCycleIter(range(num_classes), rng)
        cls_data_list = [list() for _ in range(num_classes)]
        for i, label in enumerate(labels):
            cls_data_list[label].append(i)
        self.data_iter_list = [RandomCycleIter(x, rng) for x in cls_data_list]
        self.num_samples = max([len(x) for x in cls_data_list]) * len(cls_data_list)
        if self.num_samples > (num_images * max_aug):
            self.num_samples = num_images * max_aug
        self.num_samples_cls = num_samples_cls

    def __iter__(self):
        return class_aware_sample_generator(self.class_iter, self.data_iter_list, self.num_samples,
                                            self.num_samples_cls)

    def __len__(self):
        return self.num_samples


# ---- the structure both must have -------------------------------------------------------------------------


def draw_structure(epochs: list[list[int]], labels: np.ndarray, k: int):
    """Split consecutive epochs into class draws of k consecutive images. Returns the classes drawn, in
    order, and each class's image stream (None where a draw cut short by the epoch's end used an image up
    without yielding it, as the original's zip of k `next` calls does)."""
    classes, streams = [], defaultdict(list)
    for idx in epochs:
        for start in range(0, len(idx), k):
            draw = list(idx[start : start + k])
            drawn = set(labels[draw].tolist())
            assert len(drawn) == 1, f"a draw of {k} mixes classes {drawn}"
            c = drawn.pop()
            classes.append(c)
            streams[c] += draw + [None] * (k - len(draw))
    return classes, streams


def assert_original_structure(epochs: list[list[int]], labels: np.ndarray, k: int) -> None:
    present = sorted(set(labels.tolist()))
    classes, streams = draw_structure(epochs, labels, k)
    C = len(present)
    for b in range(0, len(classes), C):  # every class once per block of C class draws
        block = classes[b : b + C]
        assert len(set(block)) == len(block) and set(block) <= set(present), f"class block {b // C}: {block}"
    for c, stream in streams.items():  # each class's images: a fresh permutation at every pass
        members = set(np.flatnonzero(labels == c).tolist())
        n = len(members)
        for s in range(0, len(stream), n):
            seen = [i for i in stream[s : s + n] if i is not None]
            assert len(set(seen)) == len(seen) and set(seen) <= members, f"class {c}, pass {s // n}: {seen}"
            if s + n <= len(stream) and len(seen) == n:
                assert set(seen) == members


def class_totals(epochs, labels, k) -> list[int]:
    classes, _ = draw_structure(epochs, labels, k)
    return sorted(np.bincount(classes, minlength=labels.max() + 1).tolist())


PROFILES = {  # images per class
    "balanced": [5, 5, 5],
    "long_tailed": [12, 6, 3, 2],  # max * C = 48 < 4 N = 92
    "odd_length": [13, 4, 2],  # 39 samples: the last draw of an epoch is cut short
    "capped": [50, 5, 2, 1, 1],  # max * C = 250 > 4 N = 236
    "one_image_classes": [7, 1, 1, 1],
}


def labels_of(counts, seed=0) -> np.ndarray:
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)  # the split's rows are not sorted by class


def glt_epochs(labels, k, epochs, seed=0, num_classes=None, **kw) -> list[list[int]]:
    s = ClassAwareSampler(labels, num_classes or int(labels.max()) + 1, seed=seed, per_class=k, **kw)
    out = []
    for e in range(epochs):
        s.set_epoch(e)
        out.append(list(s))
    return out


def original_epochs(labels, k, epochs, seed=0) -> list[list[int]]:
    s = OriginalClassAwareSampler(labels.tolist(), num_samples_cls=k, seed=seed)
    return [list(s) for _ in range(epochs)]


@pytest.mark.parametrize("profile", PROFILES)
def test_class_aware_epoch_length_is_the_originals(profile):
    labels = labels_of(PROFILES[profile])
    counts = np.bincount(labels)
    expected = min(counts.max() * len(counts), 4 * len(labels))
    original = OriginalClassAwareSampler(labels.tolist(), num_samples_cls=4)
    assert len(original) == expected == len(list(original))
    s = ClassAwareSampler(labels, len(counts), seed=1, per_class=4)
    assert len(s) == expected == len(list(s))


def test_class_aware_epoch_length_counts_present_classes_and_splits_over_ranks():
    labels = np.array([0, 0, 0, 2, 2, 0])  # class 1 has no image: C = 2 present classes
    assert len(ClassAwareSampler(labels, 3)) == 4 * 2 == len(OriginalClassAwareSampler([0, 0, 0, 1, 1, 0]))
    ranks = [ClassAwareSampler(labels, 3, seed=5, rank=r, world_size=3) for r in range(3)]
    full = ClassAwareSampler(labels, 3, seed=5).epoch_indices()
    assert [len(r) for r in ranks] == [3, 3, 3]  # ceil(8 / 3), padded
    got = [i for step in zip(*[list(r) for r in ranks]) for i in step]
    assert got[: len(full)] == full.tolist()
    assert len(ClassAwareSampler(labels, 3, num_samples=5)) == 5  # method_args.samples_per_epoch


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("k", [4, 3])
def test_class_aware_draw_order_has_the_originals_structure(profile, k):
    labels = labels_of(PROFILES[profile])
    epochs = 5
    original = original_epochs(labels, k, epochs)
    assert_original_structure(original, labels, k)  # the checker accepts the original itself
    ours = glt_epochs(labels, k, epochs, seed=3)
    assert [len(e) for e in ours] == [len(e) for e in original]
    assert_original_structure(ours, labels, k)  # across epoch boundaries too: the cycles run on
    # the same number of draws of each class over the epochs (up to which classes got the extra ones)
    assert class_totals(ours, labels, k) == class_totals(original, labels, k)


def test_the_structure_check_rejects_independent_class_draws():
    """Classes drawn independently with replacement (glt's earlier sampler) break the class blocks."""
    labels = labels_of(PROFILES["long_tailed"])
    g = np.random.default_rng(0)
    by_class = [np.flatnonzero(labels == c) for c in range(4)]
    draws = g.choice(4, size=48 // 4)
    idx = [int(i) for c in draws for i in g.permutation(np.resize(by_class[c], 4))[:4]]
    with pytest.raises(AssertionError):
        assert_original_structure([idx], labels, 4)


def test_class_aware_sampler_is_deterministic_from_seed_and_epoch_and_resumable():
    labels = labels_of(PROFILES["capped"])
    a, b = glt_epochs(labels, 4, 3, seed=7), glt_epochs(labels, 4, 3, seed=7)
    assert a == b and a[0] != a[1] and a != glt_epochs(labels, 4, 3, seed=8)
    s = ClassAwareSampler(labels, 5, seed=7)
    s.set_epoch(2)  # straight to epoch 2: the same draws as after epochs 0 and 1
    assert list(s) == a[2]
    s.skip = 10
    assert list(s) == a[2][10:]


def test_class_aware_sampler_is_fast_enough_for_imagenet_glt():
    counts = np.array(json.loads((Path(glt.__file__).parent / "resources" / "imagenet_glt_class_counts.json")
                                 .read_text())["counts"])
    labels = np.repeat(np.arange(len(counts)), counts)
    s = ClassAwareSampler(labels, len(counts), seed=0)
    assert len(s) == min(counts.max() * len(counts), 4 * counts.sum())
    s.set_epoch(3)
    idx = s.epoch_indices()
    assert len(idx) == len(s)
    # 4 consecutive images per draw, one class each
    assert (labels[idx].reshape(-1, 4) == labels[idx][::4, None]).all()


# ---- heads: no bias (models/ClassifierFC.py, ClassifierLA.py, ClassifierLWS.py) --------------------------


def _method(name: str, counts=(6, 3, 1)):
    spec = resolve_method(name)
    counts = np.asarray(counts)
    ctx = Context(len(counts), counts, 10, batch_size=8, labels=np.repeat(np.arange(len(counts)), counts))
    return spec.create(spec.base.Settings(), spec.wrapper_settings(), ctx)


@pytest.mark.parametrize("name", METHODS.names())
def test_linear_heads_have_no_bias_as_the_originals(name):
    model = _method(name).build_model(create_backbone("small_cnn", width=4))
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    for m in linears:
        assert m.bias is None, f"{name}: {type(m).__name__} has a bias"
    if linears:  # ClassifierFC / ClassifierLA: nn.Linear(feat_dim, num_classes, bias=False) (+ LWS's scales)
        d = model.feature_dim
        original = nn.Linear(d, 3, bias=False)
        extra = 3 if name == "lws" else 0
        assert sum(p.numel() for p in model.head.parameters()) == sum(p.numel() for p in original.parameters()) + extra


def test_linear_and_lws_heads_initialise_as_the_originals():
    """The original's heads are a plain nn.Linear(bias=False) (LWS: scales of 1, the fc frozen in stage 2)."""
    torch.manual_seed(3)
    ours = create_head("linear", 16, 5)
    torch.manual_seed(3)
    original = nn.Linear(16, 5, bias=False)
    torch.testing.assert_close(ours.weight, original.weight, rtol=0, atol=0)
    torch.manual_seed(3)
    lws = create_head("lws", 16, 5)
    torch.testing.assert_close(lws.weight, original.weight, rtol=0, atol=0)
    torch.testing.assert_close(lws.scales.detach(), torch.ones(5))
    assert create_head("linear", 16, 5, bias=True).bias is not None  # still available


# ---- stage 2: the frozen backbone stays in train mode (train_stage2.py) -----------------------------------


def _stage2_step(name: str, **settings):
    m = _method(name)
    for k, v in settings.items():
        setattr(m.settings, k, v)
    model = m.build_model(create_backbone("small_cnn", width=4))
    stage = m.stages()[1]
    m.on_epoch_start(stage, 0)
    trainer._set_train_mode(model, stage.trainable)
    return m, model, stage


def _bn_stats(module) -> dict:
    stats = ("running_mean", "running_var")
    return {k: v.clone() for k, v in module.state_dict().items() if k.rsplit(".", 1)[1] in stats}


@pytest.mark.parametrize("name", ["crt", "lws"])
def test_stage_two_updates_batchnorm_statistics_as_the_original(name):
    m, model, stage = _stage2_step(name)
    # the original: create_optimizer_stage2 sets requires_grad = False on every backbone parameter, and the
    # model stays in train mode (test_baseline.run_val ends with model.train())
    reference = copy.deepcopy(model.backbone)
    for p in reference.parameters():
        p.requires_grad = False
    reference.train()
    before = _bn_stats(model.backbone)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 + 1
    loss, _, _ = m.training_step(model, x, torch.tensor([0, 1, 2, 0, 1, 2, 0, 0]), torch.arange(8))
    loss.backward()
    with torch.no_grad():
        reference(x)
    after = _bn_stats(model.backbone)
    assert before and all(not torch.equal(after[k], before[k]) for k in before)
    for k, v in _bn_stats(reference).items():
        torch.testing.assert_close(after[k], v)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.backbone.parameters())
    # method_args.backbone_mode=eval: BatchNorm keeps the first stage's statistics
    m, model, stage = _stage2_step(name, backbone_mode="eval")
    before = _bn_stats(model.backbone)
    m.training_step(model, x, torch.tensor([0, 1, 2, 0, 1, 2, 0, 0]), torch.arange(8))
    assert all(torch.equal(v, before[k]) for k, v in _bn_stats(model.backbone).items())
    with pytest.raises(GLTError, match="backbone_mode"):
        _stage2_step(name, backbone_mode="frozen")


# ---- the schedule steps once per epoch (utils/training_utils.py: create_scheduler) ------------------------


def _step_lrs(optim_cfg, epochs: int, steps: int) -> list[list[float]]:
    """The learning rate of every optimizer step, stepping glt's scheduler after each step as the loop does."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=float(optim_cfg.lr))
    sched = build_scheduler(opt, optim_cfg, epochs, steps)
    out = []
    for _ in range(epochs):
        out.append([])
        for _ in range(steps):
            out[-1].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def _original_lrs(make, epochs: int, lr: float) -> list[float]:
    """The original: the scheduler built by create_scheduler, stepped once at the end of every epoch."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("epochs,steps", [(10, 3), (7, 5)])
def test_cosine_schedule_steps_once_per_epoch_as_the_original(epochs, steps):
    cfg = OmegaConf.merge(OmegaConf.structured(OptimConfig), {"lr": 0.1, "schedule": "cosine"})
    ours = _step_lrs(cfg, epochs, steps)
    original = _original_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, epochs, eta_min=0.0), epochs, 0.1)
    for e in range(epochs):
        assert ours[e] == pytest.approx([original[e]] * steps, rel=1e-9, abs=1e-12), f"epoch {e}"
    # optim.schedule_granularity=step: the rate moves inside an epoch
    smooth = _step_lrs(OmegaConf.merge(cfg, {"schedule_granularity": "step"}), epochs, steps)
    assert smooth[1][1] < smooth[1][0] and smooth[0][0] == pytest.approx(0.1)


def test_step_schedules_step_once_per_epoch_as_the_original():
    cfg = OmegaConf.merge(OmegaConf.structured(OptimConfig), {"lr": 0.1, "schedule": "multistep", "milestones": [3, 5]})
    ours = _step_lrs(cfg, 8, 4)
    original = _original_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 5], gamma=0.1), 8, 0.1)
    assert [e[0] for e in ours] == pytest.approx(original) and all(len(set(e)) == 1 for e in ours)
    cfg = OmegaConf.merge(cfg, {"schedule": "step", "step_size": 2})
    original = _original_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.1), 8, 0.1)
    assert [e[0] for e in _step_lrs(cfg, 8, 4)] == pytest.approx(original)


def test_bad_schedule_granularity_is_refused():
    cfg = OmegaConf.merge(OmegaConf.structured(OptimConfig), {"schedule_granularity": "batch"})
    with pytest.raises(GLTError, match="schedule_granularity"):
        _step_lrs(cfg, 2, 2)


def test_crt_run_logs_each_stages_per_epoch_cosine(tiny_benchmark, tmp_path):
    """A whole cRT run: stage 1 and stage 2 each follow their own per-epoch cosine from optim.lr (the
    original's train_stage1.py / train_stage2.py each build CosineAnnealingLR(num_epochs)); the log's lr is
    the epoch's."""
    over = fast_overrides(2) + ["method_args.classifier_epochs=3", "optim.lr=0.05"]
    cfg = build_config(method="crt", benchmark=str(tiny_benchmark), overrides=over)
    trainer.train(cfg, tmp_path / "crt")
    lines = [json.loads(x) for x in (tmp_path / "crt" / "metrics.jsonl").read_text().splitlines()]
    for si, epochs in ((0, 2), (1, 3)):
        got = [x["lr"] for x in lines if x["stage_index"] == si]
        assert got == pytest.approx([0.025 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)])


@pytest.mark.parametrize("name", ["crt", "lws"])
def test_a_run_resumed_inside_stage_twos_first_epoch_keeps_its_head(name):
    m = _method(name)
    model = m.build_model(create_backbone("small_cnn", width=4))
    second = m.stages()[1]
    m.on_epoch_start(second, 0)
    with torch.no_grad():
        model.head.weight.add_(1.0)  # what the stage trained before it was stopped
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    resumed = _method(name)  # a new process: weights and method state from the checkpoint
    model2 = resumed.build_model(create_backbone("small_cnn", width=4))
    model2.load_state_dict(trained)
    resumed.load_state_dict(m.state_dict())
    resumed.on_epoch_start(second, 0)
    for k, v in model2.state_dict().items():
        torch.testing.assert_close(v, trained[k], rtol=0, atol=0)
