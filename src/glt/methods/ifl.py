"""IFL, Invariant Feature Learning, as a wrapper around any method: `ifl+<method>` (docs/ifl.md; the
original's train_center_dual.py and its variants train_center_{single,triple,ldam_dual,ride,tade,dual_mixup,
ride_mixup}.py, config/algorithms_config.yaml `center_*`; docs/fidelity.md, section C).

Warm up with the wrapped method's loss; then repeatedly rebuild environments from the per-sample
true-class scores recorded during training (no extra pass) and train on mini-batches drawn equally
from every environment with `L_method + alpha * L_center`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from glt.errors import GLTError
from glt.methods.base import WRAPPERS, Context, Method, MethodWrapper, Output, Stage
from glt.methods.environments import (
    ENV_RULES,
    ENV_SCALES,
    build_environments,
    environment_stats,
)
from glt.runtime import distributed as dist

CENTER_LOSSES = ("auto", "euclidean", "cosine", "triplet")
CENTER_UPDATES = ("optimizer", "ema")
BUDGETS = ("original", "matched")
EPOCH_SCORES = ("last", "mean")
UNDRAWN = ("original", "carry")
SCORE_LOGITS = ("original", "trained")


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


@WRAPPERS.register("ifl")
class IFL(MethodWrapper):
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

    @dataclass
    class Settings:
        env_rule: str = "intra"  # intra | inter | inter_intra | correctness | uniform
        num_envs: int = 2
        sample_scale: float = 4.0  # target head/tail ratio of the Pareto rule (of the last environment)
        # head/tail targets of the environments before the last: original (sample_scale // (K - k):
        # train_center_triple.py's 2 and 4) | power (sample_scale ** k: 4, 16)
        env_scales: str = "original"
        # a sample drawn several times in the scoring epoch: last (its last draw in the global batch order,
        # correct if any draw was: the original) | mean (the mean of its draws, correct if half were)
        epoch_scores: str = "last"
        # a sample not drawn in the scoring epoch: original (no score: weight 0 in an intra environment,
        # as the original) | carry (the score of the last epoch it was drawn in, else its class's mean)
        undrawn: str = "original"
        # the logits the scores are the softmax of: original (what the original's classifier outputs: for
        # ifl+ldam the unscaled cosines, logits / method_args.scale, as ClassifierLDAM leaves the scale s to
        # LDAMLoss; the logits otherwise) | trained (the logits the loss sees, s * cos for LDAM)
        score_logits: str = "original"
        # auto: cosine for methods with a normalised classifier (LDAM, RIDE), else euclidean
        center_loss: str = "auto"  # auto | euclidean | cosine | triplet
        triplet_margin: float = 1.0
        center_update: str = "optimizer"  # optimizer (SGD, gradient / alpha) | ema (moving average)
        center_lr: float = 0.5
        center_ema: float = 0.9  # moving-average momentum for center_update=ema
        # matched (glt's choice, docs/ifl.md): N samples per epoch, the base method's steps, so a comparison
        # with the base method is at equal cost | original (--preset paper): N per environment per epoch
        budget: str = "matched"
        schedule_epochs: int = 100  # the schedule below is written for this many epochs
        rebuild_after: list[int] = field(default_factory=lambda: [60, 80])  # epochs ending with a rebuild
        rebuild_every_epoch: bool = False  # the original's always_update (env_dual, irm_dual)
        alpha_milestones: list[int] = field(default_factory=lambda: [60, 80])
        alphas: list[float] = field(default_factory=lambda: [0.0, 0.001, 0.005])  # before / between / after

    def __init__(self, base: Method, settings, ctx: Context):
        super().__init__(base, settings, ctx)
        s = settings
        for key, value, allowed in (("env_rule", s.env_rule, ENV_RULES), ("center_loss", s.center_loss, CENTER_LOSSES),
                                    ("center_update", s.center_update, CENTER_UPDATES), ("budget", s.budget, BUDGETS),
                                    ("env_scales", s.env_scales, ENV_SCALES), ("undrawn", s.undrawn, UNDRAWN),
                                    ("epoch_scores", s.epoch_scores, EPOCH_SCORES),
                                    ("score_logits", s.score_logits, SCORE_LOGITS)):
            if value not in allowed:
                raise GLTError(f"wrapper_args.{key} must be one of {', '.join(allowed)}, not '{value}'")
        if s.num_envs < 2:
            raise GLTError("wrapper_args.num_envs must be at least 2")
        if len(s.alphas) != len(s.alpha_milestones) + 1:
            raise GLTError("wrapper_args.alphas needs one value more than wrapper_args.alpha_milestones")
        if s.env_rule == "correctness" and s.num_envs != 2:
            raise GLTError("wrapper_args.env_rule=correctness defines exactly two environments")
        self.center_kind = s.center_loss
        if s.center_loss == "auto":
            self.center_kind = "cosine" if getattr(base, "cosine_classifier", False) else "euclidean"
        # the original's ClassifierLDAM outputs cos; its LDAMLoss multiplies by s: the scores saw the cosines
        self.score_divisor = 1.0
        if s.score_logits == "original" and getattr(base, "name", "") == "ldam":
            self.score_divisor = float(base.settings.scale)
        n = int(ctx.class_counts.sum())
        self.n = n
        dev = ctx.device
        self.scores = torch.full((n,), float("nan"))  # NaN: no score (not drawn in the scoring epoch)
        self.correct = torch.zeros(n, dtype=torch.bool)
        # this epoch so far: sum / count / hits of each sample's draws, and its last draw (global position
        # in the epoch's draw sequence, -1: none yet, and the score there)
        self._sum = torch.zeros(n, device=dev)
        self._cnt = torch.zeros(n, device=dev)
        self._hit = torch.zeros(n, device=dev)
        self._pos = torch.full((n,), -1, dtype=torch.int64, device=dev)
        self._last = torch.zeros(n, device=dev)
        self._step = 0  # record_scores calls (training steps) of this epoch so far
        self.env_weights = torch.ones(s.num_envs, n, dtype=torch.float64)
        self.centers = torch.zeros(ctx.num_classes, 1, device=dev)  # sized once the feature size is known
        self.center_opt: torch.optim.Optimizer | None = None
        self.stage_index = 0
        self.active = False
        self.epoch = 0
        self._refresh()
        self.rebuilds: list[dict] = []
        self._pending_stats: dict | None = None

    # ---- schedule -----------------------------------------------------------------------------------
    def _scaled(self, epochs_list: list[int]) -> list[int]:
        f = self.ctx.epochs / self.settings.schedule_epochs
        return [int(round(e * f)) for e in epochs_list]

    def alpha(self, epoch: int) -> float:
        k = sum(epoch >= m for m in self._scaled(self.settings.alpha_milestones))
        return float(self.settings.alphas[k])

    def _refresh(self) -> None:
        """What every training step reads, as plain values computed once per epoch: the settings are an
        OmegaConf config whose attribute reads cost tens of microseconds each, alpha a few of them."""
        self._alpha = self.alpha(self.epoch)
        self._optimizer_update = self.settings.center_update == "optimizer"
        self._draws = self._per_env() * self.settings.num_envs  # the epoch's draws: the rest is padding
        self._margin = self.settings.triplet_margin
        self._ema = self.settings.center_ema

    # ---- model and stages ---------------------------------------------------------------------------
    def build_model(self, backbone):
        model = self.base.build_model(backbone)
        dim = model.feature_dim
        # torch.randn from the run's seeded global RNG, after the model is built, as the original's CenterLoss
        # (every rank is seeded alike before the model is built, so the centers agree across ranks)
        self.centers = torch.randn(self.ctx.num_classes, dim).to(self.ctx.device)
        if self.settings.center_update == "optimizer":
            self.centers.requires_grad_(True)
            self.center_opt = torch.optim.SGD([self.centers], lr=self.settings.center_lr)
        return model

    def stages(self) -> list[Stage]:
        stages = [Stage(**vars(st)) for st in self.base.stages()]
        first = stages[0]
        if first.sampler != "instance":
            raise GLTError(f"ifl wraps the representation-learning stage; '{first.sampler}' sampling of its base "
                           "method cannot be combined with IFL's environments")
        first.sampler = "environments"
        return stages

    def sampler_options(self, stage: Stage) -> dict:
        if stage.sampler != "environments":
            return self.base.sampler_options(stage)
        return {"num_envs": self.settings.num_envs, "samples_per_env": self._per_env(),
                "batch_size": self.ctx.batch_size}

    def _per_env(self) -> int:
        return self.n if self.settings.budget == "original" else self.n // self.settings.num_envs

    def sampler_update(self, stage: Stage, epoch: int):
        if stage.sampler != "environments":
            return self.base.sampler_update(stage, epoch)
        return {"env_weights": self.env_weights.numpy()}

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        self.active = stage.sampler == "environments"
        self.epoch = epoch
        self._refresh()
        for t in (self._sum, self._cnt, self._hit, self._last):
            t.zero_()
        self._pos.fill_(-1)
        self._step = 0
        self.base.on_epoch_start(stage, epoch)

    # ---- training -----------------------------------------------------------------------------------
    def training_step(self, model, images, labels, index):
        if not self.active:
            return self.base.training_step(model, images, labels, index)
        row = (index % self.n).to(self.ctx.device)
        loss, out, logs = self.base.training_step(model, images, labels, row)
        self.record_scores(out, labels, row)
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

    @torch.no_grad()
    def record_scores(self, out: Output, labels, row) -> None:
        """Record this step's true-class softmax score and correctness of each drawn sample. Called once per
        training step, with the rank's batch in the sampler's order: the j-th sample of step s on rank r of
        W sits at position (s * B / W + j) * W + r of the epoch's global draw sequence (B the global batch;
        the samplers give rank r every W-th draw), so "last draw" means the same on 1 and on N processes.
        Draws past the epoch's length (the padding that evens out the ranks) are not scored."""
        w, r = dist.world_size(), dist.rank()
        first = self._step * max(1, self.ctx.batch_size // w)
        # positions grow with j: the draws kept (pos < the epoch's draws) are the first `k`, counted on the
        # host (a boolean mask would cost a device sync): (first + j) * w + r < D <=> j < ceil((D - r) / w) - first
        k = min(len(row), max(0, -(-(self._draws - r) // w) - first))
        self._step += 1
        pos = (first + torch.arange(k, device=row.device)) * w + r
        prob = (out.logits.detach().float() / self.score_divisor).softmax(1).gather(1, labels[:, None]).squeeze(1)
        hit = (out.logits.detach().argmax(1) == labels).float()
        row, prob, hit = row[:k], prob[:k], hit[:k]
        self._sum.index_add_(0, row, prob)
        self._cnt.index_add_(0, row, torch.ones_like(prob))
        self._hit.index_add_(0, row, hit)
        pos = pos.to(self._pos.device)
        self._pos.scatter_reduce_(0, row, pos, reduce="amax")  # each row's latest draw so far
        latest = pos == self._pos[row]  # positions are unique: one entry per row at most
        self._last[row[latest]] = prob[latest]

    def _center_loss(self, out: Output, labels, centers):
        return center_loss(self.center_kind, out.features, labels, centers, out.logits, self._margin)

    def after_step(self) -> None:
        self.base.after_step()
        if not self.active:
            return
        alpha = self._alpha
        if self._optimizer_update:
            if alpha > 0 and self.centers.grad is not None:
                grad = self.centers.grad
                dist.all_reduce_sum(grad)  # centers live outside DDP: average their gradient by hand
                # alpha scales only the backbone's gradient; fp16 loss scaling scaled all of them
                grad /= (alpha + 1e-12) * dist.world_size() * self.ctx.grad_scale
                if self.ctx.grad_scale == 1.0 or bool(torch.isfinite(grad).all()):  # a skipped fp16 step
                    self.center_opt.step()
            self.center_opt.zero_grad(set_to_none=True)
        else:
            feats, labels = self._batch
            with torch.no_grad():
                c = self.ctx.num_classes
                total = torch.zeros(c, feats.shape[1], device=feats.device).index_add_(0, labels, feats.float())
                count = torch.bincount(labels, minlength=c).float()
                dist.all_reduce_sum(total)
                dist.all_reduce_sum(count)
                seen = count > 0
                m = self._ema
                self.centers[seen] = m * self.centers[seen] + (1 - m) * total[seen] / count[seen, None]

    def on_epoch_end(self, stage: Stage, epoch: int) -> dict:
        logs = dict(self.base.on_epoch_end(stage, epoch))
        if not self.active:
            return logs
        for t in (self._sum, self._cnt, self._hit):  # every rank saw different samples: merge them
            dist.all_reduce_sum(t)
        # each sample's latest draw over all ranks; the rank that made it contributes its score
        latest = dist.all_gather_rows(self._pos[None]).amax(0)
        last = torch.where((self._pos == latest) & (latest >= 0), self._last, torch.zeros_like(self._last))
        dist.all_reduce_sum(last)
        cnt = self._cnt.cpu()
        seen = cnt > 0
        if self.settings.epoch_scores == "last":  # the original: a dict {index: score} overwritten per draw
            epoch_scores, correct = last.cpu(), self._hit.cpu() > 0  # ... and a list of every correct draw
        else:
            epoch_scores, correct = self._sum.cpu() / cnt.clamp_min(1), self._hit.cpu() / cnt.clamp_min(1) >= 0.5
        if self.settings.undrawn == "original":  # the original builds environments from this epoch's draws only
            self.scores = torch.full_like(self.scores, float("nan"))
            self.correct = torch.zeros_like(self.correct)
        self.scores[seen] = epoch_scores[seen].float()
        self.correct[seen] = correct[seen]
        logs["ifl_alpha"] = self.alpha(epoch)
        logs["ifl_scored_fraction"] = float((~torch.isnan(self.scores)).float().mean())
        if self.settings.rebuild_every_epoch or epoch in self._scaled(self.settings.rebuild_after):
            stats = self.rebuild()
            logs["ifl_environments"] = stats
        return logs

    def rebuild(self) -> dict:
        """Rebuild the environments from the recorded scores; returns their statistics."""
        labels = self._train_labels()
        scores = self.scores.numpy().astype(np.float64)
        missing = np.isnan(scores)
        drawn = None
        if self.settings.undrawn == "original":
            drawn = ~missing
            scores = np.where(missing, 0.0, scores)  # not read: build_environments handles undrawn samples
        elif missing.any():  # never scored (possible early on): use its class's mean score
            sums = np.bincount(labels[~missing], weights=scores[~missing], minlength=self.ctx.num_classes)
            cnts = np.bincount(labels[~missing], minlength=self.ctx.num_classes)
            mean = np.divide(sums, cnts, out=np.full(self.ctx.num_classes, np.nanmean(scores) if (~missing).any() else 0.5), where=cnts > 0)
            scores[missing] = mean[labels[missing]]
        s = self.settings
        w = build_environments(s.env_rule, scores, self.correct.numpy(), labels, self.ctx.num_classes,
                               s.num_envs, s.sample_scale, drawn=drawn, scales=s.env_scales)
        self.env_weights = torch.from_numpy(w)
        stats = {"epoch": self.epoch, "environments": environment_stats(
            w, labels, self.ctx.num_classes, self.ctx.attribute, self.ctx.num_attributes)}
        self.rebuilds.append(stats)
        return stats

    def _train_labels(self) -> np.ndarray:
        if self.ctx.labels is None:
            raise RuntimeError("IFL needs the training labels in its Context")
        return np.asarray(self.ctx.labels)

    # ---- checkpoint ---------------------------------------------------------------------------------
    def state_dict(self):
        state = {
            "base": self.base.state_dict(), "scores": self.scores, "correct": self.correct,
            "env_weights": self.env_weights, "centers": self.centers.detach().cpu(),
            # this epoch's scores so far (a checkpoint written inside an epoch)
            "epoch_sums": torch.stack([self._sum, self._cnt, self._hit]).cpu(),
            "epoch_pos": self._pos.cpu(), "epoch_last": self._last.cpu(), "epoch_step": self._step,
        }
        if self.center_opt is not None:
            state["center_opt"] = self.center_opt.state_dict()
        return state

    def load_state_dict(self, state):
        self.base.load_state_dict(state.get("base", {}))
        self.scores = state["scores"].clone()
        self.correct = state["correct"].clone()
        self.env_weights = state["env_weights"].clone()
        with torch.no_grad():
            self.centers.copy_(state["centers"].to(self.centers.device))
            for t, saved in zip((self._sum, self._cnt, self._hit), state["epoch_sums"]):
                t.copy_(saved.to(t.device))
            if "epoch_pos" in state:
                self._pos.copy_(state["epoch_pos"].to(self._pos.device))
                self._last.copy_(state["epoch_last"].to(self._last.device))
        self._step = int(state.get("epoch_step", 0))
        if self.center_opt is not None and "center_opt" in state:
            self.center_opt.load_state_dict(state["center_opt"])
