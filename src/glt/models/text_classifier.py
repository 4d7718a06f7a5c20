"""Classifiers from class names: prompt templates and class names turned into text embeddings by the text
tower of the backbone's own CLIP model (glt.models.open_clip_backbone.OpenCLIPVisual.text_tower).

`templates`: a name of TEMPLATES ("imagenet": open_clip's OPENAI_IMAGENET_TEMPLATES, the 80 prompts of the
CLIP paper; "simple": "a photo of a {}.") or a text file with one template a line, `{}` where the class name
goes. Class names: the benchmark's, or a file with one name per class in label order (a JSON list or text)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import torch

from glt.errors import GLTError
from glt.registry import Registry

TEMPLATES: Registry[Callable[[], Sequence]] = Registry("prompt template set")


@TEMPLATES.register("imagenet")
def _imagenet() -> Sequence:
    from open_clip import OPENAI_IMAGENET_TEMPLATES

    return OPENAI_IMAGENET_TEMPLATES


TEMPLATES.add("simple", lambda: ("a photo of a {}.",))


def _lines(path: str, what: str) -> list[str]:
    if not os.path.isfile(path):
        raise GLTError(f"{what} file not found: {path}")
    text = open(path, encoding="utf-8").read()
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise GLTError(f"{what} file {path} is not valid JSON: {e}") from None
        if not all(isinstance(x, str) for x in items):
            raise GLTError(f"{what} file {path} must hold a JSON list of strings")
        return [x.strip() for x in items]
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_templates(spec: str) -> Sequence:
    """A template set by name, else a file of templates (each with one `{}`)."""
    if spec in TEMPLATES:
        return TEMPLATES.get(spec)()
    if not os.path.isfile(spec):
        raise GLTError(f"method_args.templates must be one of {', '.join(TEMPLATES.names())} or a file, not '{spec}'")
    out = _lines(spec, "templates")
    bad = [t for t in out if t.count("{}") != 1]
    if not out or bad:
        raise GLTError(f"templates file {spec}: every line needs exactly one '{{}}' for the class name (e.g. {bad[:1]})")
    return out


def class_names(path: str | None, benchmark_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """The file's names (one per class, label order) when given, else the benchmark's."""
    names = _lines(path, "class names") if path else list(benchmark_names or [])
    if not names:
        raise GLTError("a text classifier needs class names: set method_args.class_names to a file with one name "
                       "per class")
    if len(names) != num_classes:
        source = f"class names file {path}" if path else "the benchmark's class list"
        raise GLTError(f"{source} has {len(names)} names for {num_classes} classes")
    return [n.replace("_", " ") for n in names]


def _check_text_tower(backbone) -> None:
    if getattr(backbone, "text_tower", None) is None:
        raise GLTError(f"a text classifier needs an open_clip:<arch> backbone (with a text tower), not "
                       f"{type(backbone).__name__}")


def init_text_head(head, backbone, names_file: str | None, templates: str, benchmark_names, num_classes: int) -> float:
    """Set `head.weight` to the class embeddings of the backbone's CLIP text tower (`names_file`, else the
    benchmark's names; `templates` as read_templates), computed on the head's device; returns CLIP's logit
    scale."""
    _check_text_tower(backbone)  # first: no class names help a backbone without a text tower
    names, prompts = class_names(names_file, benchmark_names, num_classes), read_templates(templates)
    text = backbone.text_tower()
    with torch.no_grad():
        head.weight.copy_(text.classifier(names, prompts, head.weight.device).to(head.weight))
    return text.logit_scale
