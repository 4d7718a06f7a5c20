"""Training on environments rebuilt from the model's own scores: the part IFL and IRM share (the original's
train_center_dual.py and train_irm_dual.py both draw from DistributionSampler environments and rebuild them
from the true-class scores recorded during training; docs/ifl.md, docs/fidelity.md section C).

`EnvironmentTraining` is the component (settings checks, score recording, the sampler's options and weights,
rebuilds, checkpoint state); `EnvironmentWrapper` is a method wrapper that holds one and wires it to the
training loop's hooks. IFL adds its center loss on top, IRM its invariance penalty."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from glt.data.env_index import EnvIndex
from glt.errors import GLTError
from glt.methods.base import Context, Method, MethodWrapper, Output, Stage
from glt.methods.environments import ENV_RULES, ENV_SCALES, build_environments, environment_stats
from glt.runtime import distributed as dist

BUDGETS = ("original", "matched")
EPOCH_SCORES = ("last", "mean")
UNDRAWN = ("original", "carry")
SCORE_LOGITS = ("original", "trained")


@dataclass
class EnvironmentSettings:
    """The environment settings of a wrapper (`wrapper_args.*`); IFL and IRM extend them."""

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
    # matched (glt's choice, docs/ifl.md): N samples per epoch, the base method's steps, so a comparison
    # with the base method is at equal cost | original (--preset paper): N per environment per epoch
    budget: str = "matched"
    schedule_epochs: int = 100  # the schedules (rebuild_after, alpha_milestones) are written for this many epochs
    rebuild_after: list[int] = field(default_factory=lambda: [60, 80])  # epochs ending with a rebuild
    rebuild_every_epoch: bool = False  # the original's always_update (env_dual, irm_dual)


def check_choices(settings, choices: dict[str, tuple]) -> None:
    for key, allowed in choices.items():
        value = getattr(settings, key)
        if value not in allowed:
            raise GLTError(f"wrapper_args.{key} must be one of {', '.join(allowed)}, not '{value}'")


class EnvironmentTraining:
    """Per-sample scores of the current epoch, the environments built from them, and their schedule."""

    def __init__(self, settings, ctx: Context, base: Method):
        s = settings
        check_choices(s, {"env_rule": ENV_RULES, "budget": BUDGETS, "env_scales": ENV_SCALES, "undrawn": UNDRAWN,
                          "epoch_scores": EPOCH_SCORES, "score_logits": SCORE_LOGITS})
        if s.num_envs < 2:
            raise GLTError("wrapper_args.num_envs must be at least 2")
        if s.env_rule == "correctness" and s.num_envs != 2:
            raise GLTError("wrapper_args.env_rule=correctness defines exactly two environments")
        self.settings, self.ctx = s, ctx
        # the original's ClassifierLDAM outputs cos; its LDAMLoss multiplies by s: the scores saw the cosines
        self.score_divisor = 1.0
        if s.score_logits == "original" and getattr(base, "name", "") == "ldam":
            self.score_divisor = float(base.settings.scale)
        n = int(ctx.class_counts.sum())
        self.n, self.index = n, EnvIndex(n)
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
        self._step = 0  # record calls (training steps) of this epoch so far
        self.env_weights = torch.ones(s.num_envs, n, dtype=torch.float64)
        self.active = False
        self.epoch = 0
        # read once: the settings are an OmegaConf config whose attribute reads cost tens of microseconds
        self._draws = self.per_env() * s.num_envs  # the epoch's draws: the rest is padding
        self.rebuilds: list[dict] = []

    # ---- schedule -----------------------------------------------------------------------------------
    def scaled(self, epochs_list: list[int]) -> list[int]:
        """Epochs written for `schedule_epochs` epochs, scaled to the run's."""
        f = self.ctx.epochs / self.settings.schedule_epochs
        return [int(round(e * f)) for e in epochs_list]

    def rebuild_epochs(self) -> list[int]:
        """The (0-based) epochs of the run after which the environments are rebuilt."""
        if self.settings.rebuild_every_epoch:
            return list(range(self.ctx.epochs))
        return sorted(set(self.scaled(self.settings.rebuild_after)))

    def per_env(self) -> int:
        return self.n if self.settings.budget == "original" else self.n // self.settings.num_envs

    # ---- sampling -----------------------------------------------------------------------------------
    def stages(self, base_stages: list[Stage], wrapper: str) -> list[Stage]:
        """The base method's stages with the first one drawn from the environments."""
        stages = [Stage(**vars(st)) for st in base_stages]
        first = stages[0]
        if first.sampler != "instance":
            raise GLTError(f"{wrapper} wraps the representation-learning stage; '{first.sampler}' sampling of its "
                           f"base method cannot be combined with {wrapper.upper()}'s environments")
        first.sampler = "environments"
        return stages

    def sampler_options(self) -> dict:
        return {"num_envs": self.settings.num_envs, "samples_per_env": self.per_env(), "batch_size": self.ctx.batch_size}

    def sampler_update(self) -> dict:
        return {"env_weights": self.env_weights.numpy()}

    def split(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows on the method's device, environments) of the sampler's tagged indices."""
        return self.index.rows(index).to(self.ctx.device), self.index.envs(index)

    # ---- scores -------------------------------------------------------------------------------------
    def start_epoch(self, stage: Stage, epoch: int) -> None:
        self.active = stage.sampler == "environments"
        self.epoch = epoch
        for t in (self._sum, self._cnt, self._hit, self._last):
            t.zero_()
        self._pos.fill_(-1)
        self._step = 0

    @torch.no_grad()
    def record(self, out: Output, labels, row) -> None:
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

    def finish_epoch(self, epoch: int) -> dict:
        """Merge the epoch's scores over the ranks, keep them, and rebuild the environments where the
        schedule says; returns the scalars to log."""
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
        logs = {"ifl_scored_fraction": float((~torch.isnan(self.scores)).float().mean())}
        if self.settings.rebuild_every_epoch or epoch in self.scaled(self.settings.rebuild_after):
            logs["ifl_environments"] = self.rebuild()
        return logs

    def _filled_scores(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores, drawn): undrawn samples left out (original) or given their class's mean score (carry)."""
        scores = self.scores.numpy().astype(np.float64)
        missing = np.isnan(scores)
        if self.settings.undrawn == "original":
            return np.where(missing, 0.0, scores), ~missing  # not read: build_environments skips undrawn ones
        if missing.any():  # never scored (possible early on): use its class's mean score
            c = self.ctx.num_classes
            sums = np.bincount(labels[~missing], weights=scores[~missing], minlength=c)
            cnts = np.bincount(labels[~missing], minlength=c)
            fallback = np.full(c, np.nanmean(scores) if (~missing).any() else 0.5)
            scores[missing] = np.divide(sums, cnts, out=fallback, where=cnts > 0)[labels[missing]]
        return scores, None

    def rebuild(self) -> dict:
        """Rebuild the environments from the recorded scores; returns their statistics."""
        if self.ctx.labels is None:
            raise RuntimeError("environment training needs the training labels in its Context")
        labels = np.asarray(self.ctx.labels)
        scores, drawn = self._filled_scores(labels)
        s = self.settings
        w = build_environments(s.env_rule, scores, self.correct.numpy(), labels, self.ctx.num_classes,
                               s.num_envs, s.sample_scale, drawn=drawn, scales=s.env_scales)
        self.env_weights = torch.from_numpy(w)
        stats = {"epoch": self.epoch, "environments": environment_stats(
            w, labels, self.ctx.num_classes, self.ctx.attribute, self.ctx.num_attributes)}
        self.rebuilds.append(stats)
        return stats

    # ---- checkpoint ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "scores": self.scores, "correct": self.correct, "env_weights": self.env_weights,
            # this epoch's scores so far (a checkpoint written inside an epoch)
            "epoch_sums": torch.stack([self._sum, self._cnt, self._hit]).cpu(),
            "epoch_pos": self._pos.cpu(), "epoch_last": self._last.cpu(), "epoch_step": self._step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.scores = state["scores"].clone()
        self.correct = state["correct"].clone()
        self.env_weights = state["env_weights"].clone()
        with torch.no_grad():
            for t, saved in zip((self._sum, self._cnt, self._hit), state["epoch_sums"]):
                t.copy_(saved.to(t.device))
            if "epoch_pos" in state:
                self._pos.copy_(state["epoch_pos"].to(self._pos.device))
                self._last.copy_(state["epoch_last"].to(self._last.device))
        self._step = int(state.get("epoch_step", 0))


class EnvironmentWrapper(MethodWrapper):
    """A wrapper whose first stage draws from an EnvironmentTraining's environments (`self.envs`). Subclasses
    add their loss term in `training_step` and their weight schedule in `alpha`."""

    def __init__(self, base: Method, settings, ctx: Context):
        super().__init__(base, settings, ctx)
        self.envs = EnvironmentTraining(settings, ctx, base)

    def alpha(self, epoch: int) -> float:
        raise NotImplementedError

    # the environments' state, read by tests and tools as attributes of the wrapper
    n = property(lambda self: self.envs.n)
    env_weights = property(lambda self: self.envs.env_weights)
    scores = property(lambda self: self.envs.scores)
    correct = property(lambda self: self.envs.correct)
    active = property(lambda self: self.envs.active)
    epoch = property(lambda self: self.envs.epoch)
    rebuilds = property(lambda self: self.envs.rebuilds)
    score_divisor = property(lambda self: self.envs.score_divisor)

    def record_scores(self, out: Output, labels, row) -> None:
        self.envs.record(out, labels, row)

    def rebuild(self) -> dict:
        return self.envs.rebuild()

    def rebuild_epochs(self) -> list[int]:
        return self.envs.rebuild_epochs()

    def stages(self) -> list[Stage]:
        return self.envs.stages(self.base.stages(), type(self).name)

    def sampler_options(self, stage: Stage) -> dict:
        return self.envs.sampler_options() if stage.sampler == "environments" else self.base.sampler_options(stage)

    def sampler_update(self, stage: Stage, epoch: int):
        return self.envs.sampler_update() if stage.sampler == "environments" else self.base.sampler_update(stage, epoch)

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        self.envs.start_epoch(stage, epoch)
        self.base.on_epoch_start(stage, epoch)

    def on_epoch_end(self, stage: Stage, epoch: int) -> dict:
        logs = dict(self.base.on_epoch_end(stage, epoch))
        if self.envs.active:
            logs["ifl_alpha"] = self.alpha(epoch)
            logs.update(self.envs.finish_epoch(epoch))
        return logs

    def state_dict(self) -> dict:
        return {"base": self.base.state_dict(), **self.envs.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state.get("base", {}))
        self.envs.load_state_dict(state)
