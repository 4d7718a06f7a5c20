"""Bad and awkward input to the builders and to `glt import` (docs/build.md, "What the builders check"):
small data sets (what could not be balanced is warned about and recorded), refusals (one line, exit 2,
nothing written), attribute values and sample ids, link loops, partial folders left by a killed build,
and the modes of what is written under the user's umask.

Expected figures are computed here from the written split tables or from the documented arithmetic,
never read back from what the builder reports about itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from glt.benchmark import Benchmark, Manifest, SplitTable, write_benchmark
from glt.benchmark.original import export_original, import_original
from glt.errors import GLTError
from test_build_folder import FAST, assert_one_line_error, glt, make_folder
from test_original import imagenet_docs, write_docs

RATIO = (7, 2, 1)
SPLITS = ("glt/train", "glt/val", "glt/test_glt", "glt/test_cbl", "glt/test_gbl", "cbl/train", "cbl/val",
          "cbl/test_cbl", "cbl/test_gbl")
LONG_TAILED = ("glt/train", "glt/val", "glt/test_glt")
TITLES = {"glt/train": "Train-GLT", "glt/val": "Val (track glt)", "glt/test_glt": "Test-GLT"}


def floor_split(n: int) -> list[int]:
    return [n * r // sum(RATIO) for r in RATIO]


def random_features(root: Path, out: Path, seed: int = 0) -> Path:
    """Random features, one row per image in folder order (classes by name, files sorted)."""
    n = sum(1 for p in root.rglob("*.png"))
    np.save(out, np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32))
    return out


def clustered_folder(root: Path, attributes_per_class: list[list[int]], seed: int = 0) -> Path:
    """Tiny PNG class folders plus features in which k-means finds 6 tight blobs per class, two per
    wanted pretext attribute (sizes split in halves, so merging by size pairs them back): the build
    then sees exactly `attributes_per_class[c]` images in attribute 0, 1, 2 of class c."""
    rng = np.random.default_rng(seed)
    feats = []
    for c, attrs in enumerate(attributes_per_class):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True)
        n = sum(attrs)
        for i in range(n):
            Image.new("RGB", (8, 8), ((37 * c) % 256, i % 256, 0)).save(d / f"img_{i:04d}.png")
        blobs = []
        for a, m in enumerate(attrs):
            blobs += [2 * a] * ((m + 1) // 2) + [2 * a + 1] * (m // 2)
        feats.append(np.eye(16)[rng.permutation(blobs)] * 100 + rng.normal(0, 0.01, (n, 16)))
    np.save(root.parent / "features.npy", np.concatenate(feats).astype(np.float32))
    return root.parent / "features.npy"


def left_behind(out: Path) -> list[str]:
    """Everything a failed build of `out` may have left: the folder, its partial folders, a feature cache."""
    return sorted(p.name for p in out.parent.iterdir() if p.name == out.name or p.name.startswith(f".{out.name}.")
                  or p.name == f"{out.name}.cache")


# ---- small and odd data sets ---------------------------------------------------------------------------
# the tester's case: 15 classes of 80 to 300 images
SMALL_COUNTS = [83, 89, 96, 118, 139, 148, 191, 192, 214, 220, 223, 259, 267, 281, 294]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path]:
    root = make_folder(tmp_path_factory.mktemp("small") / "imgs", SMALL_COUNTS, seed=4)
    return root, random_features(root, root.parent / "features.npy", seed=1)


def check_balance_figures(out: Path) -> tuple[Benchmark, dict]:
    """info.balance against class counts computed from the split tables."""
    b = Benchmark(out)
    balance = b.manifest.info["balance"]
    classes = b.manifest.classes
    assert sorted(balance) == sorted(SPLITS)
    for name in SPLITS:
        counts = np.bincount(b.split(name).label, minlength=len(classes))
        entry = balance[name]
        assert entry["images"] == len(b.split(name)) == counts.sum()
        assert (entry["min"], entry["max"]) == (counts.min(), counts.max()), name
        assert entry["missing"] == [classes[c] for c in range(len(classes)) if counts[c] == 0], name
        present = counts[counts > 0]
        assert entry["imbalance"] == pytest.approx(present.max() / present.min(), abs=1e-3), name
        if "target" in entry:
            assert entry["short"] == {classes[c]: int(counts[c]) for c in range(len(classes))
                                      if counts[c] < entry["target"]}, name
    return b, balance


def test_small_data_set_explicit_test_gbl_max_is_warned_and_recorded(small, tmp_path):
    root, feats = small
    out = tmp_path / "bench"
    code, _, err = glt("build", "folder", "--root", root, "--out", out, "--features", feats, "--test-gbl-max", 20)
    assert code == 0, err
    b, balance = check_balance_figures(out)
    classes = b.manifest.classes
    gbl = np.bincount(b.split("glt/test_gbl").label, minlength=len(classes))
    # 20 per attribute asked: the target is 3 x 20 for every class; 80 to 300 images cannot give it
    assert balance["glt/test_gbl"]["target"] == 20 * b.manifest.num_attributes
    short = [c for c in range(len(classes)) if gbl[c] < 60]
    assert short and gbl.min() < gbl.max(), "this data cannot fill a class-balanced Test-GBL of 60 per class"
    lines = [x for x in err.splitlines() if "Test-GBL is not class-balanced" in x]
    assert len(lines) == 1 and lines[0].startswith("glt: warning: "), err
    assert f"{len(short)} of {len(classes)} classes have fewer than 60 images" in lines[0]
    for c in short[:8]:  # named in label order
        assert f"'{classes[c]}' {gbl[c]}" in lines[0], (classes[c], lines[0])
    if len(short) > 8:
        assert f"and {len(short) - 8} more" in lines[0]


def test_small_data_set_defaults_class_balanced_test_gbl_and_draw_warnings(small, tmp_path):
    root, feats = small
    out = tmp_path / "bench"
    code, _, err = glt("build", "folder", "--root", root, "--out", out, "--features", feats)
    assert code == 0, err
    b, balance = check_balance_figures(out)
    classes, C = b.manifest.classes, b.num_classes
    t = b.split("glt/test_gbl")
    per = np.zeros((C, 3), int)
    np.add.at(per, (t.label, t.attribute), 1)
    given = per[per.sum(axis=1) > 0]
    # one number for every class and attribute: balanced over classes as well as attributes
    assert len(given) and (given == given[0, 0]).all(), per
    assert given[0, 0] == b.manifest.info["sizes"]["gbl_max"] and 1 <= given[0, 0] <= 20
    assert ("Test-GBL is not class-balanced" in err) == bool(balance["glt/test_gbl"]["short"])
    counts = {n: np.bincount(b.split(n).label, minlength=C) for n in LONG_TAILED}
    present = {n: c[c > 0].max() / c[c > 0].min() for n, c in counts.items()}
    for n in LONG_TAILED:
        missing = [classes[c] for c in range(C) if counts[n][c] == 0]
        line = [x for x in err.splitlines() if x.startswith(f"glt: warning: {TITLES[n]} has no image of")]
        assert bool(line) == bool(missing), (n, missing, err)
        for name in missing[:8]:
            assert f"'{name}'" in line[0]
    for n in ("glt/test_glt", "glt/val"):
        line = [x for x in err.splitlines() if x.startswith(f"glt: warning: {TITLES[n]} is more imbalanced")]
        assert bool(line) == (present[n] > present["glt/train"]), (n, present, err)
        if line:
            assert f"{present[n]:.1f} vs {present['glt/train']:.1f}" in line[0]
    # the tester's complaint, measured: with 10 per class drawn i.i.d., Test-GLT is more imbalanced than
    # its training set on this data, and that is said
    assert present["glt/test_glt"] > present["glt/train"]
    assert "glt: warning: Test-GLT is more imbalanced than Train-GLT" in err


# ---- refusals ---------------------------------------------------------------------------------------------
def test_one_class_folder_is_refused(tmp_path):
    root = make_folder(tmp_path / "imgs", [60])
    out = tmp_path / "out"
    code, _, err = glt("build", "folder", "--root", root, "--out", out, *FAST)
    assert_one_line_error(code, err, str(root), "one class folder ('class_00')", "at least 2 classes")
    assert left_behind(out) == []


def _documented_minimum(test_cbl=10, val_cbl=10, cbl_cap=None, gbl_max=20) -> tuple[int, list[int]]:
    """docs/build.md, "How many images a class needs", worked out here: Test-GBL takes
    g = min(gbl_max, smallest attribute // 4) >= 1 from every attribute, Test-CBL and the class-balanced
    track their 7:2:1 floors (the track at least Val-CBL plus one image)."""
    if cbl_cap is None:
        cbl_cap = val_cbl + 1
        while sum(floor_split(cbl_cap)) <= sum(floor_split(val_cbl)):
            cbl_cap += 1
    need = [a + b for a, b in zip(floor_split(test_cbl), floor_split(cbl_cap))]
    best = None
    for smallest in range(4, 1000):
        g = min(gbl_max, smallest // 4)
        per = [max(n + g, smallest) for n in need]
        if min(per) == smallest and (best is None or sum(per) < sum(best)):
            best = per
    return sum(best), best


@pytest.mark.parametrize("preset", ["folder", "imagenet sizes"])
def test_a_class_below_the_minimum_is_refused_and_the_minimum_is_exact(tmp_path, preset):
    if preset == "folder":
        total, per = _documented_minimum()
        sizes = ["--test-glt", 1, "--val-glt", 1]  # the pool of 15 tiny classes holds no more
        num = 15
    else:
        total, per = _documented_minimum(test_cbl=60, val_cbl=30, cbl_cap=145, gbl_max=20)
        sizes = ["--test-cbl", 60, "--val-cbl", 30, "--cbl-size", 145, "--test-gbl-max", 20, "--test-glt", 1,
                 "--val-glt", 1]
        num = 2
    # one class an image short of the minimum, in its largest attribute
    feats = clustered_folder(tmp_path / "a" / "imgs", [per] * (num - 1) + [[per[0] - 1, *per[1:]]])
    out = tmp_path / "a" / "out"
    code, _, err = glt("build", "folder", "--root", tmp_path / "a" / "imgs", "--out", out, "--features", feats, *sizes)
    line = assert_one_line_error(code, err, f"class 'class_{num - 1:02d}' has {total - 1} images",
                                 f"needs at least {total} for the splits", "/".join(map(str, per)))
    assert "more classes are short" not in line
    assert left_behind(out) == []
    # exactly the minimum, in the shape it needs: the build goes through and every class is in every split
    feats = clustered_folder(tmp_path / "b" / "imgs", [per] * num)
    out = tmp_path / "b" / "out"
    code, _, err = glt("build", "folder", "--root", tmp_path / "b" / "imgs", "--out", out, "--features", feats, *sizes)
    assert code == 0, err
    b = Benchmark(out)
    for name in SPLITS:
        if name not in LONG_TAILED:
            assert (np.bincount(b.split(name).label, minlength=num) > 0).all(), name


def test_requested_sizes_raise_the_minimum_before_any_feature_is_computed(tmp_path):
    root = make_folder(tmp_path / "imgs", [90, 85, 80])
    out = tmp_path / "out"
    total, per = _documented_minimum(test_cbl=200, val_cbl=100)
    # no --features: a refusal after extraction would leave OUT.cache behind
    code, _, err = glt("build", "folder", "--root", root, "--out", out, "--test-cbl", 200, *FAST)
    assert_one_line_error(code, err, "class 'class_02' has 80 images", f"at least {total}",
                          "2 more classes are short")
    assert left_behind(out) == []


def test_class_folders_that_are_one_folder_are_refused(tmp_path):
    root = make_folder(tmp_path / "imgs", [40, 40])
    (root / "class_99").symlink_to(root / "class_00", target_is_directory=True)
    code, _, err = glt("build", "folder", "--root", root, "--out", tmp_path / "out", *FAST)
    assert_one_line_error(code, err, "'class_00' and 'class_99'", "same folder")


# ---- attribute values and sample ids ----------------------------------------------------------------------
def _tables(attr_of_first: int = 0, dup: bool = False) -> dict[str, SplitTable]:
    ids = ["a", "b", "a" if dup else "c"]
    t = SplitTable(ids, [f"{i}.jpg" for i in range(3)], [0, 1, 1], [0, 0, 1], [attr_of_first, 1, 2])
    return {"glt/train": t, "cbl/train": SplitTable(["x"], ["x.jpg"], [0], [0], [0])}


@pytest.mark.parametrize("value", [3, -1])
def test_write_benchmark_refuses_attributes_outside_the_range(tmp_path, value):
    m = Manifest(name="m", classes=["p", "q"], num_attributes=3)
    with pytest.raises(GLTError, match=rf"split glt/train: sample 'a' has attribute {value}, outside 0..2"):
        write_benchmark(tmp_path / "b", m, _tables(value))
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*"))


def test_a_split_table_refuses_attributes_its_column_cannot_hold():
    with pytest.raises(ValueError, match="40000"):
        SplitTable(["a"], ["a.jpg"], [0], [0], [40000])  # the int16 column would wrap it to -25536


def test_write_benchmark_refuses_duplicate_ids_where_asked(tmp_path):
    m = Manifest(name="m", classes=["p", "q"], num_attributes=3)
    with pytest.raises(GLTError, match="split glt/train: sample id 'a' appears twice"):
        write_benchmark(tmp_path / "b", m, _tables(dup=True), unique_ids=True)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*"))


@pytest.mark.parametrize("value", [3, 7, -2, 40000])
def test_benchmark_load_refuses_a_split_table_with_attributes_out_of_range(tmp_path, value):
    root = tmp_path / "b"
    write_benchmark(root, Manifest(name="m", classes=["p", "q"], num_attributes=3), _tables())
    path = root / "splits" / "glt" / "train.parquet"
    table = pq.read_table(path)
    attr = np.array([value, 1, 2], dtype=np.int32)  # int32: 40000 would wrap in the int16 column
    table = table.set_column(table.column_names.index("attribute"), "attribute", pa.array(attr))
    pq.write_table(table, path)
    with pytest.raises(GLTError) as e:
        Benchmark(root).split("glt/train")
    assert str(path) in str(e.value) and f"sample 'a' has attribute {value}, outside 0..2" in str(e.value)
    Benchmark(root).split("cbl/train")  # the other split still loads


def _broken_import(tmp_path, edit) -> tuple[int, str, Path, Path, Path]:
    g, c = imagenet_docs()
    edit(g, c)
    lt, bl = write_docs(tmp_path, g, c)
    out = tmp_path / "bench"
    code, _, err = glt("import", "--glt-file", lt, "--cbl-file", bl, "--out", out)
    return code, err, out, lt, bl


def test_import_refuses_a_gap_in_the_attribute_values(tmp_path):
    def edit(g, c):
        key = next(iter(g["train"]["attribute"]))
        g["train"]["attribute"][key] = 7  # 0..2 elsewhere: 3..6 are used by no sample
    code, err, out, lt, _ = _broken_import(tmp_path, edit)
    assert_one_line_error(code, err, str(lt), "split 'train'", "is 7", "no sample in either file has attribute 3")
    assert left_behind(out) == []


def test_import_refuses_negative_attributes(tmp_path):
    def edit(g, c):
        key = next(iter(c["val"]["attribute"]))
        c["val"]["attribute"][key] = -1
    code, err, out, _, bl = _broken_import(tmp_path, edit)
    assert_one_line_error(code, err, str(bl), "split 'val'", "is -1, outside")
    assert left_behind(out) == []


def test_import_refuses_a_sample_given_twice(tmp_path):
    g, c = imagenet_docs()
    lt, bl = write_docs(tmp_path, g, c)
    key = next(iter(g["val"]["label"]))
    text = lt.read_text()
    # json.dumps cannot write a key twice: add the second entry by hand
    entry = json.dumps(key) + ": " + json.dumps(g["val"]["label"][key])
    assert text.count(entry) == 1
    lt.write_text(text.replace(entry, entry + ", " + json.dumps(key) + ': "1"'))
    assert len(json.loads(lt.read_text())["val"]["label"]) == len(g["val"]["label"])  # json keeps one silently
    out = tmp_path / "bench"
    code, _, err = glt("import", "--glt-file", lt, "--cbl-file", bl, "--out", out)
    assert_one_line_error(code, err, str(lt), f"key '{key}' appears twice")
    assert left_behind(out) == []


def test_import_refuses_one_class(tmp_path):
    g, c = imagenet_docs()
    for doc in (g, c):
        keep = next(iter(doc["id2cat"].values()))
        doc["id2cat"], doc["cat2id"] = {"0": keep}, {keep: "0"}
        for k in ("train", "val", "test_lt", "test_bl", "test_bbl"):
            rows = [p for p, lab in doc[k]["label"].items() if lab == "0"]
            doc[k] = {m: {p: doc[k][m][p] for p in rows} for m in ("label", "frequency", "attribute")}
    lt, bl = write_docs(tmp_path, g, c)
    out = tmp_path / "bench"
    code, _, err = glt("import", "--glt-file", lt, "--cbl-file", bl, "--out", out)
    assert_one_line_error(code, err, str(lt), "one class", "at least 2")
    assert left_behind(out) == []


def test_coco_attributes_file_with_values_other_than_0_and_1(tmp_path):
    from glt.builders.coco_attributes import NPZ_FORMAT, read_npz

    for bad in (2, 257, -1):
        present = np.array([[0, 1], [1, bad]], dtype=np.int64)
        np.savez(tmp_path / "a.npz", format=np.array(NPZ_FORMAT), patch_ids=np.array(["p1", "p2"]),
                 ann_ids=np.array([1, 2]), present=present, attribute_ids=np.array([5, 6]),
                 attribute_names=np.array(["red", "wet"]))
        with pytest.raises(GLTError, match=f"'present' must hold 0 or 1, it holds {bad}"):
            read_npz(tmp_path / "a.npz")


# ---- links ------------------------------------------------------------------------------------------------
def test_link_loops_are_skipped_with_a_warning(tmp_path):
    root = make_folder(tmp_path / "imgs", [70, 60, 60])
    real = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    feats = random_features(root, tmp_path / "f.npy")  # one row per real image
    sub = root / "class_00" / "sub"
    sub.mkdir()
    (sub / "up").symlink_to("..", target_is_directory=True)  # class_00/sub/up -> class_00: a loop
    (sub / "top").symlink_to("../..", target_is_directory=True)  # -> ROOT, every class again
    (root / "class_01" / "self").symlink_to(".", target_is_directory=True)
    (root / "class_02" / "other").symlink_to("../class_00", target_is_directory=True)  # another class's folder
    (root / "class_02" / "gone.png").symlink_to("nowhere.png")  # a broken link
    out = tmp_path / "out"
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "glt", "build", "folder", "--root", str(root), "--out", str(out),
                        "--features", str(feats), "--test-glt", "2", "--val-glt", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 300
    warn = [x for x in r.stderr.splitlines() if x.startswith("glt: warning: skipped 4 linked folders")]
    assert len(warn) == 1, r.stderr
    assert "glt: warning: skipped 1 broken link" in r.stderr
    b = Benchmark(out)
    ids = set().union(*(set(b.split(n).id) for n in b.manifest.split_names))
    assert ids <= set(real)  # every image once, under its real path
    assert b.manifest.info["links_skipped"] == 4


def test_links_to_folders_outside_are_followed(tmp_path):
    from glt.builders.folder import scan_folder

    root = make_folder(tmp_path / "imgs", [30, 30])
    extra = make_folder(tmp_path / "elsewhere", [5])
    (root / "class_01" / "more").symlink_to(extra / "class_00", target_is_directory=True)
    images = scan_folder(root)
    assert sum(i.startswith("class_01/more/") for i in images.ids) == 5 and len(images) == 65


# ---- partial folders of killed builds ---------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _partial(parent: Path, name: str, marker: dict | None) -> Path:
    d = parent / name
    (d / "splits").mkdir(parents=True)
    (d / "splits" / "x.parquet").write_bytes(b"half")
    if marker is not None:
        (d / ".glt-partial.json").write_text(json.dumps(marker))
    return d


def test_stale_partial_folders_of_glt_are_removed_and_nothing_else(tmp_path):
    from glt.builders.digits import build_digits
    from test_digits import SMALL

    host = socket.gethostname()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        mark = lambda **kw: {"tool": "glt", "out": "bench", "host": host, "pid": _dead_pid(), **kw}  # noqa: E731
        stale = _partial(tmp_path, ".bench.k2j4h1aa.partial", mark())
        user = _partial(tmp_path, ".bench.mine.partial", None)  # a look-alike without glt's marker
        live = _partial(tmp_path, ".bench.live0000.partial", mark(pid=sleeper.pid))
        other_out = _partial(tmp_path, ".bench.other000.partial", mark(out="bench2"))
        other_host = _partial(tmp_path, ".bench.remote00.partial", mark(host=host + "-elsewhere"))
        not_ours = _partial(tmp_path, ".bench.tool0000.partial", mark(tool="other"))
        build_digits(tmp_path / "bench", **SMALL)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not stale.exists()
    for kept in (user, live, other_out, other_host, not_ours):
        assert (kept / "splits" / "x.parquet").read_bytes() == b"half", kept
    assert not (tmp_path / "bench" / ".glt-partial.json").exists()
    assert Benchmark(tmp_path / "bench").manifest.name


def test_a_killed_build_leaves_a_marked_partial_that_the_next_build_removes(tmp_path):
    out = tmp_path / "bench"
    p = subprocess.Popen([sys.executable, "-m", "glt", "build", "digits", "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        partial = []
        while not partial and time.monotonic() < deadline and p.poll() is None:
            partial = [d for d in tmp_path.glob(".bench.*.partial") if (d / ".glt-partial.json").is_file()]
            time.sleep(0.01)
        assert partial, "the build never showed a marked partial folder"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    assert not out.exists() and all(d.exists() for d in partial)
    marker = json.loads((partial[0] / ".glt-partial.json").read_text())
    assert marker["pid"] == p.pid and marker["out"] == "bench"
    code, _, err = glt("build", "digits", "--out", out, "--pool-head", 100, "--imbalance", 3, "--cbl-per-class", 30,
                       "--test-per-class", 10, "--gbl-per-colour", 4, "--val-per-class", 5, "--heldout-sources", 20)
    assert code == 0, err
    assert not any(d.exists() for d in partial)
    assert f"removed {partial[0]}" in err
    assert list(tmp_path.glob(".bench.*")) == []


def test_overwrite_replaces_a_benchmark_but_not_another_folder(tmp_path):
    from glt.builders.digits import build_digits
    from test_digits import SMALL

    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(GLTError, match="is not a glt benchmark"):
        build_digits(mine, overwrite=True, **SMALL)
    assert (mine / "thesis.tex").read_text() == "years of work"


# ---- modes under the user's umask ----------------------------------------------------------------------
def _modes(root: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {"file": set(), "dir": {stat.S_IMODE(root.stat().st_mode)}}
    for p in root.rglob("*"):
        if p.is_symlink():
            continue
        out["dir" if p.is_dir() else "file"].add(stat.S_IMODE(p.stat().st_mode))
    return out


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_everything_written_follows_the_umask(tmp_path, umask):
    from glt.data.image_cache import build_cache

    want = {"file": {0o666 & ~umask}, "dir": {0o777 & ~umask}}
    root = make_folder(tmp_path / "imgs", [70, 70, 70])
    old = os.umask(umask)
    try:
        out = tmp_path / "bench"
        code, _, err = glt("build", "folder", "--root", root, "--out", out, "--cache", tmp_path / "fcache",
                           "--test-glt", 2, "--val-glt", 2, *FAST)
        assert code == 0, err
        build_cache(out, short_side=8, workers=1, progress=False)
        lt, bl = export_original(out, tmp_path / "exported")
        imported, _ = import_original(lt, bl, tmp_path / "imported")
    finally:
        os.umask(old)
    for folder in (out, tmp_path / "fcache", tmp_path / "exported", imported):
        assert _modes(folder) == want, (folder, {k: sorted(map(oct, v)) for k, v in _modes(folder).items()})
    assert any((out / "cache").rglob("*.jpg"))
