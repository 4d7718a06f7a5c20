"""`open_clip:<arch>` backbones: the vision tower of an open_clip model as a feature extractor.

The feature is the tower's output, the projected image embedding that `model.encode_image` returns
(not L2-normalised), so `out_features` is the model's `embed_dim`. The text tower is dropped after
creation (the backbone's state dict is the tower's); the tower remembers where it came from, so
`create_open_clip_text` rebuilds the text tower of the same architecture and weights when a method needs it
(zero-shot classifiers, text-initialised heads). `weights` is open_clip's pretrained tag (`open_clip.list_pretrained_tags_by_model(arch)`),
downloaded by open_clip itself; a local file (`model.weights_file`) is read as open_clip reads its
checkpoints (a full CLIP state dict or the tower's own, .safetensors or torch.load(weights_only=True))."""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from glt.errors import GLTError, first_line, unknown_name

# open_clip's tower keys in a full CLIP state dict
VISUAL = "visual."


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise GLTError("open_clip backbones need open_clip_torch: pip install 'glt[foundation]'") from None
    return open_clip


class OpenCLIPVisual(nn.Module):
    """A CLIP image tower: (B, 3, S, S) images -> (B, embed_dim) embeddings; S is fixed (`input_size`)."""

    def __init__(self, arch: str, visual: nn.Module, embed_dim: int, preprocess: dict, weights_name: str | None):
        super().__init__()
        self.visual = visual  # the attribute name keeps a full CLIP state dict's `visual.*` keys valid
        self.arch = arch
        self.out_features = int(embed_dim)
        size = preprocess.get("size")
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size) if size else None
        self.input_norm = (tuple(preprocess["mean"]), tuple(preprocess["std"])) if "mean" in preprocess else None
        self.weights_name = weights_name
        # how the tower was made: what create_open_clip_text needs to rebuild its text tower
        self.source: dict = {"weights": None, "weights_file": None, "options": {}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)

    def load_weights_file(self, path: str) -> None:
        """The tower's weights from a local open_clip checkpoint; text-tower keys are ignored, a missing
        or unexpected tower key is an error naming the file. Position embeddings are resized by open_clip
        when the file was trained at another image size."""
        if not os.path.isfile(path):
            raise GLTError(f"weights file not found: {path}")
        _open_clip()
        from open_clip.factory import load_state_dict, resize_pos_embed

        try:
            state = load_state_dict(path, device="cpu", weights_only=True)
        except Exception as e:  # torch / safetensors raise many types for corrupt or unsafe files
            raise GLTError(f"cannot load weights file {path}: {first_line(e)}") from None
        state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
        if not any(k.startswith(VISUAL) for k in state):
            state = {VISUAL + k: v for k, v in state.items()}  # a tower-only file (model.visual.state_dict())
        state = {k: v for k, v in state.items() if k.startswith(VISUAL)}
        resize_pos_embed(state, self)
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GLTError(
                f"weights file {path} does not match backbone 'open_clip:{self.arch}': {len(missing)} missing tower "
                f"keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
            )
        self.source["weights_file"] = path

    def text_tower(self) -> "OpenCLIPText":
        """The text tower of the same architecture and weights (built anew; see create_open_clip_text)."""
        return create_open_clip_text(self.arch, **self.source)


def _create_clip(arch: str, weights: str | None, **kwargs):
    """open_clip.create_model(arch, pretrained=weights, **kwargs), names checked first."""
    open_clip = _open_clip()
    if arch not in open_clip.list_models():
        raise unknown_name("open_clip architecture", arch, open_clip.list_models())
    if weights:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if weights not in tags:
            raise unknown_name(f"pretrained tag of open_clip:{arch}", weights, tags or ["(none published)"])
    # open_clip logs a warning for every randomly initialised model; glt records it instead
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        model = open_clip.create_model(arch, pretrained=weights or None, **kwargs)
    except (TypeError, ValueError) as e:  # an unknown or invalid model.options key
        raise GLTError(f"cannot build backbone 'open_clip:{arch}': {first_line(e)}") from None
    finally:
        logging.getLogger().setLevel(quiet)
    return model


def create_open_clip_backbone(arch: str, weights: str | None = None, **kwargs) -> OpenCLIPVisual:
    """open_clip.create_model(arch, pretrained=weights, **kwargs), its vision tower kept (a failed download
    propagates: glt.models.backbones turns it into one error line)."""
    open_clip = _open_clip()
    model = _create_clip(arch, weights, **kwargs)
    embed_dim = getattr(model.visual, "output_dim", None) or open_clip.get_model_config(arch)["embed_dim"]
    preprocess = dict(open_clip.get_model_preprocess_cfg(model))
    tower = OpenCLIPVisual(arch, model.visual, embed_dim, preprocess, f"{arch}/{weights}" if weights else None)
    tower.source.update(weights=weights, options=dict(kwargs))
    return tower


class OpenCLIPText:
    """A CLIP model's text side: `encode(texts)` (L2-normalised text embeddings, open_clip's tokenizer and
    encode_text), `classifier(names, templates)` (open_clip's build_zero_shot_classifier: per class the
    normalised mean over templates of the normalised embeddings, (C, embed_dim)) and `logit_scale`
    (exp of the model's learned temperature, 100 for OpenAI's weights)."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.logit_scale = float(model.logit_scale.detach().exp())

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts), normalize=True)

    def classifier(self, names, templates, device: torch.device | str = "cpu") -> torch.Tensor:
        """(C, embed_dim), computed on `device` (classes x templates prompts: 80,000 for ImageNet's 1,000 classes)."""
        from open_clip import build_zero_shot_classifier

        model = self.model.to(device)
        return build_zero_shot_classifier(model, self.tokenizer, list(names), list(templates), device=device).T.cpu()


def create_open_clip_text(arch: str, weights: str | None = None, weights_file: str | None = None,
                          options: dict | None = None) -> OpenCLIPText:
    """The full CLIP model of `arch` with `weights` (a pretrained tag) or `weights_file` (a full CLIP checkpoint,
    read by open_clip's load_checkpoint: a tower-only file has no text tower to read) and its tokenizer."""
    open_clip = _open_clip()
    model = _create_clip(arch, weights, **(options or {}))
    if weights_file:
        if not os.path.isfile(weights_file):
            raise GLTError(f"weights file not found: {weights_file}")
        from open_clip.factory import load_checkpoint

        try:
            missing = load_checkpoint(model, weights_file, strict=False).missing_keys
        except Exception as e:  # torch / safetensors raise many types for corrupt or unsafe files
            raise GLTError(f"cannot load weights file {weights_file}: {first_line(e)}") from None
        lacking = [k for k in missing if not k.startswith(VISUAL)]
        if lacking:
            raise GLTError(f"weights file {weights_file} has no text tower of 'open_clip:{arch}' ({len(lacking)} "
                           f"keys missing, e.g. {lacking[:2]}); pass the full CLIP checkpoint, not the tower's")
    return OpenCLIPText(model, open_clip.get_tokenizer(arch))
