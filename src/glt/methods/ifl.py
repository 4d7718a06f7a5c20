"""IFL, Invariant Feature Learning, as a wrapper around any method: `ifl+<method>` (docs/ifl.md; the
original's train_center_dual.py and its variants train_center_{single,triple,ldam_dual,ride,tade,dual_mixup,
ride_mixup}.py, config/algorithms_config.yaml `center_*`; docs/fidelity.md, section C).

Warm up with the wrapped method's loss; then repeatedly rebuild environments from the per-sample
true-class scores recorded during training (no extra pass) and train on mini-batches drawn equally
from every environment with `L_method + alpha * L_center`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from glt.errors import GLTError
from glt.methods.base import WRAPPERS, Context, Method, Output, Stage
from glt.methods.env_training import EnvironmentSettings, EnvironmentWrapper, check_choices
from glt.methods.probe import probe_head
from glt.runtime import distributed as dist
from glt.search.space import LogUniform, Uniform

CENTER_LOSSES = ("auto", "euclidean", "cosine", "triplet")
CENTER_UPDATES = ("optimizer", "ema")


def center_loss(kind: str, features, labels, centers, logits=None, margin: float = 1.0):
    """Mean over the batch of the distance between each feature and its class center, as the original's
    utils/training_utils.py: euclidean (CenterLoss): ||f - C_y||^2 clamped to [1e-12, 1e12]; cosine
    (CenterCosLoss): 1 - cos(f, C_y), clamped likewise; triplet (CenterTripletLoss):
    `TripletMarginLoss(margin, p=2)(f, C_y, C_n)` = relu(||f - C_y|| - ||f - C_n|| + margin) with plain
    (not squared) distances, C_n the center of the most likely other class (highest other softmax score)."""
    own = centers[labels]
    if kind == "euclidean":
        return ((features - own) ** 2).sum(1).clamp(1e-12, 1e12).mean()
    if kind == "cosine":
        return (1 - F.cosine_similarity(features, own, dim=1)).clamp(1e-12, 1e12).mean()
    if kind == "triplet":
        other = logits.detach().float().softmax(-1)
        other[torch.arange(len(labels)), labels] = -1.0
        neg = centers[other.argmax(-1)]
        return F.triplet_margin_loss(features, own, neg, margin=margin, p=2)
    raise GLTError(f"wrapper_args.center_loss must be one of {', '.join(CENTER_LOSSES)}, not '{kind}'")


def auto_center_kind(head) -> str:
    """`center_loss=auto`: the cosine center loss for a head that compares features by angle (its declared
    `compares_by_angle`, glt.models.heads), the Euclidean one otherwise."""
    return "cosine" if getattr(head, "compares_by_angle", False) else "euclidean"


@WRAPPERS.register("ifl")
class IFL(EnvironmentWrapper):
    """Invariant Feature Learning. Environments: e1 = the natural distribution; e2 = inside each class,
    samples weighted by how badly the model predicts them (min-max normalised true-class softmax score,
    w = 1 - s + 1e-5, Pareto exponent for a target head/tail ratio of `sample_scale`, normalised per
    class, so e2 is class-balanced). A mini-batch takes an equal share from each environment. Loss: the
    wrapped method's + alpha * a center loss shared by the environments. Centers start from a standard
    normal draw of the run's seeded RNG and are updated by their own SGD with the gradient divided by
    alpha (the original code) or by a moving average of the features (the paper's pseudo-code). The
    schedule is given for `schedule_epochs` epochs and scaled to the run's epochs. Defaults are the
    original code's (docs/fidelity.md, section C)."""

    name = "ifl"
    default_base = "blsoftmax"
    description = "Invariant Feature Learning: environments from the model's own scores + center loss"
    # the original's IFL configs (center_LDAM_dual, center_ride, ...) set no optim_params of their own:
    # they keep the dataset config's weight decay 5e-4 even where the base method alone uses 2e-4
    train_defaults = {"optim": {"weight_decay": 5e-4}}
    # the center_* entries of config/algorithms_config.yaml; budget original: each environment yields N samples
    # per epoch (2N in all), as the original's DistributionSampler per environment did
    paper = {"optim": {"weight_decay": 5e-4}, "wrapper_args": {
        "env_rule": "intra", "num_envs": 2, "sample_scale": 4.0, "env_scales": "original", "epoch_scores": "last",
        "undrawn": "original", "score_logits": "original", "center_loss": "auto", "triplet_margin": 1.0,
        "center_update": "optimizer", "center_lr": 0.5, "budget": "original", "schedule_epochs": 100,
        "rebuild_after": [60, 80], "rebuild_every_epoch": False, "alpha_milestones": [60, 80],
        "alphas": [0.0, 0.001, 0.005],
    }}
    search_space = {
        # head/tail ratio of e2: 2 (barely re-weighted) to 8 (twice the original's 4)
        "wrapper_args.sample_scale": Uniform(2.0, 8.0),
        # the centers' own SGD step (original 0.5), a decade around it
        "wrapper_args.center_lr": LogUniform(0.05, 2.0),
        # the center-loss weights (0.001 / 0.005) scaled 5x either way
        "wrapper_args.alpha_scale": LogUniform(0.2, 5.0),
    }

    @dataclass
    class Settings(EnvironmentSettings):
        # auto: as the base method's head declares (`compares_by_angle`): cosine for LDAM and RIDE, else euclidean
        center_loss: str = "auto"  # auto | euclidean | cosine | triplet
        triplet_margin: float = 1.0
        center_update: str = "optimizer"  # optimizer (SGD, gradient / alpha) | ema (moving average)
        center_lr: float = 0.5
        center_ema: float = 0.9  # moving-average momentum for center_update=ema
        alpha_milestones: list[int] = field(default_factory=lambda: [60, 80])
        alphas: list[float] = field(default_factory=lambda: [0.0, 0.001, 0.005])  # before / between / after
        alpha_scale: float = 1.0  # multiplies every entry of alphas: one number to search the weight by

    def __init__(self, base: Method, settings, ctx: Context):
        super().__init__(base, settings, ctx)
        check_choices(settings, {"center_loss": CENTER_LOSSES, "center_update": CENTER_UPDATES})
        if len(settings.alphas) != len(settings.alpha_milestones) + 1:
            raise GLTError("wrapper_args.alphas needs one value more than wrapper_args.alpha_milestones")
        # auto: decided by the built model's head (build_model), or by a probe of it if asked before
        self._center_kind = None if settings.center_loss == "auto" else settings.center_loss
        self.centers = torch.zeros(ctx.num_classes, 1, device=ctx.device)  # sized once the feature size is known
        self.center_opt: torch.optim.Optimizer | None = None
        self._refresh()

    @property
    def center_kind(self) -> str:
        if self._center_kind is None:
            self._center_kind = auto_center_kind(probe_head(self.base))
        return self._center_kind

    # ---- schedule -----------------------------------------------------------------------------------
    def alpha(self, epoch: int) -> float:
        k = sum(epoch >= m for m in self.envs.scaled(self.settings.alpha_milestones))
        return float(self.settings.alphas[k]) * float(self.settings.alpha_scale)

    def _refresh(self) -> None:
        """What every training step reads, as plain values computed once per epoch: the settings are an
        OmegaConf config whose attribute reads cost tens of microseconds each, alpha a few of them."""
        self._alpha = self.alpha(self.envs.epoch)
        self._optimizer_update = self.settings.center_update == "optimizer"
        self._margin = self.settings.triplet_margin
        self._ema = self.settings.center_ema

    # ---- model --------------------------------------------------------------------------------------
    def build_model(self, backbone):
        model = self.base.build_model(backbone)
        if self.settings.center_loss == "auto":
            self._center_kind = auto_center_kind(model.head)
        # torch.randn from the run's seeded global RNG, after the model is built, as the original's CenterLoss
        # (every rank is seeded alike before the model is built, so the centers agree across ranks)
        self.centers = torch.randn(self.ctx.num_classes, model.feature_dim).to(self.ctx.device)
        if self.settings.center_update == "optimizer":
            self.centers.requires_grad_(True)
            self.center_opt = torch.optim.SGD([self.centers], lr=self.settings.center_lr)
        return model

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        super().on_epoch_start(stage, epoch)
        self._refresh()

    # ---- training -----------------------------------------------------------------------------------
    def training_step(self, model, images, labels, index):
        if not self.envs.active:
            return self.base.training_step(model, images, labels, index)
        row, _ = self.envs.split(index)
        loss, out, logs = self.base.training_step(model, images, labels, row)
        self.envs.record(out, labels, row)
        alpha = self._alpha
        self._batch = (out.features.detach(), labels)
        if alpha > 0:
            centers = self.centers if self._optimizer_update else self.centers.detach()
            mix = out.extra.get("mix")
            if mix is not None:  # mixup-style methods: the center loss follows the label mixture
                y_a, y_b, lam = mix
                cl = lam * self._center_loss(out, y_a, centers) + (1 - lam) * self._center_loss(out, y_b, centers)
            else:
                cl = self._center_loss(out, labels, centers)
            loss = loss + alpha * cl
            # a float64 tensor, not float(): no host sync per step; the loop sums it on the device (in
            # float64, as it summed the Python float: the same figures)
            logs = {**logs, "center_loss": cl.detach().double()}
        return loss, out, logs

    def _center_loss(self, out: Output, labels, centers):
        return center_loss(self.center_kind, out.features, labels, centers, out.logits, self._margin)

    def after_step(self) -> None:
        self.base.after_step()
        if not self.envs.active:
            return
        if self._optimizer_update:
            self._step_centers(self._alpha)
        else:
            self._average_centers()

    def _step_centers(self, alpha: float) -> None:
        if alpha > 0 and self.centers.grad is not None:
            grad = self.centers.grad
            dist.all_reduce_sum(grad)  # centers live outside DDP: average their gradient by hand
            # alpha scales only the backbone's gradient; fp16 loss scaling scaled all of them
            grad /= (alpha + 1e-12) * dist.world_size() * self.ctx.grad_scale
            if self.ctx.grad_scale == 1.0 or bool(torch.isfinite(grad).all()):  # a skipped fp16 step
                self.center_opt.step()
        self.center_opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def _average_centers(self) -> None:
        feats, labels = self._batch
        c = self.ctx.num_classes
        total = torch.zeros(c, feats.shape[1], device=feats.device).index_add_(0, labels, feats.float())
        count = torch.bincount(labels, minlength=c).float()
        dist.all_reduce_sum(total)
        dist.all_reduce_sum(count)
        seen = count > 0
        m = self._ema
        self.centers[seen] = m * self.centers[seen] + (1 - m) * total[seen] / count[seen, None]

    # ---- checkpoint ---------------------------------------------------------------------------------
    def state_dict(self):
        state = {**super().state_dict(), "centers": self.centers.detach().cpu()}
        if self.center_opt is not None:
            state["center_opt"] = self.center_opt.state_dict()
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        with torch.no_grad():
            self.centers.copy_(state["centers"].to(self.centers.device))
        if self.center_opt is not None and "center_opt" in state:
            self.center_opt.load_state_dict(state["center_opt"])
