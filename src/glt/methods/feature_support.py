"""Which methods can train on a feature store (data.features): a store holds one feature per image and no
image, so a method that mixes or augments images, or owns copies of backbone layers, cannot. A method class
declares it (`needs_images`, `needs_text_tower`; glt.methods.base.Method); the config and the engine ask here."""

from __future__ import annotations

from glt.errors import GLTError


def image_reason(cls) -> str | None:
    """Why method class `cls` cannot train on stored features (a phrase), or None when it can."""
    if getattr(cls, "needs_text_tower", False):  # declared by CLIP zero-shot: the store has no text tower
        return "it needs an open_clip backbone's text tower, and a store holds image features only"
    declared = getattr(cls, "needs_images", False)  # a reason, True, or False (glt.methods.base.Method)
    if not declared:
        return None
    return declared if isinstance(declared, str) else "it needs images"


def check_feature_method(spec) -> None:
    """Refuse a method (a glt.methods MethodSpec: `name`, `base`, `wrapper`) that needs images."""
    for cls in (spec.base, spec.wrapper):
        reason = image_reason(cls) if cls is not None else None
        if reason:
            part = f" (its part '{cls.name}')" if cls.name != spec.name else ""
            raise GLTError(f"method '{spec.name}'{part} cannot train on a feature store (data.features): {reason}")
