"""Method-specific training rules against the original code (KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch;
docs/fidelity.md, section B). Every test re-implements the original's rule from reading its code (file and
lines named in the test) and compares glt's default with it; where glt keeps another behaviour as a setting,
the test also shows that the setting differs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import fast_overrides
from glt.config import build_config
from glt.data.samplers import EnvironmentSampler
from glt.engine.trainer import train
from glt.methods import Context, Output, Stage, resolve_method
from glt.methods.focal import focal_loss
from glt.methods.irm import irm_penalty
from glt.models import create_backbone
from glt.models.branched import BranchedBackbone

COUNTS = np.array([6, 3, 1])


def make(name: str, counts=COUNTS, epochs: int = 100, batch_size: int = 8, wrapper=None, **settings):
    spec = resolve_method(name)
    labels = np.repeat(np.arange(len(counts)), counts)
    ctx = Context(len(counts), np.asarray(counts), epochs, batch_size=batch_size, labels=labels)
    if spec.wrapper is not None:
        return spec.create(spec.base.Settings(), spec.wrapper.Settings(**settings), ctx)
    return spec.create(spec.base.Settings(**settings), None, ctx)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def nparams(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- the original's ResNeXt / ResNet layouts, counted from its model files ----------------------------------


def bottleneck_params(inplanes: int, planes: int, stride: int, groups: int, base_width: int) -> int:
    """models/ResNet_RIDE.py Bottleneck (= models/ResNet_BBN.py BottleNeck for groups 1, base width 64):
    width = int(planes * base_width / 64) * groups; conv1 1x1, conv2 3x3 grouped, conv3 1x1 to 4 planes,
    three BatchNorms; a 1x1 downsample + BatchNorm when the stride or the channel count changes."""
    width = int(planes * (base_width / 64.0)) * groups
    n = inplanes * width + 2 * width
    n += width * (width // groups) * 9 + 2 * width
    n += width * planes * 4 + 2 * planes * 4
    if stride != 1 or inplanes != planes * 4:
        n += inplanes * planes * 4 + 2 * planes * 4
    return n


def layer_params(inplanes: int, planes: int, blocks: int, stride: int, groups: int, base_width: int) -> tuple[int, int]:
    """(parameters, output channels) of `_make_layer`: the first block strides, the rest keep 4 * planes."""
    n = bottleneck_params(inplanes, planes, stride, groups, base_width)
    for _ in range(blocks - 1):
        n += bottleneck_params(planes * 4, planes, 1, groups, base_width)
    return n, planes * 4


def original_ride_backbone_params(num_experts: int, reduce_dimension: bool) -> tuple[int, int]:
    """models/ResNet_RIDE.py ResNeXt50Model: conv1 7x7 + bn1, layer1 (64) and layer2 (128) shared; each expert
    its own layer3 (192 planes if reduce_dimension else 256) and layer4 (384 / 512). (parameters, feature size)."""
    g, bw = 32, 4
    n = 3 * 64 * 49 + 2 * 64
    p1, c = layer_params(64, 64, 3, 1, g, bw)
    p2, c = layer_params(c, 128, 4, 2, g, bw)
    n += p1 + p2
    p3, c3 = layer_params(c, 192 if reduce_dimension else 256, 6, 2, g, bw)
    p4, c4 = layer_params(c3, 384 if reduce_dimension else 512, 3, 2, g, bw)
    return n + num_experts * (p3 + p4), c4


def original_bbn_backbone_params() -> tuple[int, int]:
    """models/ResNet_BBN.py BBN_ResNet (ResNet-50): layer4 built with 3 - 1 = 2 blocks, then cb_block and
    rb_block, each one more Bottleneck(2048, 512). (parameters, feature size of both branches)."""
    n = 3 * 64 * 49 + 2 * 64
    c = 64
    for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 2, 2)):
        p, c = layer_params(c, planes, blocks, stride, 1, 64)
        n += p
    branch = bottleneck_params(c, c // 4, 1, 1, 64)
    return n + 2 * branch, 2 * c


# ---- 1. RIDE re-weighting ------------------------------------------------------------------------------------


def test_ride_reweights_after_epoch_80_of_100_as_the_original():
    """utils/training_utils.py RIDELoss.set_epoch: `if epoch > self.reweight_epoch` (reweight_epoch 80, epoch
    0-based from train_ride.py's `for epoch in range(num_epochs)`): class-balanced weights from epoch 81."""
    m = make("ride", epochs=100)
    stage = m.stages()[0]
    on = []
    for epoch in range(100):
        m.on_epoch_start(stage, epoch)
        on.append(m.reweight)
    assert on == [epoch > 80 for epoch in range(100)]
    # the loss itself: unweighted at epoch 80, class-balanced at 81
    expert = rand(5, 3, 3, seed=1) * 5
    labels = torch.tensor([0, 1, 2, 0, 2])
    out = Output(expert.mean(1), torch.zeros(5, 1), {"expert_logits": expert})
    m.on_epoch_start(stage, 80)
    at80 = float(m.loss(out, labels))
    m.on_epoch_start(stage, 81)
    at81 = float(m.loss(out, labels))
    plain = make("ride", epochs=100, reweight_after=1.0)  # never re-weights
    plain.on_epoch_start(stage, 81)
    assert at80 == pytest.approx(float(plain.loss(out, labels)), rel=1e-6)
    assert at81 != pytest.approx(at80, rel=1e-3)


def test_ride_reweighting_scales_with_the_run():
    m = make("ride", epochs=10)
    stage = Stage("main", 10)
    on = []
    for epoch in range(10):
        m.on_epoch_start(stage, epoch)
        on.append(m.reweight)
    assert on == [epoch > 8 for epoch in range(10)]


# ---- 2. BBN cumulative learning --------------------------------------------------------------------------------


def test_bbn_alpha_is_the_originals_parabola_of_the_0_based_epoch():
    """train_bbn.py run(): `l = 1 - ((epoch - 1) / num_epoch) ** 2` with `for epoch in range(num_epoch)`."""
    m = make("bbn", epochs=100)
    stage = m.stages()[0]
    got = []
    for epoch in range(100):
        m.on_epoch_start(stage, epoch)
        got.append(m.mix)
    want = [1 - ((epoch - 1) / 100) ** 2 for epoch in range(100)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[0] < 1 and got[1] == 1.0  # the original's off-by-one: epoch 0 is not the maximum
    other = make("bbn", epochs=100, alpha_rule="bbn")  # the BBN authors' 1-based epochs
    other.on_epoch_start(stage, 0)
    assert other.mix == 1.0
    other.on_epoch_start(stage, 50)
    assert other.mix == pytest.approx(1 - 0.5**2)


# ---- 3. BBN batches ------------------------------------------------------------------------------------------


def _bbn_batches(m, labels, batch):
    (stage,) = m.stages()
    opts = m.sampler_options(stage)
    sampler = EnvironmentSampler(labels, 3, seed=0, **opts)
    idx = np.array(list(iter(sampler)))
    n = len(labels)
    return [idx[i : i + batch] // n for i in range(0, len(idx), batch)], n


def test_bbn_feeds_each_branch_a_full_batch_like_the_originals_two_loaders():
    """data/dataloader.py: BBN's DistributionSampler has num_sampler 2 and batch_split False, so each of the
    two loaders yields batch_size images of its own distribution (N samples each, N / batch_size steps);
    train_bbn.py zips them: one step = batch_size uniform + batch_size reversed images."""
    labels = np.repeat(np.arange(3), COUNTS * 8)  # N = 80
    m = make("bbn", counts=COUNTS * 8, batch_size=8)
    (stage,) = m.stages()
    assert stage.batch_scale == 2
    batches, n = _bbn_batches(m, labels, 8 * stage.batch_scale)
    assert len(batches) == n // 8  # N / batch_size steps an epoch
    for envs in batches:
        assert sorted(envs.tolist()) == [0] * 8 + [1] * 8


def test_bbn_training_run_feeds_each_branch_data_batch_size_images(tiny_benchmark, tmp_path):
    cfg = build_config(method="bbn", benchmark=str(tiny_benchmark), overrides=fast_overrides(1))
    train(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["bbn_branch_batch"] == pytest.approx(cfg.data.batch_size)


def test_bbn_split_batches_keep_half_of_the_batch_per_branch():
    labels = np.repeat(np.arange(3), COUNTS * 8)
    m = make("bbn", counts=COUNTS * 8, batch_size=8, branch_batch="split")
    batches, n = _bbn_batches(m, labels, 8)
    assert len(batches) == 2 * n // 8
    for envs in batches:
        assert sorted(envs.tolist()) == [0] * 4 + [1] * 4


# ---- 4. expert and branch structure ----------------------------------------------------------------------------


def test_ride_and_tade_experts_have_the_originals_reduced_resnext50_layout():
    """config/*.yaml: RIDE and TADE use models/ResNet_RIDE.py with num_experts 3, reduce_dimension True and a
    classifier of feat_dim 1536 per expert."""
    want, feat = original_ride_backbone_params(3, reduce_dimension=True)
    assert feat == 1536
    for name in ("ride", "tade"):
        torch.manual_seed(0)
        model = make(name).build_model(create_backbone("resnext50_32x4d"))
        assert model.backbone.branch_features == feat
        assert nparams(model.backbone) == want
        assert [e.weight.shape[1] for e in model.head.experts] == [feat] * 3
    full, full_feat = original_ride_backbone_params(3, reduce_dimension=False)
    wide = make("ride", expert_width=1.0).build_model(create_backbone("resnext50_32x4d"))
    assert (nparams(wide.backbone), wide.backbone.branch_features) == (full, full_feat)
    assert full > want


def test_reduced_experts_are_independent_draws_and_run():
    torch.manual_seed(0)
    model = make("ride").build_model(create_backbone("resnext50_32x4d"))
    a, b = (model.backbone.branches[i][0][0].conv2.weight for i in (0, 1))
    assert a.shape == b.shape and not torch.equal(a, b)
    # the original's init: normal(0, sqrt(2 / (k * k * out_channels)))
    assert float(a.detach().std()) == pytest.approx(math.sqrt(2 / (9 * a.shape[0])), rel=0.05)
    with torch.no_grad():
        out = model.eval()(rand(2, 3, 32, 32))
    assert out.shape == (2, 3)


def test_small_cnn_experts_narrow_their_stages_by_the_same_three_quarters():
    """The analogue on small_cnn (docs/fidelity.md): experts own the last two stages (4w, 8w channels) built
    with 3w and 6w channels, as ResNet_RIDE.py builds layer3 / layer4 with 192 / 384 instead of 256 / 512."""
    w = 8
    backbone = create_backbone("small_cnn", width=w)
    model = make("tade").build_model(backbone)
    for branch in model.backbone.branches:
        assert [stage[0].out_channels for stage in branch] == [3 * w, 6 * w]
        assert branch[0][0].in_channels == 2 * w
    assert model.backbone.branch_features == 6 * w
    assert model.head.experts[0].weight.shape[1] == 6 * w


def test_bbn_branches_own_one_residual_block_as_the_original():
    """models/ResNet_BBN.py: layer4 has num_blocks[3] - 1 blocks; cb_block and rb_block are one Bottleneck each;
    config/*.yaml: the BBN classifier has feat_dim 4096 (both branches)."""
    want, feat = original_bbn_backbone_params()
    torch.manual_seed(0)
    model = make("bbn").build_model(create_backbone("resnet50"))
    assert nparams(model.backbone) == want
    assert model.backbone.out_features == feat == model.head.in_features
    ra, rb = (model.backbone.branches[i][0].conv2.weight for i in (0, 1))
    assert not torch.equal(ra, rb)  # separately constructed blocks: independent draws
    copy = make("bbn", branch_init="copy").build_model(create_backbone("resnet50"))
    assert torch.equal(copy.backbone.branches[0][0].conv2.weight, copy.backbone.branches[1][0].conv2.weight)


def test_pretrained_backbones_keep_their_weights_in_every_branch():
    backbone = create_backbone("small_cnn", width=4)
    backbone.pretrained = True
    model = make("bbn").build_model(backbone)
    for a, b in zip(model.backbone.branches[0].parameters(), model.backbone.branches[1].parameters()):
        assert torch.equal(a, b)
    backbone = create_backbone("small_cnn", width=4)
    backbone.pretrained = True
    from glt.errors import GLTError

    with pytest.raises(GLTError, match="expert_width"):
        make("ride").build_model(backbone)


def test_branched_backbone_blocks_and_stages_agree_on_small_cnn():
    backbone = create_backbone("small_cnn", width=4).eval()
    by_block = BranchedBackbone(backbone, 1, branch_blocks=1).eval()
    x = rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(by_block(x), backbone(x))


# ---- 5. focal loss -----------------------------------------------------------------------------------------------


def test_focal_gradient_holds_the_modulating_factor_constant():
    """utils/training_utils.py FocalLoss.forward: `pt = logpt.detach().exp()`, loss = -(1 - pt)^gamma * logpt."""
    z = rand(6, 4, seed=3) * 3
    y = torch.tensor([0, 1, 2, 3, 0, 1])

    def grad(fn):
        x = z.clone().requires_grad_(True)
        fn(x).backward()
        return x.grad

    def original(x):
        logpt = F.log_softmax(x, dim=-1).gather(1, y.view(-1, 1)).view(-1)
        pt = logpt.detach().exp()
        return (-1 * (1 - pt) ** 2.0 * logpt).mean()

    def paper(x):
        logpt = F.log_softmax(x, dim=-1).gather(1, y.view(-1, 1)).view(-1)
        return (-((1 - logpt.exp()) ** 2.0) * logpt).mean()

    m = make("focal")
    glt_grad = grad(lambda x: m.loss(Output(x, torch.zeros(6, 1)), y))
    torch.testing.assert_close(glt_grad, grad(original))
    assert not torch.allclose(glt_grad, grad(paper), atol=1e-4)
    torch.testing.assert_close(grad(lambda x: focal_loss(x, y, 2.0, detach_factor=False)), grad(paper))


# ---- 6. LfF ----------------------------------------------------------------------------------------------------


def test_lff_weights_come_from_the_current_batch_losses():
    """train_lff.py run(): loss_b, loss_d = per-sample CE of the two models (detached);
    loss_weight = loss_b / (loss_b + loss_d + 1e-8); loss = GCE(pred_b).mean() + (CE(pred_d) * weight).mean(),
    GeneralizedCELoss: CE * q * p_y^q with p_y detached, q 0.7."""
    m = make("lff")
    model = m.build_model(create_backbone("small_cnn", width=4)).eval()
    biased = m.extra_modules()["biased"].eval()
    x, y = rand(4, 3, 16, 16, seed=5), torch.tensor([0, 1, 2, 0])
    index = torch.tensor([0, 6, 9, 1])
    for _ in range(2):  # the same samples twice: no memory of the first visit
        loss, _, logs = m.training_step(model, x, y, index)
        with torch.no_grad():
            pb, pd = biased(x), model(x)
            lb = F.cross_entropy(pb, y, reduction="none")
            ld = F.cross_entropy(pd, y, reduction="none")
            w = lb / (lb + ld + 1e-8)
            p_y = F.softmax(pb, 1).gather(1, y[:, None]).squeeze(1)
            want = (F.cross_entropy(pb, y, reduction="none") * 0.7 * p_y**0.7).mean() + (ld * w).mean()
        torch.testing.assert_close(loss.detach(), want)
        assert logs["lff_weight"] == pytest.approx(float(w.mean()), rel=1e-5)
    # weights of a batch from the formula, even for samples seen before with other losses
    w1 = m.sample_weights(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]), y[:2], index[:2])
    w2 = m.sample_weights(torch.tensor([4.0, 1.0]), torch.tensor([1.0, 1.0]), y[:2], index[:2])
    torch.testing.assert_close(w1, torch.tensor([1 / 4, 2 / 4]), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(w2, torch.tensor([4 / 5, 1 / 2]), atol=1e-6, rtol=1e-6)
    paper = make("lff", ema=0.7, class_max=True)  # the LfF paper's averaged, class-normalised form
    paper.sample_weights(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]), y[:2], index[:2])
    w2p = paper.sample_weights(torch.tensor([4.0, 1.0]), torch.tensor([1.0, 1.0]), y[:2], index[:2])
    assert not torch.allclose(w2p, w2)


def test_lff_biased_model_is_its_own_random_draw():
    """train_lff.py __init__: model_b and model_d are two separate create_model calls."""
    m = make("lff")
    model = m.build_model(create_backbone("small_cnn", width=4))
    pairs = list(zip(model.parameters(), m.extra_modules()["biased"].parameters()))
    assert all(a.shape == b.shape for a, b in pairs)
    assert not all(torch.equal(a, b) for a, b in pairs)
    same = make("lff", biased_init="copy")
    model = same.build_model(create_backbone("small_cnn", width=4))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.extra_modules()["biased"].parameters()))


# ---- 7. IRM ----------------------------------------------------------------------------------------------------


def test_irm_weight_follows_the_originals_end_of_epoch_raises():
    """train_irm_dual.py run(): the weight used in epoch e is irm_weight; after the epoch,
    `if epoch in decay_milestones: irm_weight *= irm_alpha` (config irm_dual: 0.001, 10, [30, 60, 90])."""
    weight, want = 0.001, []
    for epoch in range(100):
        want.append(weight)
        if epoch in (30, 60, 90):
            weight *= 10
    m = make("irm", epochs=100)
    np.testing.assert_allclose([m.alpha(e) for e in range(100)], want, rtol=1e-12)
    assert m.alpha(30) == pytest.approx(1e-3) and m.alpha(31) == pytest.approx(1e-2)


def test_irm_rebuilds_the_environments_after_every_epoch():
    """irm_dual: always_update True: update_env_by_score after every epoch."""
    m = make("irm", epochs=6, counts=np.array([12, 8, 6]))
    m.build_model(create_backbone("small_cnn", width=4))
    (stage,) = m.stages()
    rebuilt = []
    g = torch.Generator().manual_seed(0)
    for epoch in range(6):
        m.on_epoch_start(stage, epoch)
        rows = torch.arange(m.n)
        labels = torch.as_tensor(np.repeat(np.arange(3), [12, 8, 6]))
        m.record_scores(Output(torch.randn(m.n, 3, generator=g), torch.zeros(m.n, 1)), labels, rows)
        rebuilt.append("ifl_environments" in m.on_epoch_end(stage, epoch))
    assert rebuilt == [True] * 6
    assert m.rebuild_epochs() == list(range(6))
    ifl_like = make("irm", epochs=100, rebuild_every_epoch=False)
    assert ifl_like.rebuild_epochs() == [60, 80]


def test_irm_penalty_is_the_l1_gradient_of_the_batch_loss_wrt_a_class_scale():
    """train_irm_dual.py: scale = ones(1, C) requiring grad; grad = d CE(predictions * scale, labels) / d scale
    over the whole batch (both environments concatenated); loss_irm = grad.abs().sum() * irm_weight.
    The gradient of the mean CE w.r.t. scale_c is mean_i (softmax(z_i)_c - [y_i = c]) * z_ic."""
    m = make("irm", epochs=100)
    model = m.build_model(create_backbone("small_cnn", width=4)).eval()
    (stage,) = m.stages()
    m.on_epoch_start(stage, 0)
    x, y = rand(6, 3, 16, 16, seed=7), torch.tensor([0, 1, 2, 0, 1, 2])
    index = torch.tensor([0, 3, 8, 10, 13, 19])  # three draws of environment 0, three of environment 1
    loss, out, logs = m.training_step(model, x, y, index)
    with torch.no_grad():
        z = model(x).double()
        onehot = F.one_hot(y, 3).double()
        closed = ((z.softmax(1) - onehot) * z).mean(0).abs().sum()
        want = F.cross_entropy(z, y) + 1e-3 * closed
    assert logs["irm_penalty"] == pytest.approx(float(closed), rel=1e-4)
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    z = out.logits.detach()
    env = index // m.n
    irmv1 = sum(float(irm_penalty(z[env == e], y[env == e])) for e in (0, 1))
    assert irmv1 != pytest.approx(float(closed), rel=1e-2)
    v1 = make("irm", epochs=100, penalty="irmv1")
    v1.build_model(create_backbone("small_cnn", width=4))
    v1.on_epoch_start(stage, 0)
    _, _, logs1 = v1.training_step(model, x, y, index)
    assert logs1["irm_penalty"] == pytest.approx(irmv1, rel=1e-4)


# ---- 8. further rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("epochs", [100, 12, 7])
def test_ldam_deferred_reweighting_starts_where_the_original_does_at_any_length(epochs):
    """utils/training_utils.py LDAMLoss.set_weight: `idx = epoch // int(total_epoch * 0.8)`, betas [0, 0.9999]:
    beta 0 gives every class weight 1, so re-weighting starts at epoch int(0.8 * epochs)."""
    m = make("ldam", epochs=epochs)
    stage = Stage("main", epochs)
    got = []
    for epoch in range(epochs):
        m.on_epoch_start(stage, epoch)
        got.append(m.weight is not None)
    assert got == [epoch // int(epochs * 0.8) == 1 for epoch in range(epochs)]
