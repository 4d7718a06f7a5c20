"""`glt import` / `glt export`: the annotation files of the original release (docs/import.md).

The input files are generated here in the layouts the original code writes (ImageNet-GLT: keyed by
image path, labels as strings; MSCOCO-GLT: keyed by patch id, integer labels, a `path` map), and every
check walks those JSON dicts directly rather than reusing the code under test.
"""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glt.benchmark import Benchmark, Manifest, SplitTable, write_benchmark
from glt.benchmark.original import export_original, import_original, run_import
from glt.cli import main as cli_main
from glt.errors import GLTError

# written out again here (not imported) so the test checks the mapping itself
KEY_TO_SPLIT = {"train": "train", "val": "val", "test_lt": "test_glt", "test_bl": "test_cbl", "test_bbl": "test_gbl"}
IMAGENET_ROOT = "/data4/imagenet/ILSVRC/Data/CLS-LOC/train"
WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475"]
COCO_CLASSES = ["person", "car", "chair", "dog"]


# ---- original-layout files ------------------------------------------------------------------------
def _imagenet_split(items):
    """items: (path, label, attribute); as the original generator writes them (labels are strings)."""
    return {
        "label": {p: str(c) for p, c, _ in items},
        "frequency": {p: [0, 0, 1, 1, 2][c] for p, c, _ in items},
        "attribute": {p: a for p, _, a in items},
    }


def imagenet_docs(seed: int = 0) -> tuple[dict, dict]:
    rnd = random.Random(seed)
    pool = {
        c: [(f"{IMAGENET_ROOT}/{w}/{w}_{i}.JPEG", c, rnd.randrange(3)) for i in rnd.sample(range(10**5), 40 - 6 * c)]
        for c, w in enumerate(WNIDS)
    }
    take = lambda c, n: [pool[c].pop() for _ in range(n)]  # noqa: E731
    test_bbl = [x for c in pool for x in take(c, 3)]
    test_bl = [x for c in pool for x in take(c, 4)]
    rest = [x for c in pool for x in pool[c]]
    rnd.shuffle(rest)
    lt = {"test_lt": rest[:8], "val": rest[8:14], "train": rest[14:]}
    bl = {"val": [x for x in rest if x[1] < 3][:5], "train": [x for x in rest if x[1] < 3][5:]}
    head = {"cat2id": {w: str(i) for i, w in enumerate(WNIDS)}, "id2cat": {str(i): w for i, w in enumerate(WNIDS)}}
    glt = {**head, **{k: _imagenet_split(v) for k, v in (("train", lt["train"]), ("val", lt["val"]),
                                                          ("test_lt", lt["test_lt"]), ("test_bl", test_bl),
                                                          ("test_bbl", test_bbl))}}
    cbl = {**head, **{k: _imagenet_split(v) for k, v in (("train", bl["train"]), ("val", bl["val"]), ("test_lt", []),
                                                          ("test_bl", test_bl), ("test_bbl", test_bbl))}}
    return copy.deepcopy(glt), copy.deepcopy(cbl)  # two independent files, as on disk


def _coco_split(items, folder, rnd):
    """items: (patch id, label, group); the shape of the released MSCOCO-GLT annotation.json."""
    if not items:
        return {"label": {}, "frequency": {}, "attribute": {}, "path": {}, "attribute_score": {}}
    s = {
        "label": {str(k): c for k, c, _ in items},
        "frequency": {str(k): [0, 1, 1, 2][c] for k, c, _ in items},
        "attribute": {str(k): g for k, _, g in items},
        "path": {str(k): f"/data4/{folder}/images/{k}.jpg" for k, _, _ in items},
        "attribute_score": {str(k): rnd.random() / 50 for k, _, _ in items},
    }
    s["attribute_dist"] = {str(c): [float(rnd.randrange(5)) for _ in range(204)] for c in range(len(COCO_CLASSES))}
    return s


def coco_docs(seed: int = 0) -> tuple[dict, dict]:
    rnd = random.Random(seed)
    ids = rnd.sample(range(10**6), 160)
    items = [(k, min(i % 7, 3), rnd.randrange(3)) for i, k in enumerate(ids)]
    head = {"cat2id": {c: i for i, c in enumerate(COCO_CLASSES)},
            "id2cat": {str(i): c for i, c in enumerate(COCO_CLASSES)}, "key2path": {}}
    glt = {**head, "train": _coco_split(items[:60], "coco_lt", rnd), "val": _coco_split(items[60:70], "coco_lt", rnd),
           "test_lt": _coco_split(items[70:80], "coco_lt", rnd), "test_bl": _coco_split(items[80:90], "coco_lt", rnd),
           "test_bbl": _coco_split(items[90:100], "coco_lt", rnd)}
    cbl = {**head, "train": _coco_split(items[100:130], "coco_bl", rnd),
           "val": _coco_split(items[130:136], "coco_bl", rnd), "test_lt": _coco_split([], "coco_bl", rnd),
           "test_bl": _coco_split(items[136:148], "coco_bl", rnd),
           "test_bbl": _coco_split(items[148:160], "coco_bl", rnd)}
    return copy.deepcopy(glt), copy.deepcopy(cbl)


def write_docs(tmp_path: Path, glt: dict, cbl: dict, stem: str = "imagenet_sup_intra_lt") -> tuple[Path, Path]:
    lt, bl = tmp_path / f"{stem}_inter_lt.json", tmp_path / f"{stem}_inter_bl.json"
    lt.write_text(json.dumps(glt))
    bl.write_text(json.dumps(cbl))
    return lt, bl


def paths_in(doc: dict) -> list[str]:
    out = []
    for key in KEY_TO_SPLIT:
        s = doc[key]
        out += list(s["path"].values()) if "path" in s else list(s["label"])
    return out


def make_some_images(paths: list[str], old: str, new: Path, every: int = 3) -> set[str]:
    """Create a tiny real image for every `every`-th distinct path (after rewriting old -> new)."""
    made = set()
    for i, p in enumerate(sorted(set(paths))):
        if i % every == 0:
            target = Path(str(new) + p[len(old) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (4, 4), (i % 255, 0, 0)).save(target, format="JPEG")
            made.add(str(target))
    return made


def expected_rows(doc: dict, rewrite) -> dict[str, dict[str, tuple]]:
    """Per our split name: sample key -> (path, label, frequency, attribute), read straight off the JSON."""
    out = {}
    for key, ours in KEY_TO_SPLIT.items():
        s = doc[key]
        if not s["label"]:
            continue
        out[ours] = {
            k: (rewrite(s["path"][k] if "path" in s else k), int(v), int(s["frequency"][k]), int(s["attribute"][k]))
            for k, v in s["label"].items()
        }
    return out


def table_rows(t: SplitTable) -> dict[str, tuple]:
    return {
        i: (p, int(c), int(f), int(a))
        for i, p, c, f, a in zip(t.id.tolist(), t.path.tolist(), t.label, t.frequency, t.attribute)
    }


def check_benchmark(out: Path, docs: dict[str, dict], rewrite) -> Benchmark:
    b = Benchmark(out)
    for track, doc in docs.items():
        expected = expected_rows(doc, rewrite)
        assert sorted(b.manifest.tracks[track]) == sorted(expected)
        for ours, rows in expected.items():
            t = b.split(f"{track}/{ours}")
            assert table_rows(t) == rows
            # row order = the order of the original label map (the original loaders iterate it)
            key = next(k for k, v in KEY_TO_SPLIT.items() if v == ours)
            assert t.id.tolist() == list(doc[key]["label"])
    return b


# ---- import ----------------------------------------------------------------------------------------
def test_import_imagenet_rows_path_map_and_missing(tmp_path):
    glt, cbl = imagenet_docs()
    lt, bl = write_docs(tmp_path, glt, cbl)
    images = tmp_path / "images"
    made = make_some_images(paths_in(glt) + paths_in(cbl), "/data4/imagenet", images)

    out, missing = import_original(lt, bl, tmp_path / "bench", path_map=[f"/data4/imagenet={images}"])

    def rewrite(p):
        return str(images) + p[len("/data4/imagenet") :]

    b = check_benchmark(out, {"glt": glt, "cbl": cbl}, rewrite)
    m = b.manifest
    assert m.classes == WNIDS and m.attribute_kind == "index" and m.num_attributes == 3
    assert m.image_style == "imagenet" and m.image_size == 112 and m.name == "imagenet_sup_intra_lt"
    assert json.loads((out / "manifest.json").read_text())["kind"] == "imagenet_glt"
    assert m.info["source"]["glt"]["file"] == str(lt.resolve())
    assert m.info["source"]["cbl"]["file"] == str(bl.resolve())
    assert "test_glt" not in m.tracks["cbl"]  # cbl's empty test_lt is not written
    # missing counts per split, counted independently over the JSON maps
    for track, doc in (("glt", glt), ("cbl", cbl)):
        for key, ours in KEY_TO_SPLIT.items():
            if doc[key]["label"]:
                want = sum(rewrite(p) not in made for p in doc[key]["label"])
                assert missing[f"{track}/{ours}"] == want
    assert sum(missing.values()) > 0 and len(made) > 0


def test_import_coco_rows_ids_and_kind(tmp_path):
    glt, cbl = coco_docs()
    lt, bl = write_docs(tmp_path, glt, cbl, stem="coco")
    out, missing = import_original(lt, bl, tmp_path / "bench")
    b = check_benchmark(out, {"glt": glt, "cbl": cbl}, lambda p: p)
    m = b.manifest
    assert m.attribute_kind == "multilabel" and m.classes == COCO_CLASSES and m.num_attributes == 3
    assert m.info["layout"] == "mscoco-glt"
    assert json.loads((out / "manifest.json").read_text())["kind"] == "mscoco_glt"
    # the ids are the patch ids as strings, exactly the JSON keys
    assert set(b.split("glt/train").id.tolist()) == set(glt["train"]["label"])
    # no image exists anywhere: everything is missing
    for track, doc in (("glt", glt), ("cbl", cbl)):
        for key, ours in KEY_TO_SPLIT.items():
            if doc[key]["label"]:
                assert missing[f"{track}/{ours}"] == len(doc[key]["label"])


def test_path_map_first_matching_prefix_wins_and_unused_reported(tmp_path):
    glt, cbl = imagenet_docs()
    lt, bl = write_docs(tmp_path, glt, cbl)
    # the first rewrite yields paths that a later prefix would match again: it must not apply twice
    maps = [f"{IMAGENET_ROOT}/{WNIDS[0]}=/data4/first", "/data4=/second", "/data4/imagenet=/never", "/nowhere=/x"]
    r = run_import(lt, bl, tmp_path / "bench", path_map=maps)

    def rewrite(p):  # the same rule, written independently: the first prefix that matches
        for m in maps:
            old, new = m.split("=", 1)
            if p.startswith(old):
                return new + p[len(old) :]
        return p

    check_benchmark(r.out, {"glt": glt, "cbl": cbl}, rewrite)
    t = Benchmark(r.out).split("glt/train")
    assert any(p.startswith("/data4/first/") for p in t.path) and any(p.startswith("/second/") for p in t.path)
    assert r.unused_path_maps == ["/data4/imagenet=/never", "/nowhere=/x"]
    assert r.images == len(set(paths_in(glt) + paths_in(cbl))) == r.images_missing
    assert r.missing_summary().startswith(f"{r.images} of {r.images} images not found, e.g. /")


def test_default_names(tmp_path):
    glt, cbl = coco_docs()
    for track, doc in (("coco_lt", glt), ("coco_bl", cbl)):  # the MSCOCO-GLT release layout
        (tmp_path / track / "annotations").mkdir(parents=True)
        (tmp_path / track / "annotations" / "annotation.json").write_text(json.dumps(doc))
    out, _ = import_original(tmp_path / "coco_lt/annotations/annotation.json",
                             tmp_path / "coco_bl/annotations/annotation.json", tmp_path / "b")
    assert Benchmark(out).name == "mscoco_glt"
    lt, bl = export_original(out, tmp_path / "e")
    assert (lt.name, bl.name) == ("mscoco_glt_inter_lt.json", "mscoco_glt_inter_bl.json")
    out, _ = import_original(lt, bl, tmp_path / "b2", name="renamed")
    assert Benchmark(out).name == "renamed"


def test_import_is_deterministic(tmp_path):
    glt, cbl = coco_docs()
    lt, bl = write_docs(tmp_path, glt, cbl, stem="coco")
    a, _ = import_original(lt, bl, tmp_path / "a")
    b, _ = import_original(lt, bl, tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


# ---- export and round trips ------------------------------------------------------------------------
def test_round_trip_imagenet_is_identical(tmp_path):
    glt, cbl = imagenet_docs(seed=3)
    lt, bl = write_docs(tmp_path, glt, cbl)
    out, _ = import_original(lt, bl, tmp_path / "bench")
    lt2, bl2 = export_original(out, tmp_path / "export")
    assert lt2.name == "imagenet_sup_intra_lt_inter_lt.json" and bl2.name == "imagenet_sup_intra_lt_inter_bl.json"
    assert json.loads(lt2.read_text()) == glt  # same maps, same value types (labels as strings)
    assert json.loads(bl2.read_text()) == cbl
    # and importing the export again gives the same tables
    again, _ = import_original(lt2, bl2, tmp_path / "bench2")
    for name in Benchmark(out).manifest.split_names:
        assert table_rows(Benchmark(again).split(name)) == table_rows(Benchmark(out).split(name))


def test_round_trip_coco_keeps_the_maps(tmp_path):
    glt, cbl = coco_docs(seed=5)
    lt, bl = write_docs(tmp_path, glt, cbl, stem="coco")
    out, _ = import_original(lt, bl, tmp_path / "bench")
    lt2, bl2 = export_original(out, tmp_path / "export", name="coco")
    for src, dst in ((glt, lt2), (cbl, bl2)):
        got = json.loads(dst.read_text())
        assert got["cat2id"] == src["cat2id"] and got["id2cat"] == src["id2cat"]
        for key in KEY_TO_SPLIT:
            for m in ("label", "frequency", "attribute", "path"):
                assert got[key][m] == src[key][m], (key, m)
                assert list(got[key][m]) == list(src[key][m])  # same order


def _multilabel_benchmark(root: Path, seed: int = 0) -> dict[str, SplitTable]:
    rng = np.random.default_rng(seed)
    width, classes = 12, ["a", "b", "c"]
    tables = {}
    for name, n in (("glt/train", 40), ("glt/val", 9), ("glt/test_glt", 9), ("glt/test_cbl", 9),
                    ("glt/test_gbl", 9), ("cbl/train", 21), ("cbl/val", 6), ("cbl/test_cbl", 6), ("cbl/test_gbl", 6)):
        ids = [f"{name.replace('/', '-')}-{i}" for i in range(n)]
        vec = (rng.random((n, width)) < 0.3).astype(np.uint8)
        tables[name] = SplitTable(ids, [f"images/{i}.jpg" for i in ids], rng.integers(0, 3, n),
                                  rng.integers(0, 3, n), rng.integers(0, 3, n), vec)
    m = Manifest(name="ml", classes=classes, attribute_kind="multilabel", num_attributes=3,
                 attribute_names=[f"attr{i}" for i in range(width)], attribute_vector_length=width)
    write_benchmark(root, m, tables)
    return tables


def test_export_multilabel_vectors_dist_scores_and_back(tmp_path):
    tables = _multilabel_benchmark(tmp_path / "ml")
    lt, bl = export_original(tmp_path / "ml", tmp_path / "export", absolute_paths=True)
    for track, f in (("glt", lt), ("cbl", bl)):
        doc = json.loads(f.read_text())
        train = tables[f"{track}/train"]
        # reference: the original get_att_count / attribute_score written as plain loops
        hist = [[0.0] * 12 for _ in range(3)]
        for c, v in zip(train.label, train.attributes):
            for j in range(12):
                hist[c][j] += float(v[j])
        for key, ours in KEY_TO_SPLIT.items():
            t = tables.get(f"{track}/{ours}")
            if t is None:
                assert doc[key]["label"] == {}
                continue
            s = doc[key]
            assert s["path"] == {i: str((tmp_path / "ml" / p).resolve()) for i, p in zip(t.id, t.path)}
            for i, c, v in zip(t.id, t.label, t.attributes):
                assert s["attribute_present"][i] == [j for j in range(12) if v[j]]
                base = [h / (sum(hist[c]) + 1e-9) for h in hist[c]]
                vv = [x / (sum(v) + 1e-9) for x in v.tolist()]
                assert s["attribute_score"][i] == pytest.approx(sum(a * b for a, b in zip(base, vv)))
            dist = {str(c): [float(sum(v[j] for cc, v in zip(t.label, t.attributes) if cc == c)) for j in range(12)]
                    for c in range(3)}
            assert s["attribute_dist"] == dist
    out, _ = import_original(lt, bl, tmp_path / "back")
    b = Benchmark(out)
    assert b.manifest.attribute_names == [f"attr{i}" for i in range(12)]
    for name, t in tables.items():
        got = b.split(name)
        assert got.id.tolist() == t.id.tolist()
        assert np.array_equal(got.attributes, t.attributes)
        assert np.array_equal(got.label, t.label) and np.array_equal(got.attribute, t.attribute)


def test_export_refuses_duplicate_paths_and_existing_files(tmp_path):
    t = SplitTable(["a", "b"], ["x.jpg", "x.jpg"], [0, 1], [0, 0], [0, 1])
    write_benchmark(tmp_path / "dup", Manifest(name="dup", classes=["p", "q"]), {"glt/train": t, "cbl/train": t})
    with pytest.raises(GLTError, match="path 'x.jpg' appears twice"):
        export_original(tmp_path / "dup", tmp_path / "e")
    write_benchmark(tmp_path / "one", Manifest(name="one", classes=["p", "q"]), {"glt/train": t.take([0])})
    with pytest.raises(GLTError, match="no track 'cbl'"):
        export_original(tmp_path / "one", tmp_path / "e")
    glt, cbl = imagenet_docs()
    out, _ = import_original(*write_docs(tmp_path, glt, cbl), tmp_path / "bench")
    export_original(out, tmp_path / "e")
    with pytest.raises(GLTError, match="already exists"):
        export_original(out, tmp_path / "e")
    export_original(out, tmp_path / "e", overwrite=True)


# ---- the command line ------------------------------------------------------------------------------
@pytest.fixture
def glt_cli(monkeypatch, capsys):
    """The real `glt` entry point, with only the subcommands this file tests registered."""
    monkeypatch.setattr(cli_main, "COMMANDS", ["import_cmd", "export"])

    def run(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as e:
            cli_main.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return e.value.code, out, err

    return run


def test_cli_import_and_export(tmp_path, glt_cli):
    glt, cbl = imagenet_docs()
    lt, bl = write_docs(tmp_path, glt, cbl)
    images = tmp_path / "img"
    made = make_some_images(paths_in(glt) + paths_in(cbl), "/data4/imagenet", images, every=2)
    code, out, err = glt_cli("import", "--glt-file", lt, "--cbl-file", bl, "--out", tmp_path / "b",
                             "--path-map", f"/data4/imagenet={images}", "--path-map", "/elsewhere=/x")
    assert code == 0
    assert re.search(rf"glt/train +{len(glt['train']['label'])} rows", out)
    lines = err.strip().splitlines()
    assert lines[0] == "glt: warning: --path-map /elsewhere=/x matched no image path"
    total = len(set(paths_in(glt) + paths_in(cbl)))
    assert lines[1].startswith(f"glt: warning: {total - len(made)} of {total} images not found, e.g. {images}/")
    assert lines[1].endswith("use --path-map OLD=NEW")
    code, out, err = glt_cli("export", "--benchmark", tmp_path / "b", "--out", tmp_path / "e", "--name", "x")
    assert code == 0
    assert (tmp_path / "e" / "x_inter_lt.json").is_file() and (tmp_path / "e" / "x_inter_bl.json").is_file()


def _drop(d, *keys):
    for k in keys[:-1]:
        d = d[k]
    del d[keys[-1]]


def _first(m: dict) -> str:
    return next(iter(m))


# (what to break, text the one-line error must contain); each gets the two ImageNet-GLT docs
BAD_INPUTS = {
    "missing top key": (lambda g, c: _drop(g, "test_bbl"), "missing key 'test_bbl'"),
    "missing class names": (lambda g, c: (_drop(g, "id2cat"), _drop(g, "cat2id")), "missing key 'id2cat'"),
    "missing map": (lambda g, c: _drop(g, "val", "frequency"), "split 'val' has no 'frequency' map"),
    "label without frequency": (
        lambda g, c: _drop(g, "train", "frequency", _first(g["train"]["label"])),
        "has a label but no entry in 'frequency'",
    ),
    "attribute without label": (
        lambda g, c: g["test_bl"]["attribute"].update({"/extra.JPEG": 1}),
        "'/extra.JPEG' is in 'attribute' but has no label",
    ),
    "label beyond classes": (
        lambda g, c: g["train"]["label"].update({_first(g["train"]["label"]): "5"}), "outside the class range 0..4"
    ),
    "negative label": (
        lambda g, c: c["val"]["label"].update({_first(c["val"]["label"]): -1}), "is -1, outside the class"
    ),
    "boolean label": (
        lambda g, c: c["val"]["label"].update({_first(c["val"]["label"]): True}), "must be an integer, got True"
    ),
    "non-integer label": (
        lambda g, c: g["train"]["label"].update({_first(g["train"]["label"]): "dog"}), "must be an integer, got 'dog'"
    ),
    "bad frequency": (
        lambda g, c: g["val"]["frequency"].update({_first(g["val"]["frequency"]): 3}),
        "outside the frequency groups 0..2",
    ),
    "float attribute": (
        lambda g, c: g["val"]["attribute"].update({_first(g["val"]["attribute"]): 1.5}), "must be an integer, got 1.5"
    ),
    "split not an object": (lambda g, c: g.update({"val": []}), "split 'val' must be an object"),
    "classes disagree": (
        lambda g, c: (c["id2cat"].update({"2": "n99999999"}), c["cat2id"].update({"n99999999": "2"}),
                      _drop(c, "cat2id", WNIDS[2])),
        "disagree on the classes (key 'id2cat'): class 2 is 'n01484850' vs 'n99999999'",
    ),
    "cat2id vs id2cat": (
        lambda g, c: g["cat2id"].update({WNIDS[1]: "3"}), "'cat2id' and 'id2cat' disagree on class 1"
    ),
    "id2cat gap": (
        lambda g, c: (_drop(g, "id2cat", "3"), _drop(g, "cat2id", WNIDS[3])), "'id2cat' has no class 3"
    ),
    "cbl test_lt not empty": (
        lambda g, c: c.update({"test_lt": g["test_lt"]}), "are --glt-file and --cbl-file swapped"
    ),
    "layouts differ": (
        lambda g, c: [c[k].update({"path": {p: p for p in c[k]["label"]}}) for k in KEY_TO_SPLIT],
        "is in the imagenet-glt layout but",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_fail_with_one_line(tmp_path, glt_cli, case):
    glt, cbl = imagenet_docs()
    breaker, text = BAD_INPUTS[case]
    breaker(glt, cbl)
    lt, bl = write_docs(tmp_path, glt, cbl)
    with pytest.raises(GLTError, match=None) as e:
        import_original(lt, bl, tmp_path / "py")
    assert text in str(e.value)
    assert str(lt) in str(e.value) or str(bl) in str(e.value)  # names the file
    code, out, err = glt_cli("import", "--glt-file", lt, "--cbl-file", bl, "--out", tmp_path / "cli")
    assert code == 2 and err.count("\n") == 1 and err.startswith("glt: error: ") and text in err
    assert not (tmp_path / "py").exists() and not (tmp_path / "cli").exists()  # nothing half-written


def test_bad_coco_inputs(tmp_path):
    glt, cbl = coco_docs()
    key = _first(glt["val"]["label"])
    del glt["val"]["path"][key]
    lt, bl = write_docs(tmp_path, glt, cbl, stem="coco")
    with pytest.raises(GLTError, match=f"split 'val': '{key}' has a label but no entry in 'path'"):
        import_original(lt, bl, tmp_path / "b")
    glt, cbl = coco_docs()
    glt["train"]["attribute"][key := _first(glt["train"]["label"])] = [0.1] * 204  # a raw .jbl-style vector
    lt, bl = write_docs(tmp_path, glt, cbl, stem="coco")
    with pytest.raises(GLTError, match=f"attribute of '{key}' must be an integer"):
        import_original(lt, bl, tmp_path / "b")


@pytest.mark.parametrize(
    "argv_tail, text",
    [
        (["--path-map", "no-equals-sign"], "--path-map expects OLD=NEW"),
        (["--glt-file-is-missing"], "annotation file not found"),
        (["--malformed"], "malformed annotation file"),
        (["--out-exists"], "already exists and is not empty"),
    ],
)
def test_cli_argument_and_file_errors(tmp_path, glt_cli, argv_tail, text):
    glt, cbl = imagenet_docs()
    lt, bl = write_docs(tmp_path, glt, cbl)
    out = tmp_path / "bench"
    if argv_tail == ["--glt-file-is-missing"]:
        lt, argv_tail = tmp_path / "nope_inter_lt.json", []
    elif argv_tail == ["--malformed"]:
        bl.write_text(bl.read_text()[:-20])
        argv_tail = []
    elif argv_tail == ["--out-exists"]:
        out.mkdir()
        (out / "keep.txt").write_text("x")
        argv_tail = []
    code, _, err = glt_cli("import", "--glt-file", lt, "--cbl-file", bl, "--out", out, *argv_tail)
    assert code == 2 and err.count("\n") == 1 and err.startswith("glt: error: ") and text in err


def test_export_cli_missing_benchmark(tmp_path, glt_cli):
    code, _, err = glt_cli("export", "--benchmark", tmp_path / "none", "--out", tmp_path / "e")
    assert code == 2 and err.count("\n") == 1 and "benchmark directory not found" in err
