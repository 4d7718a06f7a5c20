"""`glt build coco` (MSCOCO-GLT, docs/benchmarks.md) on a small generated COCO 2014 layout + COCO-Attributes file.

The exact greedy Test-GBL selection is checked against the straightforward loop (`reference_gbl`); the recipe
invariants, the crops (pixel-compared with the box region of the source image), determinism, resuming and
the bad inputs on a full build."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image

from glt.benchmark import Benchmark
from glt.builders import coco as coco_builder
from glt.builders.coco import (
    attribute_groups,
    build_coco,
    class_attribute_counts,
    crop_box,
    frequency_of_rank,
    plan_splits,
    rank_classes,
)
from glt.builders.coco_attributes import convert_attributes, load_attributes
from glt.builders.coco_gbl import histogram_std, select_gbl
from glt.errors import GLTError

# ---- the reference: the straightforward greedy loop (docs/benchmarks.md, MSCOCO-GLT, step 2), exact fractions ----


def reference_gbl(present: np.ndarray, picks: int) -> list[int]:
    """Scan every remaining object in input order; keep the first with the smallest sum(x^2) / sum(x)^2."""
    present = np.asarray(present, dtype=np.int64)
    h = np.zeros(present.shape[1], dtype=np.int64)
    remaining = list(range(len(present)))
    chosen = []
    for _ in range(picks):
        best, best_ratio = None, None
        for i in remaining:
            v = present[i]
            if v.sum() == 0:
                continue
            x = h + v
            ratio = Fraction(int((x * x).sum()), int(x.sum()) ** 2)
            if best is None or ratio < best_ratio:
                best, best_ratio = i, ratio
        chosen.append(best)
        remaining.remove(best)
        h += present[best]
    return chosen


def test_select_gbl_matches_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    ties = 0
    for _ in range(200):
        n, a = int(rng.integers(2, 70)), int(rng.integers(1, 9))
        present = (rng.random((n, a)) < rng.random(a) * 0.6).astype(np.uint8)
        if rng.random() < 0.5:  # duplicated rows: exact ties the earliest must win
            present = present[rng.integers(0, n, n)]
        candidates = int(present.any(axis=1).sum())
        picks = int(rng.integers(0, candidates + 1))
        expected = reference_gbl(present, picks)
        assert select_gbl(present, picks).tolist() == expected
        ties += len({tuple(r) for r in present}) < n
    assert ties > 20  # the comparison did meet exact ties


def test_select_gbl_breaks_a_tie_across_vector_sizes_by_input_order():
    # After the first pick h = 8 ones (+2 zeros): e8 gives 9/81, e0+e1+e8+e9 gives 16/144: the same ratio 1/9,
    # with different |v|, i.e. different denominators; nothing else is as good.
    first = [1] * 8 + [0, 0]
    small = [0] * 8 + [1, 0]
    big = [1, 1] + [0] * 6 + [1, 1]
    filler = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    h = np.array(first)
    ratio = lambda v: Fraction(int(((h + v) ** 2).sum()), int((h + v).sum()) ** 2)  # noqa: E731
    assert ratio(np.array(small)) == ratio(np.array(big)) < ratio(np.array(filler))
    for rows in ([first, filler, small, big], [first, big, filler, small]):
        present = np.array(rows, dtype=np.uint8)
        got = select_gbl(present, 3).tolist()
        assert got == reference_gbl(present, 3)
        assert got[1] == min(rows.index(small), rows.index(big))


def test_select_gbl_skips_objects_without_attributes():
    present = np.array([[0, 0], [1, 0], [0, 0], [0, 1]], dtype=np.uint8)
    assert sorted(select_gbl(present, 2).tolist()) == [1, 3]
    with pytest.raises(ValueError):
        select_gbl(present, 3)


def test_select_gbl_on_a_long_tailed_class_flattens_the_histogram():
    rng = np.random.default_rng(1)
    p = 0.5 * np.arange(1, 41) ** -1.0
    present = (rng.random((3000, 40)) < p).astype(np.uint8)
    chosen = select_gbl(present, 150)
    random_pick = rng.choice(np.flatnonzero(present.any(axis=1)), 150, replace=False)
    assert histogram_std(present[chosen]) < 0.6 * histogram_std(present[random_pick])


# ---- the split recipe on synthetic labels (no images) -------------------------------------------------------


def synthetic_objects(num_classes=30, num_attributes=30, seed=0):
    rng = np.random.default_rng(seed)
    sizes = np.linspace(420, 60, num_classes).astype(int)
    labels = rng.permutation(np.repeat(np.arange(num_classes), sizes))
    base = 0.6 * np.arange(1, num_attributes + 1) ** -0.9
    probs = np.stack([rng.permutation(base) for _ in range(num_classes)])
    present = (rng.random((len(labels), num_attributes)) < probs[labels]).astype(np.uint8)
    return labels, present


SMALL_SIZES = {"glt": (10, 5), "cbl": (6, 3)}


def test_plan_splits_recipe_invariants():
    labels, present = synthetic_objects()
    names = [f"c{c}" for c in range(30)]
    rows = plan_splits(labels, present, names, SMALL_SIZES, imbalance=0.05, seed=3)
    assert set(rows) == {
        "glt/train", "glt/val", "glt/test_glt", "glt/test_cbl", "glt/test_gbl",
        "cbl/train", "cbl/val", "cbl/test_cbl", "cbl/test_gbl",
    }  # fmt: skip
    C = 30
    for track, (t, v) in SMALL_SIZES.items():
        splits = {k: r for k, r in rows.items() if k.startswith(track + "/")}
        every = np.concatenate(list(splits.values()))
        assert len(every) == len(np.unique(every)), f"{track}: splits overlap"
        for name in ("test_gbl", "test_cbl"):
            assert (np.bincount(labels[splits[f"{track}/{name}"]], minlength=C) == t).all()
        assert len(splits[f"{track}/val"]) == v * C
        # Test-GBL is the greedy selection (reference loop) on each class's objects, in input order
        for c in range(C):
            r = np.flatnonzero(labels == c)
            expected = np.sort(r[reference_gbl(present[r], t)])
            got = splits[f"{track}/test_gbl"][labels[splits[f"{track}/test_gbl"]] == c]
            assert got.tolist() == expected.tolist()
        # every split is sorted by label, then input order
        for idx in splits.values():
            assert (np.lexsort((idx, labels[idx])) == np.arange(len(idx))).all()
        # the attribute histogram of Test-GBL is flatter than the long-tailed ones
        std = {k: histogram_std(present[r]) for k, r in splits.items()}
        assert std[f"{track}/test_gbl"] < min(std[f"{track}/train"], std[f"{track}/test_cbl"])
    assert len(rows["glt/test_glt"]) == 10 * C
    assert "cbl/test_glt" not in rows
    # track glt: the exponential profile over class ranks (max * 0.05^(r/(C-1))) on what tests left
    pool = np.concatenate([rows[f"glt/{s}"] for s in ("train", "val", "test_glt")])
    got = np.bincount(labels[pool], minlength=C)
    left = np.bincount(labels, minlength=C) - 20
    want = np.minimum([int(left.max() * 0.05 ** (r / 29)) for r in range(C)], left)
    assert got.tolist() == want.tolist()
    # track cbl: every class at the smallest size left
    pool = np.concatenate([rows[f"cbl/{s}"] for s in ("train", "val")])
    assert (np.bincount(labels[pool], minlength=C) == left.min() + 20 - 12).all()


def test_plan_splits_is_seeded():
    labels, present = synthetic_objects(num_classes=6, num_attributes=10, seed=2)
    names = [f"c{c}" for c in range(6)]
    a = plan_splits(labels, present, names, SMALL_SIZES, 0.1, seed=5)
    b = plan_splits(labels, present, names, SMALL_SIZES, 0.1, seed=5)
    c = plan_splits(labels, present, names, SMALL_SIZES, 0.1, seed=6)
    assert all((a[k] == b[k]).all() for k in a)
    assert any(len(a[k]) != len(c[k]) or (a[k] != c[k]).any() for k in a if not k.endswith("test_gbl"))
    assert all((a[k] == c[k]).all() for k in a if k.endswith("test_gbl"))  # greedy: no randomness


def test_rank_and_frequency_groups():
    cats = np.array([7, 3, 3, 9, 9, 7, 9, 5, 5])  # counts: 9->3, 3->2, 5->2, 7->2
    order, labels = rank_classes(cats)
    assert order.tolist() == [9, 3, 5, 7]  # ties: smaller category id first
    assert labels.tolist() == [3, 1, 1, 0, 0, 3, 0, 2, 2]
    freq = frequency_of_rank(np.arange(29))
    assert (freq[:11] == 0).all() and (freq[11:23] == 1).all() and (freq[23:] == 2).all()


def test_attribute_groups_match_a_fraction_reference():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 200)
    present = (rng.random((200, 8)) < 0.3).astype(np.uint8)
    train, split = np.arange(0, 120), np.arange(120, 200)
    got = attribute_groups(labels, present, split, class_attribute_counts(labels, present, train, 3))
    hist = {c: present[train][labels[train] == c].sum(axis=0) for c in range(3)}
    score = []
    for i in split:
        hc, v = hist[labels[i]], present[i]
        den = int(hc.sum()) * int(v.sum())
        score.append(Fraction(int(hc @ v), den) if den else Fraction(0))
    ranked = sorted(score, reverse=True)
    hi, lo = ranked[len(score) // 3], ranked[len(score) // 3 * 2]
    want = [0 if s > hi else 1 if s > lo else 2 for s in score]
    assert got.tolist() == want
    assert set(want) == {0, 1, 2}


# ---- a generated COCO 2014 layout ----------------------------------------------------------------------


CLASS_COUNTS = {11: 26, 3: 60, 7: 36, 5: 45, 2: 30}  # COCO category id -> objects with attributes
NUM_ATTR = 12
BUILD_SIZES = {"glt": (6, 3), "cbl": (3, 2)}


def make_coco(root: Path, seed: int = 0) -> dict:
    """COCO 2014 layout with tiny blocky JPEG images, plus the COCO-Attributes dict (as the pickle holds it)."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True)
    objects = [cat for cat, n in CLASS_COUNTS.items() for _ in range(n)]
    objects = [objects[i] for i in rng.permutation(len(objects))]
    data = {s: {"images": [], "annotations": [], "categories": []} for s in ("train2014", "val2014")}
    for s in data:
        data[s]["categories"] = [{"id": c, "name": f"cat{c}", "supercategory": "x"} for c in sorted(CLASS_COUNTS)]
        (root / s).mkdir()
    ann_ids, image_id, ann_id = [], 100, 5000
    for start in range(0, len(objects), 4):
        split = "train2014" if image_id % 3 else "val2014"
        w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        blocks = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((4, 4, 1), dtype=np.uint8))[:h, :w]
        name = f"COCO_{split}_{image_id:012d}.jpg"
        Image.fromarray(pixels).save(root / split / name, quality=90)
        data[split]["images"].append({"id": image_id, "file_name": name, "width": w, "height": h})
        for cat in objects[start : start + 4]:
            x, y = float(rng.uniform(0, w - 6)), float(rng.uniform(0, h - 6))
            bw, bh = float(rng.uniform(3, w - x)), float(rng.uniform(3, h - y))
            data[split]["annotations"].append(
                {"id": ann_id, "image_id": image_id, "category_id": cat, "bbox": [x, y, bw, bh], "iscrowd": 0}
            )
            ann_ids.append((ann_id, cat))
            ann_id += 7
        # an annotation without COCO-Attributes labels: ignored
        data[split]["annotations"].append(
            {"id": ann_id, "image_id": image_id, "category_id": 3, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0}
        )
        ann_id += 7
        image_id += 1
    for s, d in data.items():
        (root / "annotations" / f"instances_{s}.json").write_text(json.dumps(d))
    # COCO-Attributes: attribute ids unsorted, long-tailed presence per class, scores > 0.5 = present
    attr_ids = rng.permutation(np.arange(100, 100 + NUM_ATTR))
    base = 0.7 * np.arange(1, NUM_ATTR + 1) ** -1.0
    probs = {c: rng.permutation(base) for c in CLASS_COUNTS}
    patch = rng.permutation(np.arange(70000, 70000 + len(ann_ids)))
    ann_vecs, to_ann = {}, {}
    for (aid, cat), pid in zip(ann_ids, patch):
        on = rng.random(NUM_ATTR) < probs[cat]
        scores = np.where(on, rng.uniform(0.51, 1.0, NUM_ATTR), rng.uniform(0.0, 0.5, NUM_ATTR))
        scores[~on & (rng.random(NUM_ATTR) < 0.1)] = 0.5  # exactly 0.5 is absent
        ann_vecs[int(pid)] = scores
        to_ann[int(pid)] = aid
    attributes = [{"id": int(i), "name": f"attr{int(i)}"} for i in attr_ids]
    return {"ann_vecs": ann_vecs, "patch_id_to_ann_id": to_ann, "attributes": attributes, "split": {}}


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    raw = make_coco(root / "coco2014")
    joblib.dump(raw, root / "cocottributes.jbl", compress=True)
    convert_attributes(root / "cocottributes.jbl", root / "attrs.npz", trust_pickle=True)
    return {
        "root": root / "coco2014", "pickle": root / "cocottributes.jbl", "npz": root / "attrs.npz", "raw": raw, "tmp": root
    }


def build(coco, out, attributes=None, **kw):
    opts = dict(sizes=BUILD_SIZES, imbalance=0.2, workers=1, original=False, statistics=False, figures=False)
    opts.update(kw)
    return build_coco(coco["root"], attributes or coco["npz"], out, **opts)


FULL = dict(original=True, statistics=True, figures=True)


@pytest.fixture(scope="module")
def built(coco):
    """One build with every output: the benchmark, original/, the statistics and figures/."""
    return build(coco, coco["tmp"] / "built", **FULL)


def test_npz_holds_the_pickle(coco):
    raw, attrs = coco["raw"], load_attributes(coco["npz"])
    names = [a["name"] for a in sorted(raw["attributes"], key=lambda a: a["id"])]
    assert attrs.attribute_names == names
    assert attrs.patch_ids.tolist() == [str(k) for k in raw["ann_vecs"]]
    assert attrs.ann_ids.tolist() == [raw["patch_id_to_ann_id"][k] for k in raw["ann_vecs"]]
    assert (attrs.present == np.array([v > 0.5 for v in raw["ann_vecs"].values()])).all()
    with np.load(coco["npz"], allow_pickle=False) as z:  # readable without unpickling
        assert z["present"].shape == (len(raw["ann_vecs"]), NUM_ATTR)


def test_build_writes_the_benchmark(coco, built):
    bench = Benchmark(built)
    m = bench.manifest
    raw = coco["raw"]
    ranked = sorted(CLASS_COUNTS, key=lambda c: (-CLASS_COUNTS[c], c))
    assert m.classes == [f"cat{c}" for c in ranked]
    assert m.attribute_kind == "multilabel" and m.num_attributes == 3
    assert json.loads((Path(built) / "manifest.json").read_text())["kind"] == "mscoco_glt"
    assert m.attribute_vector_length == NUM_ATTR
    assert m.attribute_names == [a["name"] for a in sorted(raw["attributes"], key=lambda a: a["id"])]
    assert set(m.split_names) == {
        "glt/train", "glt/val", "glt/test_glt", "glt/test_cbl", "glt/test_gbl",
        "cbl/train", "cbl/val", "cbl/test_cbl", "cbl/test_gbl",
    }  # fmt: skip
    anns = {}
    for s in ("train2014", "val2014"):
        for a in json.loads((coco["root"] / "annotations" / f"instances_{s}.json").read_text())["annotations"]:
            anns[a["id"]] = a
    vec = {str(k): (v > 0.5).astype(np.uint8) for k, v in raw["ann_vecs"].items()}
    for name in m.split_names:
        t = bench.split(name)
        track, split = name.split("/")
        for pid, label, path, attrs, freq in zip(t.id, t.label, t.path, t.attributes, t.frequency):
            cat = anns[raw["patch_id_to_ann_id"][int(pid)]]["category_id"]
            assert label == ranked.index(cat)
            assert freq == 0  # 5 classes: all ranks <= 10
            assert (attrs == vec[pid]).all()
            assert path == f"crops/{pid}.jpg" and (built / path).is_file()
        n_test = BUILD_SIZES[track][0]
        if split in ("test_gbl", "test_cbl"):
            assert (t.class_counts(5) == n_test).all()
        assert set(t.attribute.tolist()) <= {0, 1, 2}
    # the benchmark's point: Test-GBL's attribute histogram is flatter than the long-tailed splits'
    std = {n: histogram_std(bench.split(n).attributes) for n in m.split_names}
    assert std["glt/test_gbl"] < min(std["glt/train"], std["glt/test_cbl"])
    assert std["cbl/test_gbl"] < min(std["cbl/train"], std["cbl/test_cbl"])
    assert not Path(f"{built}.crops-cache").exists()  # the default crop cache goes once the build succeeded


def _expected_region(src: np.ndarray, bbox, style: str) -> np.ndarray:
    """The crop recomputed here from the box: rounded outwards, clipped; 'context' widened, then centred on
    a black square."""
    h_img, w_img = src.shape[:2]
    x, y, w, h = bbox
    x0, y0, x1, y1 = x, y, x + w, y + h
    if style == "context":
        mx, my = (50 if w < 100 else 0.2 * w), (50 if h < 100 else 0.2 * h)
        x0, y0, x1, y1 = x - mx, y - my, x + w + mx, y + h + my
    rows = slice(max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), h_img))
    region = src[rows, max(int(np.floor(x0)), 0) : min(int(np.ceil(x1)), w_img)]
    if style == "context":
        side = max(region.shape[:2])
        out = np.zeros((side, side, 3), dtype=np.uint8)
        oy, ox = (side - region.shape[0]) // 2, (side - region.shape[1]) // 2
        out[oy : oy + region.shape[0], ox : ox + region.shape[1]] = region
        region = out
    return region


@pytest.mark.parametrize("style", ["box", "context"])
def test_crops_match_the_box_region(coco, tmp_path, style):
    out = build(coco, tmp_path / "b", crop=style, crop_format="png")
    bench = Benchmark(out)
    t = bench.split("glt/test_gbl")
    raw = coco["raw"]
    anns, files = {}, {}
    for s in ("train2014", "val2014"):
        d = json.loads((coco["root"] / "annotations" / f"instances_{s}.json").read_text())
        anns.update({a["id"]: a for a in d["annotations"]})
        files.update({i["id"]: coco["root"] / s / i["file_name"] for i in d["images"]})
    differs = 0
    for pid, path in zip(t.id, t.path):
        ann = anns[raw["patch_id_to_ann_id"][int(pid)]]
        src = np.asarray(Image.open(files[ann["image_id"]]).convert("RGB"))
        crop = np.asarray(Image.open(out / path))
        assert crop.shape[2] == 3 and (crop == _expected_region(src, ann["bbox"], style)).all()
        # the comparison is sharp: the box moved by two pixels gives other pixels
        x, y, w, h = ann["bbox"]
        shifted = _expected_region(src, [x + 2, y, w, h], style)
        differs += shifted.shape != crop.shape or (shifted != crop).any()
    assert len(t) == 30
    if style == "box":
        assert differs >= 25


def test_crop_box_stays_inside_and_nonempty():
    for bbox in ([0, 0, 0.2, 0.3], [99.6, 49.9, 0.1, 0.05], [-3, -2, 500, 400], [10, 10, 150, 20]):
        for style in ("box", "context"):
            left, top, right, bottom = crop_box(bbox, 100, 50, style)
            assert 0 <= left < right <= 100 and 0 <= top < bottom <= 50
            crop = coco_builder.crop_object(Image.new("RGB", (100, 50), (9, 9, 9)), bbox, style)
            assert crop.width > 0 and (style == "box" or crop.width == crop.height)


def _digest(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_same_inputs_and_seed_give_the_same_bytes(coco, built, tmp_path):
    # the pickle (trusted) and the .npz are the same input; parallel cropping gives the same crops
    again = build(coco, tmp_path / "again", attributes=coco["pickle"], trust_pickle=True, workers=2, **FULL)
    da, db = _digest(again), _digest(built)
    assert da.pop("manifest.json") != db.pop("manifest.json")  # it records which attribute file was read
    assert da == db
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (again, built))
    assert ma["info"].pop("attributes_file") != mb["info"].pop("attributes_file")
    assert ma == mb
    other = build(coco, tmp_path / "other", seed=1)
    a, b = Benchmark(built), Benchmark(other)
    assert (a.split("glt/test_gbl").id == b.split("glt/test_gbl").id).all()  # the greedy split has no randomness
    assert any(
        len(a.split(n)) != len(b.split(n)) or (a.split(n).id != b.split(n).id).any()
        for n in ("glt/train", "glt/test_cbl", "cbl/test_cbl", "glt/val")
    )


def test_crops_are_resumed_not_redone(coco, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = build(coco, tmp_path / "first", cache_dir=cache)
    cached = sorted((cache / "context-jpg").iterdir())
    assert len(cached) == len(list((first / "crops").iterdir()))
    # a crop already in the cache is used as it is; a missing one is cropped again
    marker = cached[0]
    Image.new("RGB", (3, 3), (1, 2, 3)).save(marker, format="JPEG")
    cached[1].unlink()
    calls = []
    original = coco_builder._crop_one_image
    monkeypatch.setattr(coco_builder, "_crop_one_image", lambda task: calls.append(len(task[1])) or original(task))
    second = build(coco, tmp_path / "second", cache_dir=cache)
    assert calls == [1]
    assert (second / "crops" / marker.name).read_bytes() == marker.read_bytes()
    assert (second / "crops" / cached[1].name).read_bytes() == (first / "crops" / cached[1].name).read_bytes()
    assert cache.is_dir()  # an explicit cache is kept


# ---- bad inputs: one clear error, nothing written -----------------------------------------------------------


def _write_npz_variant(coco, path, **changes):
    with np.load(coco["npz"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def test_bad_inputs_raise_one_line_errors(coco, tmp_path):
    cases = {}
    with np.load(coco["npz"], allow_pickle=False) as z:
        ann_ids = z["ann_ids"].copy()
    ann_ids[[3, 8]] = 999_999_999
    cases["match no annotation"] = dict(attributes=_write_npz_variant(coco, tmp_path / "x.npz", ann_ids=ann_ids))
    cases["Test-GBL needs"] = dict(sizes={"glt": (27, 3), "cbl": (3, 2)})
    cases["fewer than the"] = dict(sizes={"glt": (14, 3), "cbl": (3, 2)})  # 26 objects < 2 x 14
    cases["only read with --trust-pickle"] = dict(attributes=coco["pickle"])
    cases["malformed COCO-Attributes"] = dict(attributes=_write_npz_variant(coco, tmp_path / "y.npz", present=np.zeros(3)))
    for expect, kw in cases.items():
        out = tmp_path / "out"
        with pytest.raises(GLTError, match=expect) as e:
            build(coco, out, **kw)
        assert "\n" not in str(e.value)
        assert not out.exists()


def test_missing_image_is_named(coco, tmp_path):
    import shutil

    root = tmp_path / "coco2014"
    shutil.copytree(coco["root"], root)
    victim = sorted((root / "train2014").iterdir())[0]
    victim.unlink()
    with pytest.raises(GLTError, match="missing, first: .*" + victim.name):
        build({**coco, "root": root}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _cli(argv, capsys):
    from glt.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr()


def test_cli_convert_and_build(coco, tmp_path, capsys):
    convert = ["convert-attributes", str(coco["pickle"]), "--out", str(tmp_path / "a.npz")]
    code, io = _cli(convert, capsys)
    assert code == 2 and io.err.count("\n") == 1 and "--trust-pickle" in io.err
    assert not (tmp_path / "a.npz").exists()
    code, io = _cli(convert + ["--trust-pickle"], capsys)
    assert code == 0
    assert (np.load(tmp_path / "a.npz")["present"] == np.load(coco["npz"])["present"]).all()
    base = ["build", "coco", "--coco-root", str(coco["root"]), "--glt-test", "6", "--glt-val", "3", "--cbl-test", "3",
            "--cbl-val", "2", "--imbalance", "0.2", "--workers", "1", "--no-original", "--no-stats", "--no-figures"]  # fmt: skip
    code, io = _cli(base + ["--attributes", str(coco["pickle"]), "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and io.err.count("\n") == 1 and io.err.startswith("glt: error:")
    code, io = _cli(base + ["--attributes", str(tmp_path / "a.npz"), "--out", str(tmp_path / "b")], capsys)
    assert code == 0 and len(Benchmark(tmp_path / "b").split("glt/test_gbl")) == 30


def test_original_export_and_statistics(built, tmp_path):
    from glt.benchmark.original import import_original

    bench = Benchmark(built)
    stats = json.loads((built / "stats.json").read_text())
    std = {n: s["attribute_histogram_std"] for n, s in stats["splits"].items()}
    for track in ("glt", "cbl"):
        assert std[f"{track}/test_gbl"] < min(std[f"{track}/train"], std[f"{track}/test_cbl"])
    for fig in ("attribute_distribution.png", "class_distribution.png", "rare_attribute_examples.png"):
        assert (built / "figures" / fig).is_file()
    # the authors' layout (docs/import.md): keyed by patch id, test_bbl = Test-GBL, test_bl = Test-CBL
    files = [built / "original" / f"mscoco-glt_{s}.json" for s in ("inter_lt", "inter_bl")]
    lt = json.loads(files[0].read_text())
    assert sorted(lt["test_bbl"]["label"]) == sorted(bench.split("glt/test_gbl").id)
    assert sorted(lt["test_bl"]["label"]) == sorted(bench.split("glt/test_cbl").id)
    # ... which `glt import` reads back, attribute vectors included
    back = Benchmark(import_original(*files, tmp_path / "imported")[0])
    assert back.manifest.attribute_names == bench.manifest.attribute_names
    for name in bench.manifest.split_names:
        a, b = bench.split(name), back.split(name)
        a, b = a.take(np.argsort(a.id)), b.take(np.argsort(b.id))
        assert (a.id == b.id).all() and (a.label == b.label).all() and (a.frequency == b.frequency).all()
        assert (a.attribute == b.attribute).all() and (a.attributes == b.attributes).all()
