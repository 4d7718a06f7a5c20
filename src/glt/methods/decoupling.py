"""Decoupled classifier learning (Kang et al. 2020): the representation is learned first with plain
cross-entropy and instance sampling; then the classifier is re-balanced on the frozen backbone.

The second stage runs either in the same run, as an extra stage of the one loop, or from a finished
first-stage run (`method_args.init_from=RUN_DIR`, whose best checkpoint supplies the backbone).

As the original's train_stage2.py (docs/fidelity.md, section A), the second stage freezes the backbone's
parameters but leaves it in train mode: its BatchNorm layers normalise with batch statistics and keep
updating their running statistics under class-aware sampling (`backbone_mode=eval` keeps the first
stage's statistics instead)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from glt.errors import GLTError
from glt.methods.base import METHODS, Method, Stage
from glt.methods.probe import probe_head
from glt.models import GLTModel, create_head
from glt.models.heads import LinearHead
from glt.search.space import LogUniform, Uniform

# a stage's `trainable` for training the head alone on the frozen backbone, by `backbone_mode`: the backbone
# module in train mode (BatchNorm statistics keep updating, the original) or in eval mode
HEAD_STAGES = {"train": "head", "eval": "head_eval"}


def head_only(stage: Stage) -> bool:
    return stage.trainable in HEAD_STAGES.values()


def _first_stage_head(config, ctx) -> type | None:
    """The head class the first-stage run's method builds (probed on a tiny backbone), None if that run's
    config cannot tell: a cosine head has the same parameters as a bias-free linear one."""
    from glt.methods import resolve_method

    try:
        return type(probe_head(resolve_method(str(config.method)).create(config.method_args, config.wrapper_args, ctx)))
    except Exception:  # an old or hand-made folder: the parameter check alone decides
        return None


def load_first_stage(model: GLTModel, run_dir: str, with_head: bool, ctx) -> None:
    """Copy the backbone (and the head, if `with_head`) of a finished run's best checkpoint into `model`;
    the engine's reader (`ctx.load_run`) hands over the weights and that run's config (to check that the
    first stage had a linear head)."""
    if ctx is None or ctx.load_run is None:
        raise GLTError("method_args.init_from needs the training loop's run reader (Context.load_run)")
    try:
        run = ctx.load_run(run_dir)
    except GLTError as e:
        raise GLTError(f"method_args.init_from: {e}") from None
    path, state = run.path, run.model_state
    parts = ("backbone", "head") if with_head else ("backbone",)
    wanted = {k for k in model.state_dict() if k.split(".", 1)[0] in parts}
    given = {k: v for k, v in state.items() if k.split(".", 1)[0] in parts}
    # a head may hold more than the first stage's (LWS's scales): only what the checkpoint lacks of the
    # plain backbone/linear head is an error
    missing = sorted(k for k in wanted - given.keys() if not k.endswith(".scales"))
    unexpected = sorted(given.keys() - wanted)
    advice = "train the first stage with the same backbone and a linear head (e.g. method ce)"
    if missing or unexpected:
        raise GLTError(
            f"method_args.init_from: {path} does not fit this model (backbone {type(model.backbone).__name__}): "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}; {advice}"
        )
    head = _first_stage_head(run.config, ctx) if with_head and run.config is not None else None
    if head is not None and not issubclass(head, LinearHead):
        raise GLTError(f"method_args.init_from: {path} does not fit this model: its head is a {head.__name__}, "
                       f"not a linear head; {advice}")
    try:
        model.load_state_dict(given, strict=False)
    except RuntimeError as e:
        reason = str(e).splitlines()[-1].strip()
        raise GLTError(f"method_args.init_from: {path} does not fit this model: {reason}") from None


class _Decoupled(Method):
    """A linear-classifier method that may start from a finished first-stage run (`method_args.init_from`).
    The first stage's weights are copied when the second stage starts training, not when the model is
    built, so a finished run can be re-scored (`glt eval`) without the first-stage folder."""

    head_name = "linear"
    load_head = True  # copy the first stage's classifier too (cRT re-initialises it anyway)
    # set once the head-only stage has started; part of checkpoints, so that a run resumed inside that
    # stage's first epoch keeps what it trained instead of starting the stage over
    second_stage_started = False

    def build_model(self, backbone) -> GLTModel:
        self.model = GLTModel(backbone, create_head(self.head_name, backbone.out_features, self.ctx.num_classes,
                                                    bias=self.ctx.head_bias))
        return self.model

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        if head_only(stage) and epoch == 0 and not self.second_stage_started:
            self.start_second_stage()
            self.second_stage_started = True

    def start_second_stage(self) -> None:
        if self.settings.init_from:
            load_first_stage(self.model, self.settings.init_from, with_head=self.load_head, ctx=self.ctx)

    def state_dict(self) -> dict:
        return {"second_stage_started": self.second_stage_started}

    def load_state_dict(self, state: dict) -> None:
        self.second_stage_started = bool(state.get("second_stage_started", False))


class _ClassifierRetraining(_Decoupled):
    """cRT / LWS: CE first stage, then `classifier_epochs` of class-aware sampling on the frozen backbone
    (the original's train_stage2.py with data/Sampler_ClassAware.py; docs/fidelity.md, section A)."""

    @dataclass
    class Settings:
        classifier_epochs: int = 10
        classifier_lr: float | None = None  # None: optim.lr
        per_class: int = 4  # images per class drawn at a time by the class-aware sampler
        # samples per stage-2 epoch; None: the original's min(max_c n_c * C, 4 N) (C classes, N images)
        samples_per_epoch: int | None = None
        # the frozen backbone in stage 2: "train" (the original: BatchNorm statistics keep updating under
        # class-aware sampling) or "eval" (BatchNorm keeps the first stage's statistics)
        backbone_mode: str = "train"
        init_from: str | None = None  # a finished first-stage run folder: skip stage 1, use its best backbone

    # stage 2 (train_stage2.py): ClassAwareSampler(num_samples_cls=4) of min(max_c n_c * C, 4 N) samples, the
    # frozen backbone left in train mode
    paper = {"method_args": {"classifier_epochs": 10, "per_class": 4, "samples_per_epoch": None,
                             "backbone_mode": "train"}}
    # the stage-2 rate as the common optimiser range (None: optim.lr)
    search_space = {"method_args.classifier_lr": LogUniform(0.01, 0.5)}

    def stages(self) -> list[Stage]:
        s = self.settings
        if s.backbone_mode not in HEAD_STAGES:
            raise GLTError(f"method_args.backbone_mode must be 'train' or 'eval', not '{s.backbone_mode}'")
        second = Stage("classifier", s.classifier_epochs, "class_aware", HEAD_STAGES[s.backbone_mode],
                       s.classifier_lr)
        return [second] if s.init_from else [Stage("main", self.ctx.epochs), second]

    def sampler_options(self, stage: Stage) -> dict:
        if stage.sampler != "class_aware":
            return {}
        n = self.settings.samples_per_epoch
        return {"per_class": self.settings.per_class, **({"num_samples": n} if n else {})}


@METHODS.register("crt")
class ClassifierRetraining(_ClassifierRetraining):
    """cRT: stage 1 plain cross-entropy; stage 2 re-initialises the linear classifier and re-trains it
    alone on the frozen backbone with class-aware sampling (10 epochs, 4 images per class per draw)."""

    name = "crt"
    description = "decoupling: re-train the classifier on the frozen backbone with class-aware sampling"
    load_head = False

    def start_second_stage(self) -> None:
        super().start_second_stage()
        self.model.head.reset_parameters()  # a fresh nn.Linear, as the original builds its stage-2 classifier


@METHODS.register("lws")
class LearnableWeightScaling(_ClassifierRetraining):
    """LWS: stage 1 plain cross-entropy; stage 2 keeps the classifier's weights and learns one scale per
    class on the frozen backbone with class-aware sampling."""

    name = "lws"
    description = "decoupling: learn one logit scale per class on the frozen classifier, class-aware sampling"
    head_name = "lws"

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        super().on_epoch_start(stage, epoch)
        # every epoch (not only the first), so a run resumed inside stage 2 trains the right parameters
        self.model.head.learn_scales(head_only(stage))


def tau_normalized_logits(features, weight, bias, tau: float):
    """Logits of a linear classifier whose class weight vectors are divided by their norm ** tau
    (`bias` None: a head without bias, the default)."""
    return F.linear(features, weight / weight.norm(dim=1, keepdim=True).pow(tau), bias)


@METHODS.register("tau_norm")
class TauNorm(_Decoupled):
    """tau-normalised classifier: plain cross-entropy training; at test time every class weight vector is
    divided by its norm ** tau (tau 0: the plain classifier, tau 1: all norms equal). No second training."""

    name = "tau_norm"
    description = "decoupling: predict with class weights divided by their norm ** tau (no re-training)"

    @dataclass
    class Settings:
        tau: float = 1.0
        init_from: str | None = None  # a finished first-stage run folder: apply tau-norm to its best checkpoint

    search_space = {"method_args.tau": Uniform(0.0, 2.0)}  # Kang et al. 2020 search tau in [0, 2]

    def stages(self) -> list[Stage]:
        if not self.settings.init_from:
            return super().stages()
        # nothing to train, but the loop scores validation and writes the checkpoint after an epoch:
        # one that draws a single image and steps with learning rate 0, the backbone in eval mode so that
        # its BatchNorm statistics stay the checkpoint's
        return [Stage("tau_norm", 1, "weighted", HEAD_STAGES["eval"], lr=0.0)]

    def sampler_options(self, stage: Stage) -> dict:
        return {"num_samples": 1} if stage.sampler == "weighted" else {}

    def predict_logits(self, model, images):
        features = model.forward_features(images)
        return tau_normalized_logits(features, model.head.weight, model.head.bias, self.settings.tau)
