"""`glt backbones [PATTERN]`: the backbones glt can build, with the published weights of each."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "backbones", help="list the backbones (model.backbone) and their published weights (model.weights)",
        description="One line per backbone glt can build: small_cnn, the torchvision classification models, "
        "timm:<name> (timm.list_models) and open_clip:<arch> (open_clip.list_models), each followed by the names "
        "its published weights go by (torchvision weights enums, timm and open_clip pretrained tags). PATTERN "
        "filters the names (fnmatch, case-insensitive; without a wildcard, any name containing it).",
    )
    p.add_argument("pattern", nargs="?", metavar="PATTERN", help="e.g. 'resnet*', 'timm:vit_base*', 'open_clip:ViT-B*'")
    p.add_argument("--pretrained", action="store_true", help="only backbones with published weights")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.errors import GLTError
    from glt.models.backbones import backbone_catalogue  # imports torch, torchvision, timm, open_clip

    rows = backbone_catalogue(args.pattern, args.pretrained)
    if not rows:
        raise GLTError(f"no backbone matches '{args.pattern}' (`glt backbones` lists them all)")
    width = min(max(len(name) for name, _ in rows), 48)
    for name, weights in rows:
        print(f"{name:<{width}}  {', '.join(weights)}".rstrip())
    return 0
