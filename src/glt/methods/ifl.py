"""IFL, Invariant Feature Learning (SPEC 6), as a wrapper around any method: `ifl+<method>`.

Warm up with the wrapped method's loss; then repeatedly rebuild environments from the per-sample
true-class scores recorded during training (no extra pass) and train on mini-batches drawn equally
from every environment with `L_method + alpha * L_center`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from glt.engine import distributed as dist
from glt.errors import GLTError
from glt.methods.base import WRAPPERS, Context, Method, MethodWrapper, Output, Stage
from glt.methods.environments import ENV_RULES, build_environments, environment_stats

CENTER_LOSSES = ("auto", "euclidean", "cosine", "triplet")
CENTER_UPDATES = ("optimizer", "ema")
BUDGETS = ("matched", "original")


def center_loss(kind: str, features, labels, centers, logits=None, margin: float = 1.0):
    """Mean over the batch of the distance between each feature and its class center.
    euclidean: ||f - C_y||^2; cosine: 1 - cos(f, C_y); triplet: relu(||f - C_y||^2 - ||f - C_n||^2 + margin)
    with C_n the center of the most confused other class (highest other logit)."""
    own = centers[labels]
    if kind == "euclidean":
        return ((features - own) ** 2).sum(1).mean()
    if kind == "cosine":
        return (1 - F.cosine_similarity(features, own, dim=1)).mean()
    if kind == "triplet":
        other = logits.detach().clone()
        other[torch.arange(len(labels)), labels] = float("-inf")
        neg = centers[other.argmax(1)]
        d_pos = ((features - own) ** 2).sum(1)
        d_neg = ((features - neg) ** 2).sum(1)
        return F.relu(d_pos - d_neg + margin).mean()
    raise GLTError(f"wrapper_args.center_loss must be one of {', '.join(CENTER_LOSSES)}, not '{kind}'")


@WRAPPERS.register("ifl")
class IFL(MethodWrapper):
    """Invariant Feature Learning. Environments: e1 = the natural distribution; e2 = inside each class,
    samples weighted by how badly the model predicts them (min-max normalised true-class softmax score,
    w = 1 - s + 1e-5, Pareto exponent for a target head/tail ratio of `sample_scale`, normalised per
    class, so e2 is class-balanced). A mini-batch takes an equal share from each environment. Loss: the
    wrapped method's + alpha * a center loss shared by the environments. Centers are updated by their
    own SGD with the gradient divided by alpha (the original code) or by a moving average of the
    features (the paper's pseudo-code). The schedule is given for `schedule_epochs` epochs and scaled
    to the run's epochs."""

    name = "ifl"
    default_base = "blsoftmax"
    description = "Invariant Feature Learning: environments from the model's own scores + center loss"

    @dataclass
    class Settings:
        env_rule: str = "intra"  # intra | inter | inter_intra | correctness | uniform
        num_envs: int = 2
        sample_scale: float = 4.0  # target head/tail ratio of the Pareto rule
        # auto: cosine for methods with a normalised classifier (LDAM, RIDE), else euclidean
        center_loss: str = "auto"  # auto | euclidean | cosine | triplet
        triplet_margin: float = 1.0
        center_update: str = "optimizer"  # optimizer (SGD, gradient / alpha) | ema (moving average)
        center_lr: float = 0.5
        center_ema: float = 0.9  # moving-average momentum for center_update=ema
        budget: str = "matched"  # matched: N samples per epoch; original: N per environment
        schedule_epochs: int = 100  # the schedule below is written for this many epochs
        rebuild_after: list[int] = field(default_factory=lambda: [60, 80])  # epochs ending with a rebuild
        alpha_milestones: list[int] = field(default_factory=lambda: [60, 80])
        alphas: list[float] = field(default_factory=lambda: [0.0, 0.001, 0.005])  # before / between / after

    def __init__(self, base: Method, settings, ctx: Context):
        super().__init__(base, settings, ctx)
        s = settings
        for key, value, allowed in (("env_rule", s.env_rule, ENV_RULES), ("center_loss", s.center_loss, CENTER_LOSSES),
                                    ("center_update", s.center_update, CENTER_UPDATES), ("budget", s.budget, BUDGETS)):
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
        n = int(ctx.class_counts.sum())
        self.n = n
        dev = ctx.device
        self.scores = torch.full((n,), float("nan"))
        self.correct = torch.zeros(n, dtype=torch.bool)
        self._sum = torch.zeros(n, device=dev)
        self._cnt = torch.zeros(n, device=dev)
        self._hit = torch.zeros(n, device=dev)
        self.env_weights = torch.ones(s.num_envs, n, dtype=torch.float64)
        self.centers = torch.zeros(ctx.num_classes, 1, device=dev)  # sized once the feature size is known
        self.center_opt: torch.optim.Optimizer | None = None
        self.stage_index = 0
        self.active = False
        self.epoch = 0
        self.rebuilds: list[dict] = []
        self._pending_stats: dict | None = None

    # ---- schedule -----------------------------------------------------------------------------------
    def _scaled(self, epochs_list: list[int]) -> list[int]:
        f = self.ctx.epochs / self.settings.schedule_epochs
        return [int(round(e * f)) for e in epochs_list]

    def alpha(self, epoch: int) -> float:
        k = sum(epoch >= m for m in self._scaled(self.settings.alpha_milestones))
        return float(self.settings.alphas[k])

    # ---- model and stages ---------------------------------------------------------------------------
    def build_model(self, backbone):
        model = self.base.build_model(backbone)
        dim = model.feature_dim
        g = torch.Generator().manual_seed(0)
        self.centers = torch.randn(self.ctx.num_classes, dim, generator=g).to(self.ctx.device)
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
        per_env = self.n if self.settings.budget == "original" else self.n // self.settings.num_envs
        return {"num_envs": self.settings.num_envs, "samples_per_env": per_env, "batch_size": self.ctx.batch_size}

    def sampler_update(self, stage: Stage, epoch: int):
        if stage.sampler != "environments":
            return self.base.sampler_update(stage, epoch)
        return {"env_weights": self.env_weights.numpy()}

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        self.active = stage.sampler == "environments"
        self.epoch = epoch
        self._sum.zero_()
        self._cnt.zero_()
        self._hit.zero_()
        self.base.on_epoch_start(stage, epoch)

    # ---- training -----------------------------------------------------------------------------------
    def training_step(self, model, images, labels, index):
        if not self.active:
            return self.base.training_step(model, images, labels, index)
        row = (index % self.n).to(self.ctx.device)
        loss, out, logs = self.base.training_step(model, images, labels, row)
        self.record_scores(out, labels, row)
        alpha = self.alpha(self.epoch)
        self._last = (out.features.detach(), labels)
        if alpha > 0:
            centers = self.centers if self.settings.center_update == "optimizer" else self.centers.detach()
            mix = out.extra.get("mix")
            if mix is not None:  # mixup-style methods: the center loss follows the label mixture
                y_a, y_b, lam = mix
                cl = lam * self._center_loss(out, y_a, centers) + (1 - lam) * self._center_loss(out, y_b, centers)
            else:
                cl = self._center_loss(out, labels, centers)
            loss = loss + alpha * cl
            logs = {**logs, "center_loss": float(cl.detach())}
        return loss, out, logs

    @torch.no_grad()
    def record_scores(self, out: Output, labels, row) -> None:
        """Accumulate this epoch's true-class softmax score and correctness of each drawn sample."""
        prob = out.logits.float().softmax(1).gather(1, labels[:, None]).squeeze(1)
        self._sum.index_add_(0, row, prob)
        self._cnt.index_add_(0, row, torch.ones_like(prob))
        self._hit.index_add_(0, row, (out.logits.argmax(1) == labels).float())

    def _center_loss(self, out: Output, labels, centers):
        return center_loss(self.center_kind, out.features, labels, centers, out.logits, self.settings.triplet_margin)

    def after_step(self) -> None:
        self.base.after_step()
        if not self.active:
            return
        alpha = self.alpha(self.epoch)
        if self.settings.center_update == "optimizer":
            if alpha > 0 and self.centers.grad is not None:
                grad = self.centers.grad
                dist.all_reduce_sum(grad)  # centers live outside DDP: average their gradient by hand
                # alpha scales only the backbone's gradient; fp16 loss scaling scaled all of them
                grad /= (alpha + 1e-12) * dist.world_size() * self.ctx.grad_scale
                if self.ctx.grad_scale == 1.0 or bool(torch.isfinite(grad).all()):  # a skipped fp16 step
                    self.center_opt.step()
            self.center_opt.zero_grad(set_to_none=True)
        else:
            feats, labels = self._last
            with torch.no_grad():
                c = self.ctx.num_classes
                total = torch.zeros(c, feats.shape[1], device=feats.device).index_add_(0, labels, feats.float())
                count = torch.bincount(labels, minlength=c).float()
                dist.all_reduce_sum(total)
                dist.all_reduce_sum(count)
                seen = count > 0
                m = self.settings.center_ema
                self.centers[seen] = m * self.centers[seen] + (1 - m) * total[seen] / count[seen, None]

    def on_epoch_end(self, stage: Stage, epoch: int) -> dict:
        logs = dict(self.base.on_epoch_end(stage, epoch))
        if not self.active:
            return logs
        for t in (self._sum, self._cnt, self._hit):  # every rank saw different samples: merge them
            dist.all_reduce_sum(t)
        cnt = self._cnt.cpu()
        seen = cnt > 0
        # samples not drawn this epoch keep their last known score
        self.scores[seen] = (self._sum.cpu()[seen] / cnt[seen]).float()
        self.correct[seen] = (self._hit.cpu()[seen] / cnt[seen]) >= 0.5
        logs["ifl_alpha"] = self.alpha(epoch)
        logs["ifl_scored_fraction"] = float((~torch.isnan(self.scores)).float().mean())
        if epoch in self._scaled(self.settings.rebuild_after):
            stats = self.rebuild()
            logs["ifl_environments"] = stats
        return logs

    def rebuild(self) -> dict:
        """Rebuild the environments from the recorded scores; returns their statistics."""
        labels = self._train_labels()
        scores = self.scores.numpy().astype(np.float64)
        missing = np.isnan(scores)
        if missing.any():  # never scored (possible early on): use its class's mean score
            sums = np.bincount(labels[~missing], weights=scores[~missing], minlength=self.ctx.num_classes)
            cnts = np.bincount(labels[~missing], minlength=self.ctx.num_classes)
            mean = np.divide(sums, cnts, out=np.full(self.ctx.num_classes, np.nanmean(scores) if (~missing).any() else 0.5), where=cnts > 0)
            scores[missing] = mean[labels[missing]]
        w = build_environments(self.settings.env_rule, scores, self.correct.numpy(), labels, self.ctx.num_classes,
                               self.settings.num_envs, self.settings.sample_scale)
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
        if self.center_opt is not None and "center_opt" in state:
            self.center_opt.load_state_dict(state["center_opt"])
