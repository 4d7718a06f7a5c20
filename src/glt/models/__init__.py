"""Backbones and classifier heads, each behind a registry (timm-style `create_*` factories)."""

from glt.models.backbones import BACKBONES, create_backbone
from glt.models.heads import HEADS, create_head
from glt.models.model import GLTModel

__all__ = ["BACKBONES", "HEADS", "GLTModel", "create_backbone", "create_head"]
