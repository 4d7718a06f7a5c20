"""What a method is: a loss, a head, a sampler, a post-hoc rule and (optionally) extra stages.

The training loop (glt.engine.trainer) calls only the hooks below, so a new method is one small
class registered by name; the loop never changes for it (DomainBed-style registry)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glt.models import GLTModel, create_head
from glt.registry import Registry
from glt.search.space import Distribution

METHODS: Registry[type["Method"]] = Registry("method")
# wrappers turn any method into a variant (`ifl+<method>`): classes taking (method, settings, ctx)
WRAPPERS: Registry[type] = Registry("method wrapper")

# `data.prior_order`: which class each entry of the class counts belongs to (docs/fidelity.md, section bugs).
# label: entry c counts class c. original_text_sort: the original's utils/general_utils.py count_dataset, which
# keys the counts by str(label) and sorts the keys as text (0, 1, 10, 100, 101, ...), so with more than 10
# classes entry c holds the count of another class; the original's BlSoftmaxLoss, LDAMLoss, RIDELoss and
# TADELoss (utils/training_utils.py) took their counts from it, its logit adjustment (compute_adjustment) and
# BBN (train_bbn.py) count with integer keys and are right.
PRIOR_ORDERS = ("label", "original_text_sort")
COUNT_DATASET_METHODS = frozenset({"blsoftmax", "ldam", "ride", "tade"})


def text_sorted_counts(counts: np.ndarray) -> np.ndarray:
    """The counts in the order of the original's count_dataset: entry i = the count of the i-th class id in
    text order ("0" < "1" < "10" < "100" < ... < "2" ...). Over all class ids (an absent class counts 0;
    where every class is present, as in the training splits of ImageNet-GLT and MSCOCO-GLT, this is the
    original's array exactly; the original drops absent classes, and then its arrays no longer fit the
    logits)."""
    counts = np.asarray(counts)
    return counts[sorted(range(len(counts)), key=str)]


@dataclass
class Context:
    """What a method may know about the task: sizes and the training-set class counts."""

    num_classes: int
    class_counts: np.ndarray  # images per class in the training split
    epochs: int  # epochs of the main stage
    device: torch.device = torch.device("cpu")
    batch_size: int = 1
    # per-sample metadata of the training split (row order), for per-sample methods such as IFL
    labels: np.ndarray | None = None
    attribute: np.ndarray | None = None
    num_attributes: int | None = None
    # the factor the loop's last backward pass multiplied gradients by (fp16 loss scaling), so state a
    # method updates outside the optimizer (IFL's centers) can undo it
    grad_scale: float = 1.0
    # `data.prior_order` (PRIOR_ORDERS): original_text_sort hands the methods in COUNT_DATASET_METHODS the
    # original's misaligned counts in `class_counts` / `prior`; `label_counts` always holds the true ones
    prior_order: str = "label"
    label_counts: np.ndarray | None = None
    # `model.head_bias`: linear classifier heads with a bias term (the original's have none)
    head_bias: bool = False
    # the engine's reader of a finished run folder (glt.runtime.run_dir.load_finished_run): a method that
    # starts from another run's weights (decoupling's `init_from`) asks for them here instead of finding files
    load_run: Callable[[str], Any] | None = None
    # the benchmark's class names in label order (a CLIP text classifier prompts with them)
    class_names: list[str] | None = None

    def __post_init__(self):
        if self.prior_order not in PRIOR_ORDERS:
            from glt.errors import GLTError

            raise GLTError(f"data.prior_order must be one of {', '.join(PRIOR_ORDERS)}, not '{self.prior_order}'")
        if self.label_counts is None:
            self.label_counts = np.asarray(self.class_counts).copy()

    def use_prior_order(self, method_name: str) -> None:
        """Give `method_name` the class counts `prior_order` asks for (called by Method.__init__)."""
        if self.prior_order == "original_text_sort" and method_name in COUNT_DATASET_METHODS:
            self.class_counts = text_sorted_counts(self.label_counts)

    @property
    def prior(self) -> torch.Tensor:
        counts = torch.as_tensor(self.class_counts, dtype=torch.float32).clamp_min(1)
        return (counts / counts.sum()).to(self.device)


@dataclass
class Stage:
    """One phase of training run by the same loop: its epochs, what it trains and how it samples."""

    name: str
    epochs: int
    sampler: str = "instance"
    # which parameters the stage's optimizer updates: "all", "head" (decoupled classifier re-training, the
    # frozen backbone's BatchNorm statistics still updating as in the original) or "head_eval" (the same with
    # the backbone in eval mode)
    trainable: str = "all"
    lr: float | None = None  # None: the config's optimizer lr
    # the method's own multistep milestones as fractions of the stage's epochs (LDAM's 0.8 / 0.9 of 100
    # epochs = 80 / 90), so they scale with shorter runs; used only while optim.milestones is empty
    milestones: list[float] | None = None
    # images per optimizer step as a multiple of data.batch_size (BBN feeds each of its two branches a full
    # batch, as the original's two loaders did: 2 x batch_size images a step)
    batch_scale: int = 1


@dataclass
class Output:
    """A forward pass: logits for the loss / scores, features for feature-level losses (IFL)."""

    logits: torch.Tensor
    features: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)


class Method:
    """Cross-entropy with instance sampling; other methods override only what differs."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @dataclass
    class Settings:
        pass

    # changes to the general training defaults that the original study used for this method
    train_defaults: ClassVar[dict[str, Any]] = {}
    # `--preset paper`: the original study's settings of this method (nested config keys), on both benchmark
    # kinds, and those that differ by kind ("imagenet_glt" / "mscoco_glt"); glt.presets adds the common recipe
    paper: ClassVar[dict[str, Any]] = {}
    paper_by_kind: ClassVar[dict[str, dict[str, Any]]] = {}
    # the range each of this method's own settings may be searched over (dotted config key -> distribution);
    # glt.search.space.COMMON_SPACE holds the optimiser's
    search_space: ClassVar[dict[str, Distribution]] = {}
    # builds its classifier from an open_clip text tower (CLIP zero-shot): it needs an open_clip:ARCH backbone,
    # so the zoo sweep and the every-method tests on the small CNN leave it out (glt.methods.zoo_names)
    needs_text_tower: ClassVar[bool] = False
    # why it cannot train on stored features (data.features: the store holds one feature per image, no image);
    # False: it can
    needs_images: ClassVar[str | bool] = False

    def __init__(self, settings: Any, ctx: Context):
        self.settings = settings
        self.ctx = ctx
        if not isinstance(self, MethodWrapper):  # a wrapper shares its base's Context and counts
            ctx.use_prior_order(type(self).name)

    # ---- model --------------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> GLTModel:
        return GLTModel(backbone, create_head("linear", backbone.out_features, self.ctx.num_classes,
                                              bias=self.ctx.head_bias))

    def extra_modules(self) -> nn.ModuleDict:
        """Learnable state outside the model (e.g. IFL's centers); saved in checkpoints."""
        return nn.ModuleDict()

    def stages(self) -> list[Stage]:
        return [Stage("main", self.ctx.epochs)]

    # ---- training -----------------------------------------------------------------------------------
    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        """Called before each epoch (epoch counted within the stage)."""

    def forward(self, model: GLTModel, images: torch.Tensor) -> Output:
        features = model.forward_features(images)
        return Output(model.forward_head(features), features)

    def loss(self, out: Output, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.logits, labels)

    def training_step(
        self, model: GLTModel, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, Output, dict[str, float]]:
        """One mini-batch: returns (loss, forward output, scalars to log)."""
        out = self.forward(model, images)
        return self.loss(out, labels), out, {}

    def sampler_options(self, stage: Stage) -> dict[str, Any]:
        """Keyword options for the stage's sampler (e.g. images per class of class-aware sampling)."""
        return {}

    def sampler_update(self, stage: Stage, epoch: int) -> dict[str, Any] | None:
        """New sampler state before an epoch (e.g. IFL's environment weights), passed to
        `sampler.update(**state)` by the loop; None: unchanged."""
        return None

    def after_step(self) -> None:
        """Called after each optimizer step (e.g. to step a method's own optimizer)."""

    def on_epoch_end(self, stage: Stage, epoch: int) -> dict[str, Any]:
        """Called after each epoch; returns scalars/structures to log in the epoch's metrics line."""
        return {}

    # ---- inference ----------------------------------------------------------------------------------
    def predict_logits(self, model: GLTModel, images: torch.Tensor) -> torch.Tensor:
        """Test-time logits (post-hoc rules such as logit adjustment go here)."""
        return self.forward(model, images).logits

    # ---- checkpoint ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _delegate(name: str):
    def hook(self, *args, **kwargs):
        return getattr(self.base, name)(*args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = f"The wrapped method's `{name}`."
    return hook


# every public hook of Method; MethodWrapper forwards each one it does not define itself
HOOKS = tuple(name for name, value in vars(Method).items() if inspect.isfunction(value) and not name.startswith("_"))


class MethodWrapper(Method):
    """A method around another (`WRAPPER+NAME`): every hook of Method (HOOKS) delegates to the wrapped method
    unless the wrapper overrides it, so a new hook needs no forwarding code. The wrapper's own state is saved
    beside the base's, under "base". `default_base` is the method a bare wrapper name means."""

    default_base: ClassVar[str] = "ce"

    def __init__(self, base: Method, settings: Any, ctx: Context):
        super().__init__(settings, ctx)
        self.base = base

    def state_dict(self):
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state):
        self.base.load_state_dict(state.get("base", {}))


for _name in HOOKS:
    if _name not in vars(MethodWrapper):
        setattr(MethodWrapper, _name, _delegate(_name))
