"""`glt build folder / imagenet / torchvision`: the ImageNet-GLT recipe (docs/build.md) on a small generated image folder
(12 classes, 80-300 tiny images each, a randomly initialised backbone), its invariants, determinism,
bad input, and the split carving against a slow per-class reference implementation."""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glt.benchmark import Benchmark
from glt.builders import recipe
from glt.builders.pretext import merge_by_size
from glt.errors import GLTError

FAST = ["--random-init", "--backbone", "small_cnn", "--resize", "16", "--crop", "16", "--workers", "0"]
TRACK_SPLITS = {"glt": ("train", "val", "test_glt", "test_cbl", "test_gbl"), "cbl": ("train", "val", "test_cbl", "test_gbl")}


def glt(*argv) -> tuple[int, str, str]:
    """Run the `glt` command line in-process: (exit status, stdout, stderr)."""
    from glt.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("glt: error:")]
    assert len(errors) == 1, err
    for f in fragments:
        assert f in errors[0], errors[0]
    return errors[0]


def make_folder(root: Path, counts, size: int = 16, seed: int = 0) -> Path:
    """Class folders of small PNGs: a class colour in the centre, one of 6 background styles drawn
    with long-tailed probabilities around it (so the clusters have something to find)."""
    rng = np.random.default_rng(seed)
    p = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
    for c, n in enumerate(counts):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True)
        centre, styles = rng.integers(0, 256, 3), rng.integers(0, 256, (6, 3))
        for i in range(n):
            img = np.empty((size, size, 3), np.int64)
            img[:] = styles[rng.choice(6, p=p)]
            img[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = centre
            img = np.clip(img + rng.integers(-15, 16, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"img_{i:04d}.png")
    return root


# a dozen classes, 80 to 300 images each; two classes share a size (the tie is broken by name)
COUNTS = [300, 90, 160, 80, 130, 110, 85, 100, 90, 150, 80, 120]


@pytest.fixture(scope="session")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("images") / "shapes", COUNTS)


@pytest.fixture(scope="session")
def built(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "bench"
    # no size options: every size scales to the data
    code, _, err = glt("build", "folder", "--root", folder, "--out", out, "--seed", 3, "--cache", out.parent / "cache", *FAST)
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def random_features(folder, tmp_path_factory) -> Path:
    """Random precomputed features for the folder (rows in image-list order)."""
    from glt.builders.folder import scan_folder

    n = len(scan_folder(folder))
    path = tmp_path_factory.mktemp("feats") / "feats.npy"
    np.save(path, np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32))
    return path


# ---- the benchmark built with defaults --------------------------------------------------------------
def test_manifest_and_outputs(built, folder):
    b = Benchmark(built)
    m = b.manifest
    assert (m.image_style, m.image_size, m.attribute_kind, m.num_attributes) == ("imagenet", 112, "index", 3)
    assert json.loads((built / "manifest.json").read_text())["kind"] == "imagenet_glt"  # the ImageNet-GLT recipe
    assert sorted(m.split_names) == sorted(f"{t}/{s}" for t, ss in TRACK_SPLITS.items() for s in ss)
    assert sorted(m.classes) == sorted(p.name for p in folder.iterdir())
    for name in m.split_names:
        t = b.split(name)
        assert len(t) > 0
        for i, p in zip(t.id[:20], t.path[:20]):  # ids are paths relative to --root
            assert (folder / i).is_file() and Path(p) == (folder / i).resolve()
    for f in ("stats.json", "stats.md", "figures/class_distribution.png", "figures/attribute_distribution.png",
              "figures/examples.png", "original/shapes-glt_inter_lt.json", "original/shapes-glt_inter_bl.json"):
        assert (built / f).is_file(), f
    stats = json.loads((built / "stats.json").read_text())
    assert stats["splits"]["glt/test_gbl"]["intra_class_attribute_std"] == 0.0
    assert stats["splits"]["glt/train"]["size"] == len(b.split("glt/train"))


def test_labels_ranked_by_class_size_and_frequency_by_rank(built, folder):
    b = Benchmark(built)
    C = b.num_classes
    sizes = [len(list((folder / name).iterdir())) for name in b.manifest.classes]
    assert sizes == sorted(sizes, reverse=True)
    ties = [i for i in range(C - 1) if sizes[i] == sizes[i + 1]]
    assert ties and all(b.manifest.classes[i] < b.manifest.classes[i + 1] for i in ties)
    # the ImageNet-GLT rule (<400 / 400-849 / >=850 of 1000 classes) as fractions of C
    expected = {lab: 0 if lab < 0.4 * C else 1 if lab < 0.85 * C else 2 for lab in range(C)}
    for name in b.manifest.split_names:
        t = b.split(name)
        assert all(int(f) == expected[int(lab)] for lab, f in zip(t.label, t.frequency))


def test_recipe_invariants(built):
    b = Benchmark(built)
    C = b.num_classes
    info = b.manifest.info["sizes"]
    counts = lambda t: np.bincount(t.label * 3 + t.attribute, minlength=3 * C).reshape(C, 3)  # noqa: E731

    gbl = counts(b.split("glt/test_gbl"))
    assert (gbl > 0).all() and (gbl == gbl[:, :1]).all(), "Test-GBL balanced over attributes in every class"
    cbl = counts(b.split("glt/test_cbl"))
    t = info["test_cbl"]
    assert t > 0 and (cbl == [t * 7 // 10, t * 2 // 10, t // 10]).all(), "Test-CBL 7:2:1 in every class"
    cap = info["cbl_cap"]
    cbl_pool = counts(b.split("cbl/train")) + counts(b.split("cbl/val"))
    assert (cbl_pool == [cap * 7 // 10, cap * 2 // 10, cap // 10]).all(), "track cbl class-balanced, 7:2:1"
    v = info["val_cbl"]
    assert (counts(b.split("cbl/val")) == [v * 7 // 10, v * 2 // 10, v // 10]).all()
    assert len(b.split("glt/test_glt")) == C * info["test_glt"] and len(b.split("glt/val")) == C * info["val_glt"]
    train = np.bincount(b.split("glt/train").label, minlength=C)
    assert train[0] > 4 * train[-1], "Train-GLT long-tailed"
    for track, splits in TRACK_SPLITS.items():
        ids = [set(b.split(f"{track}/{s}").id) for s in splits]
        assert sum(map(len, ids)) == len(set().union(*ids)), f"splits of track {track} overlap"
    for s in ("test_cbl", "test_gbl"):  # carved before the tracks split: shared
        assert list(b.split(f"glt/{s}").id) == list(b.split(f"cbl/{s}").id)


def test_rebuild_same_seed_is_byte_identical(built, folder, tmp_path):
    out = tmp_path / "again"
    # features come from the cache (extraction determinism: test_unreadable_images...); clustering,
    # carving and every report run again
    code, _, err = glt("build", "folder", "--root", folder, "--out", out, "--seed", 3, "--cache", built.parent / "cache", *FAST)
    assert code == 0, err
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for f in files:
        assert (built / f).read_bytes() == (out / f).read_bytes(), f


def test_statistics_of_a_multilabel_benchmark(tmp_path):
    """write_statistics on an MSCOCO-GLT-like benchmark, checked against per-class loops."""
    from glt.benchmark import Manifest, SplitTable, write_benchmark
    from glt.benchmark.stats import write_example_grid, write_statistics

    rng = np.random.default_rng(0)
    C, A = 4, 7
    tables = {}
    for name, n in (("glt/train", 300), ("glt/test_gbl", 60), ("cbl/train", 120)):
        label = rng.integers(0, C - (name == "glt/test_gbl"), n)  # class 3 absent from one split
        vec = (rng.random((n, A)) < rng.random(A)).astype(np.uint8)
        tables[name] = SplitTable([f"{name}/{i}" for i in range(n)], [f"missing/{i}.png" for i in range(n)], label,
                                  np.zeros(n), rng.integers(0, 3, n), vec)
    m = Manifest(name="ml", classes=list("abcd"), attribute_kind="multilabel", num_attributes=3,
                 attribute_names=[f"a{i}" for i in range(A)], attribute_vector_length=A)
    write_benchmark(tmp_path, m, tables)
    write_example_grid(tmp_path)  # images missing: grey cells, no error
    stats = write_statistics(tmp_path)
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    for name, t in tables.items():
        s = stats["splits"][name]
        hist = [int(sum(int(v[j]) for v in t.attributes)) for j in range(A)]
        assert s["attribute_histogram"] == hist
        assert s["attribute_histogram_std"] == pytest.approx(np.std(np.array(hist) / sum(hist)))
        stds = []
        for c in range(C):
            rows = [v for v, lab in zip(t.attributes, t.label) if lab == c]
            if rows:
                h = np.sum(rows, axis=0).astype(float)
                stds.append(np.std(h / h.sum()))
        assert s["intra_class_attribute_histogram_std"] == pytest.approx(np.mean(stds))
        present = [int((t.label == c).sum()) for c in range(C) if (t.label == c).any()]
        assert s["class_imbalance"] == pytest.approx(max(present) / min(present))
        assert s["attribute_counts"] == [int((t.attribute == a).sum()) for a in range(3)]
    assert "attribute-vector histogram std" in (tmp_path / "stats.md").read_text()
    for f in ("class_distribution", "attribute_distribution", "examples"):
        assert (tmp_path / "figures" / f"{f}.png").stat().st_size > 1000


# ---- the carving against a slow reference ----------------------------------------------------------
def reference_carve(label, attribute, order_key, draw_key, sizes: recipe.RecipeSizes, C: int) -> dict:
    """The carving of docs/build.md (step 8) the obvious way, per class with Python lists (as the original
    script did)."""
    A, R = len(sizes.ratio), sum(sizes.ratio)
    n = len(label)
    out = {k: [] for k in recipe.SPLITS}
    pool = []
    for c in range(C):
        lists = [sorted((i for i in range(n) if label[i] == c and attribute[i] == a), key=lambda i: order_key[i])
                 for a in range(A)]
        g = min(min(sizes.gbl_max, len(lst) // sizes.gbl_divisor) for lst in lists)
        for lst in lists:
            out["test_gbl"] += [lst.pop(0) for _ in range(g)]
        for a, lst in enumerate(lists):
            out["test_cbl"] += [lst.pop(0) for _ in range(sizes.test_cbl * sizes.ratio[a] // R)]
        for a, lst in enumerate(lists):  # both tracks start from what the tests left
            pool += lst[: sizes.glt_counts[c] * sizes.ratio[a] // R]
            capped = lst[: sizes.cbl_cap * sizes.ratio[a] // R]
            v = sizes.val_cbl * sizes.ratio[a] // R
            out["cbl/val"] += capped[:v]
            out["cbl/train"] += capped[v:]
    pool.sort(key=lambda i: draw_key[i])
    nt, nv = C * sizes.test_glt, C * sizes.val_glt
    out["glt/test_glt"], out["glt/val"], out["glt/train"] = pool[:nt], pool[nt : nt + nv], pool[nt + nv :]
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", range(6))
def test_carve_matches_reference(seed):
    rng = np.random.default_rng(seed)
    C = int(rng.integers(2, 9))
    sizes = recipe.RecipeSizes(
        glt_counts=sorted(rng.integers(20, 200, C).tolist(), reverse=True),
        gbl_max=int(rng.integers(1, 6)), test_cbl=10 * int(rng.integers(1, 3)), test_glt=2, val_glt=1,
        cbl_cap=int(rng.integers(10, 25)), val_cbl=10,
    )
    # every (class, attribute) list large enough for the tests and the cap, some short of the profile
    lo = [6 + 20 + 18, 6 + 4 + 5, 6 + 2 + 3]
    group = np.array([[rng.integers(lo[a], lo[a] + 80 // (a + 1)) for a in range(3)] for _ in range(C)])
    label = np.repeat(np.arange(C), group.sum(axis=1))
    attribute = np.concatenate([np.repeat(np.arange(3), g) for g in group])
    shuffle = rng.permutation(len(label))
    label, attribute = label[shuffle], attribute[shuffle]
    order_key, draw_key = rng.permutation(len(label)), rng.permutation(len(label))
    got = recipe.carve(label, attribute, order_key, draw_key, sizes, C).splits
    want = reference_carve(label, attribute, order_key, draw_key, sizes, C)
    assert set(got) == set(want)
    for k in want:
        assert got[k].tolist() == want[k], k


def test_ratio_split_floors_in_integers():
    assert recipe.ratio_split(145).tolist() == [101, 29, 14]
    assert recipe.ratio_split(60).tolist() == [42, 12, 6]
    assert recipe.ratio_split([1500, 18]).tolist() == [[1050, 300, 150], [12, 3, 1]]


def test_carve_names_the_short_class():
    label = np.repeat(np.arange(2), [100, 40])
    attribute = np.concatenate([np.repeat([0, 1, 2], [60, 25, 15]), np.repeat([0, 1, 2], [30, 6, 4])])
    keys = np.arange(len(label))
    sizes = recipe.RecipeSizes(glt_counts=[50, 20], test_cbl=30, test_glt=1, val_glt=1, cbl_cap=10, val_cbl=0)
    with pytest.raises(GLTError, match=r"class 'b' \(label 1\) has 5 images left in pretext attribute 1, Test-CBL .* needs 6"):
        recipe.carve(label, attribute, keys, keys, sizes, 2, ["a", "b"])


def test_merge_by_size_pairs_clusters_largest_first():
    rng = np.random.default_rng(1)
    for _ in range(20):
        clusters = rng.integers(0, 6, int(rng.integers(6, 60)))
        sizes = np.bincount(clusters, minlength=6)
        by_size = sorted(range(6), key=lambda k: (-sizes[k], k))
        want = [by_size.index(k) // 2 for k in clusters]
        assert merge_by_size(clusters, 6, 3).tolist() == want


@pytest.mark.parametrize("method", ["sklearn", "faiss"])
def test_pretext_attributes_do_not_depend_on_parallelism(method):
    pytest.importorskip(method)
    from glt.builders.pretext import FeatureStore, pretext_attributes

    rng = np.random.default_rng(0)
    bounds = np.array([0, 40, 100, 130, 200])
    x = rng.standard_normal((200, 8)).astype(np.float32)
    ok = np.ones(200, bool)
    ok[[3, 150]] = False
    store = FeatureStore(lambda c: x[bounds[c] : bounds[c + 1]], bounds, ok, 8, "test")
    names = list("abcd")
    one = pretext_attributes(store, names, method=method, jobs=1, seed=4, progress=False)
    assert (one == pretext_attributes(store, names, method=method, jobs=3, seed=4, progress=False)).all()
    assert (one[~ok] == -1).all() and set(one[ok].tolist()) == {0, 1, 2}
    for c in range(4):  # attribute 0 is the largest pair of clusters in every class
        counts = np.bincount(one[bounds[c] : bounds[c + 1]][ok[bounds[c] : bounds[c + 1]]], minlength=3)
        assert counts[0] >= counts[1] >= counts[2]


def test_weights_file_is_loaded_safely_and_keys_the_cache(tmp_path):
    import torch

    from glt.builders import pretext
    from glt.models import create_backbone

    torch.manual_seed(5)
    ref = create_backbone("small_cnn").eval()
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    cfg = pretext.ExtractorConfig(backbone="small_cnn", weights=None, weights_file=str(tmp_path / "w.pt"))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(pretext.build_extractor(cfg)(x), ref(x))
    torch.save(create_backbone("small_cnn").state_dict(), tmp_path / "w2.pt")
    other = pretext.ExtractorConfig(backbone="small_cnn", weights=None, weights_file=str(tmp_path / "w2.pt"))
    assert other.cache_name() != cfg.cache_name(), "features of other weights are never reused"


# ---- bad input --------------------------------------------------------------------------------------
def test_empty_class_folder(tmp_path):
    root = make_folder(tmp_path / "imgs", [20, 20])
    (root / "zz_empty").mkdir()
    code, _, err = glt("build", "folder", "--root", root, "--out", tmp_path / "o", *FAST)
    assert_one_line_error(code, err, "zz_empty", "no images")
    assert not (tmp_path / "o").exists()


def test_too_few_images_for_the_requested_sizes(folder, random_features, tmp_path):
    # every class has the images the per-class minimum asks for (tests/test_build_inputs.py), but not in
    # the attribute the 7:2:1 shape needs them in: the carving names the class and the attribute
    code, _, err = glt("build", "folder", "--root", folder, "--out", tmp_path / "o", "--features", random_features,
                       "--test-cbl", 50)
    line = assert_one_line_error(code, err, "Test-CBL (50 per class) needs")
    m = re.search(r"class '(class_\d\d)' \(label \d+\) has (\d+) images left in pretext attribute (\d), "
                  r"Test-CBL \(50 per class\) needs (\d+) there", line)
    assert m, line
    has, attr, needs = int(m[2]), int(m[3]), int(m[4])
    assert needs == 50 * (7, 2, 1)[attr] // 10 and has < needs
    assert not (tmp_path / "o").exists()


def test_feature_file_rows_must_match_the_images(folder, random_features, tmp_path):
    short = tmp_path / "short.npy"
    np.save(short, np.load(random_features)[:-1])
    code, _, err = glt("build", "folder", "--root", folder, "--out", tmp_path / "o", "--features", short)
    assert_one_line_error(code, err, "rows", str(sum(COUNTS)))
    ids = tmp_path / "feats.npy"
    np.save(ids, np.load(random_features))
    (tmp_path / "feats.ids.txt").write_text("class_00/img_0001.png\n" * sum(COUNTS))
    code, _, err = glt("build", "folder", "--root", folder, "--out", tmp_path / "o", "--features", ids)
    assert_one_line_error(code, err, "feats.ids.txt line 1", "class_00/img_0000.png")


def test_unreadable_images_skipped_or_strict(tmp_path):
    root = make_folder(tmp_path / "imgs", [70, 60, 60, 65])
    bad = ["class_03/img_0005.png", "class_03/img_0040.png"]
    for b in bad:
        (root / b).write_bytes(b"not an image")
    cache = tmp_path / "cache"
    args = ["build", "folder", "--root", root, "--cache", cache, "--batch-size", "32", *FAST]
    code, _, err = glt(*args, "--out", tmp_path / "strict", "--strict")
    assert_one_line_error(code, err, "unreadable image", bad[0])
    assert list(cache.rglob("class-00000.json")), "classes finished before the failure stay cached"
    code, _, err = glt(*args, "--out", tmp_path / "ok")
    assert code == 0, err
    assert "skipped 2 unreadable images" in err
    b = Benchmark(tmp_path / "ok")
    assert b.manifest.info["unreadable_skipped"] == 2
    assert not set(bad) & set().union(*(set(b.split(n).id) for n in b.manifest.split_names))
    # features are deterministic: a fresh extraction equals the resumed one, also read back as --features
    from glt.builders import pretext
    from glt.builders.folder import options_from_args, scan_folder
    from glt.cli.main import build_parser

    images = scan_folder(root)
    cfg = options_from_args(build_parser().parse_args([str(a) for a in args] + ["--out", "x"])).extractor
    fresh = pretext.extract_features(images, tmp_path / "fresh", cfg, progress=False)
    resumed = pretext.load_feature_cache(cache / cfg.cache_name(), images)
    assert (fresh.ok == resumed.ok).all() and (~fresh.ok).sum() == 2
    for c in range(images.num_classes):
        assert np.array_equal(fresh.class_features(c), resumed.class_features(c))


# ---- imagenet and torchvision kinds -------------------------------------------------------------------
def test_imagenet_kind(folder, random_features, tmp_path):
    code, _, err = glt("build", "imagenet", "--root", folder, "--out", tmp_path / "o", "--features", random_features)
    assert_one_line_error(code, err, "1000 classes", "has 12")
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"counts": [200 - 15 * i for i in range(12)]}))
    code, _, err = glt("build", "imagenet", "--root", folder, "--out", tmp_path / "o", "--features", random_features,
                       "--counts", counts, "--test-cbl", 10, "--test-glt", 5, "--val-glt", 5, "--cbl-size", 30,
                       "--val-cbl", 10)
    assert code == 0, err
    m = Benchmark(tmp_path / "o").manifest
    assert m.name == "imagenet-glt" and m.info["sizes"]["glt_counts"][0] == 200 and m.info["sizes"]["gbl_max"] == 20
    code, out, _ = glt("build", "imagenet", "--help")
    assert "--random-init" in out and "tests and demos" in " ".join(out.split())


def _write_idx(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # IDX: magic 0x08 (unsigned bytes) + number of dimensions, then the sizes
        f.write(struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def test_torchvision_kind_writes_images_inside(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), np.linspace(90, 50, 10).astype(int))
    styles = rng.integers(0, 256, (10, 6))
    images = np.empty((len(labels), 28, 28), np.uint8)
    for i, lab in enumerate(labels):
        images[i] = styles[lab, rng.choice(6, p=[0.3, 0.25, 0.15, 0.12, 0.1, 0.08])]
        images[i, 7 + lab : 14 + lab, 7:21] = 255 - styles[lab, 0]
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", images)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    out = tmp_path / "mnist-glt"
    code, _, err = glt("build", "torchvision", "--dataset", "mnist", "--root", tmp_path / "data", "--out", out,
                       *FAST[:3], "--resize", 28, "--crop", 28, "--workers", 0)
    assert code == 0, err
    b = Benchmark(out)
    assert b.name == "mnist-glt" and len(b.manifest.classes) == 10
    assert len(list((out / "images").rglob("*.png"))) == len(labels)
    t = b.split("glt/train")
    assert all(not Path(p).is_absolute() and (out / p).is_file() for p in t.path)
    code, _, err = glt("build", "torchvision", "--dataset", "cifar100", "--root", tmp_path / "none", "--out",
                       tmp_path / "o2", "--random-init")
    assert_one_line_error(code, err, "cifar100", "--download")


@pytest.mark.slow
def test_folder_defaults_with_the_paper_backbone(folder, tmp_path):
    """The literal command of the issue: only --root, --out, --random-init and --seed (ResNet-50 at 256 px
    on ~1,400 images: minutes on a CPU)."""
    out = tmp_path / "bench"
    code, _, err = glt("build", "folder", "--root", folder, "--out", out, "--random-init", "--seed", 0)
    assert code == 0, err
    b = Benchmark(out)
    assert b.manifest.info["features"]["backbone"] == "resnet50" and b.manifest.info["features"]["crop"] == 256
    assert all(len(b.split(n)) for n in b.manifest.split_names)
