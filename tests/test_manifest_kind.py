"""The manifest's `kind`: written by every builder (their tests check it), inferred for manifests of an
older glt from the builder they record, refused when it names no known kind."""

from __future__ import annotations

import json

import pytest

from glt.benchmark import Benchmark, Manifest
from glt.errors import GLTError

# (info, image_style) of manifests written before the field -> the kind they are read as
OLD = [
    ({"builder": "imagenet"}, "imagenet", "imagenet_glt"),
    ({"builder": "folder"}, "imagenet", "imagenet_glt"),
    ({"builder": "torchvision"}, "imagenet", "imagenet_glt"),
    ({"builder": "coco"}, "imagenet", "mscoco_glt"),
    ({"builder": "import", "layout": "imagenet-glt"}, "imagenet", "imagenet_glt"),
    ({"builder": "import", "layout": "mscoco-glt"}, "imagenet", "mscoco_glt"),
    ({"builder": "import", "layout": "other"}, "imagenet", None),
    ({"builder": "digits"}, "small", "colordigits_glt"),
    ({"builder": "imagenet"}, "small", None),  # not the ImageNet-GLT images
    ({"builder": ["a", "list"]}, "imagenet", None),
    ({}, "imagenet", None),
    ({"generator": "by hand"}, "small", None),
]


def _old_manifest(info, style) -> dict:
    d = Manifest(name="b", classes=["a", "b"], info=info, image_style=style, kind=None).to_dict()
    del d["kind"]
    return d


@pytest.mark.parametrize("info, style, kind", OLD)
def test_old_manifest_kind_is_inferred_from_its_builder(info, style, kind):
    assert Manifest.from_dict(_old_manifest(info, style), "m.json").kind == kind


def test_written_kind_is_read_as_written(tmp_path):
    d = {**_old_manifest({"builder": "coco"}, "imagenet"), "kind": None}  # hand-made, says so
    assert Manifest.from_dict(d, "m.json").kind is None
    d["kind"] = "imagenet_glt"
    assert Manifest.from_dict(d, "m.json").kind == "imagenet_glt"
    assert Manifest.from_dict(Manifest.from_dict(d, "m.json").to_dict(), "m.json").kind == "imagenet_glt"


def test_unknown_kind_is_a_one_line_error_naming_the_file(tmp_path):
    d = {**_old_manifest({}, "imagenet"), "kind": "imagenet"}
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(GLTError) as e:
        Benchmark(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "manifest.json") in msg and "'kind'" in msg
