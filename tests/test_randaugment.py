"""glt.data.randaugment against references written here from the `randaugment` 1.0.2 package (the policy the
original imports in data/DT_ImageNet_LT.py / data/DT_COCO_LT.py; the package itself needs NumPy's removed
`np.int`, so it is not imported): (a) each operation at every magnitude, compared pixel for pixel with the
operation written directly with numpy / PIL; the whole policy against a reference composition; (b) the policy's
statistics (operation, magnitude and application frequencies), which torchvision's RandAugment must fail;
(c) `glt train --method randaug` end to end."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import fast_overrides
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from glt.data import randaugment as ra
from glt.data.randaugment import RandAugment, SubPolicy, apply_op
from glt.data.transforms import build_batch_transforms, build_transforms
from glt.errors import GLTError

# ---- the reference, from reading the package ----------------------------------------------------------------

REF_OPS = ["Invert", "Cutout", "Sharpness", "AutoContrast", "Posterize", "ShearX", "TranslateX", "TranslateY",
           "ShearY", "Rotate", "Equalize", "Contrast", "Color", "Solarize", "Brightness"]  # get_trans_list order
REF_RANGES = {  # SubPolicy's `ranges`, index 0..9
    "ShearX": np.linspace(0, 0.3, 10), "ShearY": np.linspace(0, 0.3, 10),
    "TranslateX": np.linspace(0, 150 / 331, 10), "TranslateY": np.linspace(0, 150 / 331, 10),
    "Rotate": np.linspace(0, 30, 10), "Color": np.linspace(0.0, 0.9, 10), "Solarize": np.linspace(256, 0, 10),
    "Contrast": np.linspace(0.0, 0.9, 10), "Sharpness": np.linspace(0.0, 0.9, 10),
    "Brightness": np.linspace(0.0, 0.9, 10),
    "Posterize": [8, 8, 7, 7, 6, 6, 5, 5, 4, 4],  # round(linspace(8, 4, 10))
    "Cutout": [0, 2, 4, 7, 9, 11, 13, 16, 18, 20],  # round(linspace(0, 20, 10))
    "AutoContrast": [0] * 10, "Equalize": [0] * 10, "Invert": [0] * 10,
}
GREY = (128, 128, 128)


def _shift(a: np.ndarray, offset: float, axis: int) -> np.ndarray:
    """PIL's nearest-neighbour affine translation by `offset` pixels along `axis` (1: x, 0: y): output
    pixel i samples input floor(i + 0.5 + offset); samples outside the image are grey."""
    out = np.full_like(a, 128)
    n = a.shape[axis]
    for i in range(n):
        k = math.floor(i + 0.5 + offset)
        if 0 <= k < n:
            if axis == 1:
                out[:, i] = a[:, k]
            else:
                out[i] = a[k]
    return out


def reference_op(img: Image.Image, name: str, idx: int, rng: random.Random) -> Image.Image:
    m = REF_RANGES[name][idx]
    a = np.asarray(img)
    w, h = img.size
    if name == "Invert":
        return Image.fromarray(255 - a)
    if name == "Solarize":
        return Image.fromarray(np.where(a < m, a, 255 - a).astype(np.uint8))
    if name == "Posterize":
        return Image.fromarray(a & np.uint8((0xFF << (8 - m)) & 0xFF))
    if name == "AutoContrast":
        return ImageOps.autocontrast(img)
    if name == "Equalize":
        return ImageOps.equalize(img)
    if name == "Rotate":  # +m degrees always (no sign), nearest, grey corners
        return img.rotate(m, resample=Image.Resampling.NEAREST, fillcolor=GREY)
    if name == "Cutout":
        cx, cy = rng.randrange(w), rng.randrange(h)  # the package's "height_loc" runs along PIL's width
        out = a.copy()
        out[max(0, cy - m // 2):min(h, cy + m // 2), max(0, cx - m // 2):min(w, cx + m // 2)] = (125, 122, 113)
        return Image.fromarray(out)
    sign = rng.choice([-1, 1])
    if name == "TranslateX":
        return Image.fromarray(_shift(a, m * w * sign, axis=1))
    if name == "TranslateY":
        return Image.fromarray(_shift(a, m * h * sign, axis=0))
    if name in ("ShearX", "ShearY"):
        coeffs = (1, m * sign, 0, 0, 1, 0) if name == "ShearX" else (1, 0, 0, m * sign, 1, 0)
        return img.transform(img.size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC,
                             fillcolor=GREY)
    enhance = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
               "Sharpness": ImageEnhance.Sharpness, "Brightness": ImageEnhance.Brightness}[name]
    return enhance(img).enhance(1 + m * sign)


REF_POLICIES = [[a, b] for a in [(0.5, t, m) for t in REF_OPS for m in range(1, 10)]
                for b in [(0.5, t, m) for t in REF_OPS for m in range(1, 10)]]  # get_rand_policies


def reference_randaugment(img: Image.Image, rng: random.Random) -> Image.Image:
    for p, name, idx in REF_POLICIES[rng.randint(0, len(REF_POLICIES) - 1)]:
        if rng.random() < p:
            img = reference_op(img, name, idx, rng)
    return img


def test_image(h: int = 20, w: int = 28, seed: int = 0) -> Image.Image:
    """Not square (catches width / height mix-ups); noise over a gradient, so every operation changes it."""
    g = np.random.default_rng(seed)
    base = np.linspace(50, 190, w)[None, :, None] + np.linspace(-20, 20, h)[:, None, None]  # 5..235
    a = (base + g.integers(-25, 26, (h, w, 3))).astype(np.uint8)
    return Image.fromarray(a)


test_image.__test__ = False  # a helper, not a test


# ---- (a) operations and the whole policy -------------------------------------------------------------------


def test_ranges_table_is_the_packages():
    assert list(ra.OPS) == REF_OPS
    for name in REF_OPS:
        assert len(ra.RANGES[name]) == 10
        np.testing.assert_array_equal(np.asarray(ra.RANGES[name], dtype=float), np.asarray(REF_RANGES[name], float))


@pytest.mark.parametrize("name", REF_OPS)
def test_each_operation_matches_its_direct_pil_form(name):
    for idx in range(1, 10):
        for seed in range(3):
            img = test_image(seed=seed)
            mine, ref = random.Random(seed), random.Random(seed)
            out = apply_op(img, name, ra.RANGES[name][idx], mine)
            expected = reference_op(img, name, idx, ref)
            assert out.mode == "RGB" and out.size == img.size
            np.testing.assert_array_equal(np.asarray(out), np.asarray(expected), err_msg=f"{name} {idx} {seed}")
            assert mine.getstate() == ref.getstate(), f"{name}: different random draws"
    changed = np.asarray(apply_op(test_image(), name, ra.RANGES[name][9], random.Random(0)))
    assert not np.array_equal(changed, np.asarray(test_image())), f"{name} does nothing at magnitude 9"


def test_quirks_kept():
    img = test_image()
    # Rotate has no sign: two generators whose first choice differs rotate the same way
    signs = [random.Random(s).choice([-1, 1]) for s in range(10)]
    s_neg, s_pos = signs.index(-1), signs.index(1)
    np.testing.assert_array_equal(np.asarray(apply_op(img, "Rotate", 20.0, random.Random(s_neg))),
                                  np.asarray(apply_op(img, "Rotate", 20.0, random.Random(s_pos))))
    # Cutout of odd size 7 paints 6 x 6 pixels away from the borders; centre x drawn over the width
    big = Image.new("RGB", (60, 40), (0, 0, 0))
    for seed in range(50):
        g = random.Random(seed)
        cx, cy = g.randrange(60), g.randrange(40)
        out = np.asarray(apply_op(big, "Cutout", 7, random.Random(seed)))
        painted = (out == (125, 122, 113)).all(axis=2)
        ys, xs = np.nonzero(painted)
        assert (xs.min(), xs.max() + 1) == (max(0, cx - 3), min(60, cx + 3))
        assert (ys.min(), ys.max() + 1) == (max(0, cy - 3), min(40, cy + 3))
        if 3 <= cx < 57 and 3 <= cy < 37:
            assert painted.sum() == 36
        assert painted.sum() == (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
    # magnitude index 0 is never drawn by RandAugment; SubPolicy accepts any case (the package lowercases)
    assert SubPolicy(1.0, "shearx", 3, 0.0, "INVERT", 0).steps[0][1:] == ("ShearX", ra.RANGES["ShearX"][3])


def test_randaugment_matches_the_reference_composition():
    for seed in range(400):
        img = test_image(seed=seed % 5)
        mine, ref = random.Random(seed), random.Random(seed)
        out = RandAugment(rng=mine)(img)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(reference_randaugment(img, ref)), err_msg=str(seed))
        assert mine.getstate() == ref.getstate()


def test_global_random_and_tensor_input():
    img = test_image()
    random.seed(5)
    out_global = RandAugment()(img)
    out_own = RandAugment(rng=random.Random(5))(img)
    np.testing.assert_array_equal(np.asarray(out_global), np.asarray(out_own))
    tensor = TF.pil_to_tensor(img)
    for seed in range(20):
        t = RandAugment(rng=random.Random(seed))(tensor)
        assert t.dtype == torch.uint8 and t.shape == tensor.shape
        assert torch.equal(t, TF.pil_to_tensor(RandAugment(rng=random.Random(seed))(img)))
    with pytest.raises(TypeError):
        RandAugment()(tensor.float())


# ---- (b) the policy's statistics ----------------------------------------------------------------------------

Z = 5.0  # binomial standard deviations allowed per count: ~50 counts checked, P(any |z| > 5) < 1e-4


def _off(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) > Z * math.sqrt(n * p * (1 - p))


def policy_deviations(records: list) -> list[str]:
    """records: per image, two slots of (operation, magnitude index, applied). Under the package's policy each
    slot's operation is uniform over the 15, its magnitude index uniform over 1..9, applied with p 0.5, and
    the two slots independent."""
    n, bad = len(records), []
    for slot in (0, 1):
        ops = Counter(r[slot][0] for r in records)
        if set(ops) != set(REF_OPS):
            bad.append(f"slot {slot}: operations {sorted(set(ops) ^ set(REF_OPS))} differ from the package's")
        bad += [f"slot {slot}: {op} drawn {ops[op]} times of {n}" for op in REF_OPS if _off(ops[op], n, 1 / 15)]
        mags = Counter(r[slot][1] for r in records)
        if set(mags) != set(range(1, 10)):
            bad.append(f"slot {slot}: magnitude indices {sorted(mags)}, not 1..9")
        bad += [f"slot {slot}: magnitude {m} drawn {mags[m]} times" for m in range(1, 10) if _off(mags[m], n, 1 / 9)]
        applied = sum(r[slot][2] for r in records)
        if _off(applied, n, 0.5):
            bad.append(f"slot {slot}: applied {applied} times of {n}")
    if _off(sum(r[0][2] and r[1][2] for r in records), n, 0.25):
        bad.append("the two applications are not independent draws of p 0.5")
    if _off(sum(r[0][0] == r[1][0] for r in records), n, 1 / 15):
        bad.append("the two operations are not independent uniform draws")
    return bad


class _LoggingRandom(random.Random):
    def __init__(self, seed):
        super().__init__(seed)
        self.uniforms = []

    def random(self):
        u = super().random()
        self.uniforms.append(u)
        return u

    def getrandbits(self, k):  # defined, so that randint / choice keep using it rather than random()
        return super().getrandbits(k)


def port_records(n: int, monkeypatch) -> list:
    rng = _LoggingRandom(0)
    aug = RandAugment(rng=rng)
    calls, drawn = [], []
    real_draw = RandAugment.draw
    monkeypatch.setattr(ra, "apply_op", lambda img, name, m, rng=None, fill=None: calls.append((name, m)) or img)
    monkeypatch.setattr(RandAugment, "draw", lambda self, r=None: drawn.append(real_draw(self, r)) or drawn[-1])
    img = Image.new("RGB", (4, 4))
    records = []
    for _ in range(n):
        calls.clear()
        rng.uniforms.clear()
        assert aug(img) is img
        policy = drawn[-1]
        assert len(rng.uniforms) == 2  # one test per operation (the only float draws)
        applied = [u < 0.5 for u in rng.uniforms]
        assert calls == [(op, ra.RANGES[op][m]) for (op, m), a in zip(policy, applied) if a]
        records.append([(op, m, a) for (op, m), a in zip(policy, applied)])
    return records


def torchvision_records(n: int, monkeypatch) -> list:
    """Records of torchvision's v2.RandAugment, read from its (private) per-operation method."""
    aug = v2.RandAugment()
    if not hasattr(aug, "_apply_image_or_video_transform"):
        pytest.skip("this torchvision's RandAugment has no _apply_image_or_video_transform to record")
    seen = []

    def record(image, transform_id, magnitude, interpolation, fill):
        seen.append((transform_id, aug.magnitude, True))
        return image

    monkeypatch.setattr(aug, "_apply_image_or_video_transform", record)
    torch.manual_seed(0)
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    records = []
    for _ in range(n):
        seen.clear()
        aug(image)
        records.append(list(seen))
    return records


def test_policy_statistics(monkeypatch):
    assert policy_deviations(port_records(20000, monkeypatch)) == []


def test_torchvision_randaugment_is_not_the_packages_policy(monkeypatch):
    bad = policy_deviations(torchvision_records(3000, monkeypatch))
    text = "\n".join(bad)
    assert "operations" in text and "applied" in text and "magnitude indices [9]" in text, text


# ---- (c) in glt's transforms and training ---------------------------------------------------------------


def test_transform_position_and_names():
    train, test = build_transforms("imagenet", 112, "randaugment")
    kinds = [type(t) for t in train.transforms]
    assert kinds == [v2.RandomResizedCrop, v2.RandomHorizontalFlip, RandAugment, v2.ToDtype, v2.Normalize]
    assert not any(isinstance(t, RandAugment) for t in test.transforms)
    train_tv, _ = build_transforms("imagenet", 112, "randaugment_torchvision")
    assert [type(t) for t in train_tv.transforms][2] is v2.RandAugment
    small, _ = build_transforms("small", 16, "randaugment")
    assert isinstance(small.transforms[-3], RandAugment)  # after the small style's shift, before ToDtype
    out = train(torch.randint(0, 256, (3, 140, 150), dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.shape == (3, 112, 112)
    for name in ("randaugment", "randaugment_torchvision"):
        assert build_batch_transforms("small", 16, name) is None  # per-image path
    assert build_batch_transforms("small", 16, "default") is not None
    with pytest.raises(GLTError, match="randaugment_torchvision"):
        build_transforms("small", 16, "randaug")


def test_glt_train_randaug_one_epoch(tiny_benchmark, tmp_path, monkeypatch):
    import json

    from glt.cli.main import main

    count = [0]
    real = RandAugment.augment

    def counting(self, img):
        count[0] += 1
        return real(self, img)

    monkeypatch.setattr(RandAugment, "augment", counting)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--benchmark", str(tiny_benchmark), "--method", "randaug", "--out", str(out),
              *fast_overrides(1)])
    assert e.value.code == 0
    assert count[0] >= 16  # the training images went through the port
    splits = json.loads((out / "eval.json").read_text())["splits"]
    assert set(splits) == {"glt/test_glt", "glt/test_cbl", "glt/test_gbl"}
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in splits.values())
