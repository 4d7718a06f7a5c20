"""ColorDigits-GLT builder (`glt build digits`): splits, profiles, leakage, pixels, determinism, errors."""

from __future__ import annotations

import colorsys
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import glt.cli.main as cli
from glt.benchmark import TRACK_SPLITS, Benchmark
from glt.builders.digits import build_digits, load_source_digits
from glt.errors import GLTError

RATIO = np.array([90.0, 8.0, 2.0])
ID = re.compile(r"^digits/(\d+)_([a-z]+)_(\d+)$")
# a small build for the tests that need several builds; the default build is checked once per module
SMALL = dict(
    imbalance=3, pool_head=100, test_per_class=10, gbl_per_colour=4, val_per_class=5, cbl_per_class=30, heldout_sources=20
)
TRAIN_SPLITS = ("glt/train", "cbl/train")
HELD_SPLITS = ("glt/test_gbl", "glt/test_cbl", "glt/test_glt", "glt/val", "cbl/val", "cbl/test_gbl", "cbl/test_cbl")
# the test's own hue table (degrees): the builder's colour names must mean these hues
HUE = {"red": 0, "orange": 30, "yellow": 60, "lime": 90, "green": 120, "mint": 150, "cyan": 180,
       "azure": 210, "blue": 240, "violet": 270, "magenta": 300, "rose": 330}  # fmt: skip


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Benchmark:
    return Benchmark(build_digits(tmp_path_factory.mktemp("digits") / "bench"))


def sources(table) -> np.ndarray:
    return np.array([int(ID.match(i).group(1)) for i in table.id])


def load(bench: Benchmark, table, rows) -> np.ndarray:
    return np.stack([np.asarray(Image.open(bench.image_path(table.path[i])).convert("RGB")) for i in rows])


def dominant_hue(images: np.ndarray) -> np.ndarray:
    """Hue (degrees) of the mean colour of each image's bright (stroke) pixels."""
    rgb = images.astype(np.float64) / 255
    mask = rgb.max(-1) > 0.6
    mean = (rgb * mask[..., None]).sum((1, 2)) / mask.sum((1, 2))[:, None]
    return np.array([colorsys.rgb_to_hsv(*m)[0] * 360 for m in mean])


def nearest_name(hue: float) -> str:
    return min(HUE, key=lambda name: abs((hue - HUE[name] + 180) % 360 - 180))


# ---- structure -----------------------------------------------------------------------------------


def test_manifest_records_the_benchmark_kind(bench):
    assert json.loads((bench.root / "manifest.json").read_text())["kind"] == "colordigits_glt"


def test_every_split_of_both_tracks_exists_with_its_images(bench):
    m = bench.manifest
    assert sorted(m.split_names) == sorted(f"{t}/{s}" for t, splits in TRACK_SPLITS.items() for s in splits)
    assert (m.name, m.image_style, m.image_size, m.attribute_kind, m.num_attributes) == (
        "colordigits-glt", "small", 32, "index", 3,
    )  # fmt: skip
    assert sorted(m.classes) == [f"digit {d}" for d in range(10)]
    assert len(m.attribute_names) == 3
    assert m.info["seed"] == 0 and m.info["options"]["attribute_ratio"] == [90, 8, 2]
    for name in m.split_names:
        assert len(bench.split(name)) > 0, name
    assert set(bench.missing_images().values()) == {0}
    with Image.open(bench.image_path(bench.split("glt/train").path[0])) as im:
        assert (im.mode, im.size) == ("RGB", (32, 32))


def test_ids_are_unique_and_name_their_file(bench):
    seen: dict[str, str] = {}
    for name in bench.manifest.split_names:
        t = bench.split(name)
        assert len(set(t.id)) == len(t), name
        # Test-GBL and Test-CBL are the same table in both tracks; any other repeat is a bug
        owner = name.split("/")[1] if name.endswith(("test_gbl", "test_cbl")) else name
        for i, p in zip(t.id, t.path):
            assert ID.match(i) and p == f"images/{i.split('/', 1)[1]}.png"
            assert seen.setdefault(i, owner) == owner, f"{i} in {seen[i]} and {name}"


def test_labels_are_ranked_by_train_glt_size_and_frequency_groups_follow_rank(bench):
    counts = bench.split("glt/train").class_counts(10)
    assert np.all(np.diff(counts) <= 0), counts
    for name in bench.manifest.split_names:
        t = bench.split(name)
        expect = np.where(t.label < 4, 0, np.where(t.label < 7, 1, 2))
        np.testing.assert_array_equal(t.frequency, expect)


def test_glt_pool_follows_the_exponential_profile_and_train_is_what_is_left(bench):
    splits = [bench.split(n) for n in ("glt/train", "glt/test_glt", "glt/val")]
    pool = sum(t.class_counts(10) for t in splits)
    profile = 960 * 10.0 ** (-np.arange(10) / 9)
    assert np.all(np.abs(pool - profile) <= 0.5 + 1e-9), pool
    for c in range(10):  # colours inside each class of the pool: within one image of the exact share
        cell = sum(np.bincount(t.attribute[t.label == c], minlength=3) for t in splits)
        assert np.all(np.abs(cell - pool[c] * RATIO / RATIO.sum()) < 1), (c, cell)
    assert len(splits[1]) == 600 and len(splits[2]) == 300
    train = splits[0].class_counts(10)
    assert 10 / 1.3 < train[0] / train[-1] < 10 * 1.3
    # Test-GLT and Val are drawn i.i.d. from the pool: each class keeps about the same share in Train-GLT
    # (hypergeometric mean and standard deviation)
    n, drawn = pool.sum(), 900
    mean = pool * (n - drawn) / n
    sd = np.sqrt(pool * (n - drawn) / n * drawn / n * (n - pool) / (n - 1))
    assert np.all(np.abs(train - mean) <= 5 * sd + 1), (train, mean)
    slope = np.polyfit(np.arange(10), np.log(train), 1)[0]
    assert abs(slope / (-math.log(10) / 9) - 1) < 0.1


def test_test_gbl_is_balanced_over_class_and_colour_and_shared_by_both_tracks(bench):
    t = bench.split("glt/test_gbl")
    cells = np.zeros((10, 3), dtype=int)
    np.add.at(cells, (t.label, t.attribute), 1)
    assert np.all(cells == 20)
    u = bench.split("cbl/test_gbl")
    np.testing.assert_array_equal(t.id, u.id)
    np.testing.assert_array_equal(t.attribute, u.attribute)


@pytest.mark.parametrize(
    ("name", "per_class"), [("glt/test_cbl", 60), ("cbl/test_cbl", 60), ("cbl/train", 300), ("cbl/val", 30)]
)
def test_class_balanced_splits_keep_the_intra_class_ratio(bench, name, per_class):
    t = bench.split(name)
    assert np.all(t.class_counts(10) == per_class)
    for c in range(10):
        cell = np.bincount(t.attribute[t.label == c], minlength=3)
        assert np.all(np.abs(cell - per_class * RATIO / RATIO.sum()) < 1), (name, c, cell)


def test_attribute_0_is_the_most_frequent_colour_of_every_class_in_training(bench):
    for name in TRAIN_SPLITS:
        t = bench.split(name)
        for c in range(10):
            cell = np.bincount(t.attribute[t.label == c], minlength=3)
            assert cell[0] > cell[1:].max() and np.all(np.diff(cell) <= 0), (name, c, cell)


# ---- sources -------------------------------------------------------------------------------------


def test_no_source_digit_of_a_test_or_val_split_is_in_a_training_split(bench):
    train = set().union(*(sources(bench.split(n)) for n in TRAIN_SPLITS))
    held = set().union(*(sources(bench.split(n)) for n in HELD_SPLITS))
    assert train and held and not (train & held)
    assert len(train | held) == 1797  # every handwritten digit is used


def test_ids_name_the_real_source_digit(bench):
    """Independent of the builder: the digit of the id's source (read with scikit-learn's own loader)
    is the class, and the rendered image looks more like its source than like other images of that digit."""
    from sklearn.datasets import load_digits

    ref = load_digits()
    images, target = load_source_digits()
    np.testing.assert_array_equal(images, (ref.images / 16).astype(np.float32))
    np.testing.assert_array_equal(target, ref.target)

    t = bench.split("glt/test_gbl")
    src = sources(t)
    names = np.array(bench.manifest.classes)[t.label]
    np.testing.assert_array_equal(names, [f"digit {d}" for d in ref.target[src]])
    rows = np.arange(0, len(t), 2)
    ink = load(bench, t, rows).max(-1)  # colour-blind intensity
    # back to 8x8: the 8x8 source spans the central 80% of the image (up to the jitter)
    box = (3.2, 3.2, 28.8, 28.8)
    small = np.stack([np.asarray(Image.fromarray(i).resize((8, 8), Image.BOX, box=box), float) for i in ink])
    small = small.reshape(len(rows), -1)
    small = small - small.mean(1, keepdims=True)
    flat = ref.images.reshape(len(ref.images), -1)
    flat = flat - flat.mean(1, keepdims=True)
    small /= np.linalg.norm(small, axis=1, keepdims=True)
    corr = small @ (flat / np.linalg.norm(flat, axis=1, keepdims=True)).T
    # the share of same-digit sources that the claimed source beats (0.5 by chance)
    wins = np.array(
        [np.mean(corr[j, src[i]] >= corr[j, ref.target == ref.target[src[i]]]) for j, i in enumerate(rows)]
    )
    assert np.mean(wins > 0.5) > 0.9, np.mean(wins > 0.5)


# ---- pixels --------------------------------------------------------------------------------------


def test_colours_are_class_specific_and_spread_over_the_wheel(bench):
    palette = bench.manifest.info["colours"]
    assert len(palette) == 3 and set(palette) <= set(HUE)
    hues = sorted(HUE[c] for c in palette)
    assert min(np.diff(hues + [hues[0] + 360])) >= 90  # distinct, far-apart hues
    per_class = [bench.manifest.info["class_colours"][c] for c in bench.manifest.classes]
    assert all(sorted(c) == sorted(palette) for c in per_class)
    # each class has its own head colour in turn: every colour heads some class, neighbours differ
    assert {c[0] for c in per_class} == set(palette)
    assert all(a[0] != b[0] for a, b in zip(per_class, per_class[1:]))


@pytest.mark.parametrize("name", ["glt/test_gbl", "glt/train", "cbl/train", "glt/test_glt"])
def test_the_stroke_colour_in_the_pixels_is_the_attribute_colour(bench, name):
    t = bench.split(name)
    rows = np.random.default_rng(0).choice(len(t), size=min(len(t), 400), replace=False)
    hues = dominant_hue(load(bench, t, rows))
    colours = bench.manifest.info["class_colours"]
    classes = bench.manifest.classes
    expect = [colours[classes[t.label[i]]][t.attribute[i]] for i in rows]
    got = [nearest_name(h) for h in hues]
    assert got == expect


def test_background_option_colours_the_background_per_attribute(tmp_path):
    b = Benchmark(build_digits(tmp_path / "bg", background=True, colours=2, attribute_ratio=(80, 20), **SMALL))
    assert b.manifest.num_attributes == 2 and b.manifest.info["options"]["background"] is True
    t = b.split("glt/test_gbl")
    images = load(b, t, np.arange(len(t)))
    corners = images[:, 0, 0].astype(int)
    classes, colours = b.manifest.classes, b.manifest.info["class_colours"]
    stroke = [colours[classes[t.label[i]]][t.attribute[i]] for i in range(len(t))]
    assert [nearest_name(h) for h in dominant_hue(images)] == stroke
    for name in set(stroke):  # one background per stroke colour, dark, and different between colours
        same = corners[np.array(stroke) == name]
        assert np.all(same == same[0]) and 0 < same[0].max() < 128
    assert len({tuple(corners[np.array(stroke) == s][0]) for s in set(stroke)}) == len(set(stroke))


# ---- determinism ---------------------------------------------------------------------------------


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    a = files(build_digits(tmp_path / "a", seed=3, **SMALL))
    b = files(build_digits(tmp_path / "b", seed=3, **SMALL))
    c = files(build_digits(tmp_path / "c", seed=4, **SMALL))
    assert len(a) > 500 and a == b
    split = "splits/glt/train.parquet"
    assert a[split] != c[split]
    shared = set(a) & set(c) - {"manifest.json"}
    assert sum(a[k] != c[k] for k in shared) > len(shared) // 2  # not just a relabelling


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    out = build_digits(tmp_path / "x", **SMALL)
    with pytest.raises(GLTError, match="overwrite"):
        build_digits(out, **SMALL)
    build_digits(out, seed=1, overwrite=True, **SMALL)
    assert Benchmark(out).manifest.info["seed"] == 1


# ---- bad input -----------------------------------------------------------------------------------

BAD = [
    (dict(attribute_ratio=(90, 10)), "2 entries but colours is 3"),
    (dict(attribute_ratio=(2, 8, 90)), "non-increasing"),
    (dict(attribute_ratio=(90, 10, 0)), "positive"),
    (dict(imbalance=0), "imbalance"),
    (dict(imbalance=-3), "imbalance"),
    (dict(colours=13, attribute_ratio=(1,) * 13), "palette"),
    (dict(image_size=4), "image size"),
    (dict(heldout_sources=180), "no training sources"),
    (dict(imbalance=200), "too few to hold colour"),
    (dict(pool_head=5000), "max_renders"),
    (dict(pool_head=400, imbalance=2, test_per_class=300), "too few for Test-GLT"),
    (dict(seed=-1), "seed"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_options_raise_a_clear_error_and_leave_nothing(tmp_path, kwargs, message):
    with pytest.raises(GLTError, match=re.escape(message)):
        build_digits(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def glt_main(monkeypatch):
    """`glt` with only the build command: this file tests the digits builder, not the other subcommands."""
    monkeypatch.setattr(cli, "COMMANDS", ["build"])

    def main(argv: list[str]) -> int:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        return e.value.code

    return main


@pytest.mark.parametrize(
    "extra",
    [
        ["--attribute-ratio", "90,8"],
        ["--attribute-ratio", "90,x,2"],
        ["--imbalance", "0"],
        ["--imbalance", "-2"],
        ["--colours", "20"],
        ["--image-size", "3"],
        ["--heldout-sources", "500"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, glt_main, extra):
    assert glt_main(["build", "digits", "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glt: error: "), err
    assert not (tmp_path / "o").exists()


def test_the_real_command_line_reports_a_bad_ratio_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "glt", "build", "digits", "--out", str(tmp_path / "o"), "--attribute-ratio", "90,8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "glt: error: attribute ratio 90,8 has 2 entries but colours is 3: give one per colour"
    ]


def test_cli_builds_with_the_given_options(tmp_path, capsys, glt_main):
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items() if k != "imbalance"]
    argv = ["build", "digits", "--out", str(tmp_path / "o"), "--seed", "5", "--image-size", "24", "--imbalance", "2"]
    assert glt_main(argv + sizes) == 0
    b = Benchmark(tmp_path / "o")
    assert b.manifest.info["seed"] == 5 and b.manifest.info["options"]["imbalance"] == 2
    assert b.manifest.image_size == 24 and b.manifest.info["options"]["pool_head"] == 100
    with Image.open(b.image_path(b.split("cbl/train").path[0])) as im:
        assert im.size == (24, 24)
    assert "built colordigits-glt" in capsys.readouterr().out
