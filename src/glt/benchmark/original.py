"""Import and export the annotation files of the original GLT release
(KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch). See docs/import.md for what the layout is and
where in the original code each detail comes from.

One file per track: ``..._inter_lt`` is track ``glt``, ``..._inter_bl`` is track ``cbl``. Top level
``cat2id`` / ``id2cat`` and one object per split (``train``, ``val``, ``test_lt``, ``test_bl``,
``test_bbl``) holding parallel maps keyed by the sample key:

- ImageNet-GLT: key = image path; ``label`` (a string "0".."999" in the release), ``frequency``,
  ``attribute`` (pretext attribute 0..2).
- MSCOCO-GLT: key = COCO-Attributes patch id; the same maps (``attribute`` = attribute group 0..2)
  plus ``path``, and ``attribute_score`` / ``attribute_dist`` (kept for the record, not read). The
  204-long attribute vectors are not in the released JSON; our exports add them as
  ``attribute_present`` (indices of the present attributes) with a top-level ``attribute_names``.

Sample ids are the keys of the original file (ImageNet-GLT: the path as written there, before any
path map), so predictions made for the original files can be scored unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glt.benchmark.directory import Benchmark, write_benchmark
from glt.benchmark.manifest import IMPORT_LAYOUT_KINDS, Manifest
from glt.benchmark.split import SplitTable
from glt.errors import GLTError
from glt.benchmark.output import build_output
from glt.io import file_mode
from glt.io import atomic_path, existing_files

# original split key -> our split name (docs/import.md, "What the original files hold")
SPLIT_KEYS = {"train": "train", "val": "val", "test_lt": "test_glt", "test_bl": "test_cbl", "test_bbl": "test_gbl"}
# track -> the suffix of its original file name
TRACK_SUFFIX = {"glt": "inter_lt", "cbl": "inter_bl"}
IMAGENET, MSCOCO = "imagenet-glt", "mscoco-glt"
MAPS = {IMAGENET: ("label", "frequency", "attribute"), MSCOCO: ("label", "frequency", "attribute", "path")}
MAX_ATTRIBUTE = np.iinfo(np.int16).max


# ---- reading one original file ------------------------------------------------------------------
@dataclass
class OriginalFile:
    """One parsed annotation file: classes and one table per original split key (paths not yet mapped)."""

    path: Path
    layout: str
    classes: list[str]
    splits: dict[str, SplitTable]
    attribute_names: list[str] = field(default_factory=list)  # MSCOCO-GLT exports of ours only


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return None
    return None


def _ints(where: str, keys: list[str], values: list[Any]) -> np.ndarray:
    """JSON values (ints, or strings of ints as ImageNet-GLT labels are) -> int64, vectorised;
    on failure, name the first bad entry. Booleans and floats are refused, not truncated."""
    if not values:
        return np.zeros(0, np.int64)
    types = set(map(type, values))
    try:
        if types == {int}:
            return np.array(values, dtype=np.int64)
        if types <= {int, str}:
            return np.array(values, dtype=str).astype(np.int64)
    except (ValueError, OverflowError):
        pass
    for k, v in zip(keys, values):
        if _int_or_none(v) is None:
            raise GLTError(f"{where} of '{k}' must be an integer, got {_short(v)}")
    raise GLTError(f"{where}: values must be integers in the int64 range")


def _check_range(where: str, keys: list[str], values: np.ndarray, lo: int, hi: int, what: str) -> None:
    bad = np.flatnonzero((values < lo) | (values > hi))
    if len(bad):
        i = bad[0]
        raise GLTError(f"{where} of '{keys[i]}' is {values[i]}, outside {what} {lo}..{hi}")


def _same_keys(where: str, name: str, ref: dict, other: dict) -> None:
    if ref.keys() == other.keys():
        return
    missing = next((k for k in ref if k not in other), None)
    if missing is not None:
        raise GLTError(f"{where}: '{missing}' has a label but no entry in '{name}'")
    extra = next(k for k in other if k not in ref)
    raise GLTError(f"{where}: '{extra}' is in '{name}' but has no label")


def _read_classes(src: str, doc: dict) -> list[str]:
    id2cat, cat2id = doc.get("id2cat"), doc.get("cat2id")
    if id2cat is None and cat2id is None:
        raise GLTError(f"{src}: missing key 'id2cat' (and 'cat2id'): the class names")
    for key, m in (("id2cat", id2cat), ("cat2id", cat2id)):
        if m is not None and (not isinstance(m, dict) or not m):
            raise GLTError(f"{src}: '{key}' must be a non-empty object")
    if id2cat is not None:
        n = len(id2cat)
        missing = next((i for i in range(n) if str(i) not in id2cat), None)
        if missing is not None:
            raise GLTError(f"{src}: 'id2cat' has no class {missing} (its keys must be 0..{n - 1})")
        classes = [id2cat[str(i)] for i in range(n)]
    else:
        inverse: dict[int, str] = {}
        for name, i in cat2id.items():
            j = _int_or_none(i)
            if j is None or not 0 <= j < len(cat2id) or j in inverse:
                raise GLTError(
                    f"{src}: 'cat2id' maps '{name}' to {_short(i)}; ids must be 0..{len(cat2id) - 1}, once each"
                )
            inverse[j] = name
        classes = [inverse[i] for i in range(len(cat2id))]
    bad = next((c for c in classes if not isinstance(c, str) or not c), None)
    if bad is not None:
        raise GLTError(f"{src}: class names must be non-empty strings, got {_short(bad)}")
    if len(set(classes)) != len(classes):
        dup = next(c for c in classes if classes.count(c) > 1)
        raise GLTError(f"{src}: class '{dup}' appears twice in 'id2cat'")
    if id2cat is not None and cat2id is not None:
        for i, c in enumerate(classes):
            if _int_or_none(cat2id.get(c)) != i:
                raise GLTError(f"{src}: 'cat2id' and 'id2cat' disagree on class {i} ('{c}')")
        if len(cat2id) != len(classes):
            extra = next(c for c in cat2id if c not in set(classes))
            raise GLTError(f"{src}: 'cat2id' has class '{extra}', which 'id2cat' lacks")
    return classes


def _read_vectors(where: str, keys: list[str], present: dict, width: int) -> np.ndarray:
    """`attribute_present` ({key: [indices of present attributes]}) -> uint8 (N, width)."""
    rows = [present[k] for k in keys]
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, list)), None)
    if bad is not None:
        raise GLTError(f"{where}: 'attribute_present' of '{keys[bad]}' must be a list of attribute indices")
    lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    owners = [k for k, r in zip(keys, rows) for _ in r]
    flat = _ints(f"{where}: 'attribute_present'", owners, [i for r in rows for i in r])
    owner = np.repeat(np.arange(len(rows)), lengths)
    bad = np.flatnonzero((flat < 0) | (flat >= width))
    if len(bad):
        raise GLTError(
            f"{where}: 'attribute_present' of '{keys[owner[bad[0]]]}' has index {flat[bad[0]]}, "
            f"outside 0..{width - 1} ('attribute_names' has {width})"
        )
    out = np.zeros((len(rows), width), np.uint8)
    out[owner, flat] = 1
    return out


def _read_split(src: str, key: str, s: Any, layout: str, num_classes: int, width: int) -> SplitTable:
    where = f"{src}: split '{key}'"
    if not isinstance(s, dict):
        raise GLTError(f"{where} must be an object of maps ({', '.join(MAPS[layout])})")
    for name in MAPS[layout]:
        if name not in s:
            raise GLTError(f"{where} has no '{name}' map")
        if not isinstance(s[name], dict):
            raise GLTError(f"{where}: '{name}' must be an object")
    labels: dict = s["label"]
    for name in MAPS[layout][1:]:
        _same_keys(where, name, labels, s[name])
    ids = list(labels)  # the original loaders iterate the label map: keep its order
    label = _ints(f"{where}: label", ids, list(labels.values()))
    _check_range(f"{where}: label", ids, label, 0, num_classes - 1, "the class range")
    freq = _ints(f"{where}: frequency", ids, [s["frequency"][k] for k in ids])
    _check_range(f"{where}: frequency", ids, freq, 0, 2, "the frequency groups")
    attr = _ints(f"{where}: attribute", ids, [s["attribute"][k] for k in ids])
    _check_range(f"{where}: attribute", ids, attr, 0, MAX_ATTRIBUTE, "the attribute range")
    if layout == MSCOCO:
        paths = [s["path"][k] for k in ids]
        bad = next((i for i, p in enumerate(paths) if not isinstance(p, str) or not p), None)
        if bad is not None:
            raise GLTError(f"{where}: path of '{ids[bad]}' must be a non-empty string, got {_short(paths[bad])}")
    else:
        paths = ids
    vectors = None
    if width and ids:
        if not isinstance(s.get("attribute_present"), dict):
            raise GLTError(f"{where} has no 'attribute_present' map (the file has 'attribute_names')")
        _same_keys(where, "attribute_present", labels, s["attribute_present"])
        vectors = _read_vectors(where, ids, s["attribute_present"], width)
    elif width:
        vectors = np.zeros((0, width), np.uint8)
    return SplitTable(ids, paths, label, freq, attr, vectors)


def _read_json_unique(path: Path, what: str) -> Any:
    """json.loads, refusing an object with a key twice (json keeps the last silently: a sample given twice
    in a map would vanish without a word)."""
    if not path.is_file():
        raise GLTError(f"{what} not found: {path}")
    dup: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        d = dict(items)
        if len(d) != len(items) and not dup:
            seen: set[str] = set()
            dup.append(next(k for k, _ in items if k in seen or seen.add(k)))
        return d

    try:
        doc = json.loads(path.read_text(), object_pairs_hook=pairs)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GLTError(f"malformed {what} {path}: {e}") from None
    if dup:
        raise GLTError(f"{path}: key '{dup[0]}' appears twice in one object (a sample id must be unique in a split)")
    return doc


def read_original(path: str | os.PathLike) -> OriginalFile:
    """Parse and validate one original annotation file (either layout)."""
    path = Path(path)
    src = str(path)
    doc = _read_json_unique(path, "annotation file")
    if not isinstance(doc, dict):
        raise GLTError(f"{src}: expected a JSON object with keys cat2id, id2cat, {', '.join(SPLIT_KEYS)}")
    for key in SPLIT_KEYS:
        if key not in doc:
            raise GLTError(f"{src}: missing key '{key}'")
    # MSCOCO-GLT splits carry a `path` map (images are named by patch id); ImageNet-GLT keys are paths
    has_path = [isinstance(doc[k], dict) and "path" in doc[k] for k in SPLIT_KEYS]
    layout = MSCOCO if any(has_path) else IMAGENET
    classes = _read_classes(src, doc)
    names = doc.get("attribute_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise GLTError(f"{src}: 'attribute_names' must be a list of strings")
    if names and layout != MSCOCO:
        raise GLTError(f"{src}: 'attribute_names' belongs to the MSCOCO-GLT layout (splits with a 'path' map)")
    splits = {k: _read_split(src, k, doc[k], layout, len(classes), len(names)) for k in SPLIT_KEYS}
    return OriginalFile(path, layout, classes, splits, names)


# ---- path maps ------------------------------------------------------------------------------------
def parse_path_map(items: Iterable[str | tuple[str, str]]) -> list[tuple[str, str]]:
    """'OLD=NEW' strings (or (old, new) pairs) -> pairs. OLD may be empty (prefix every path)."""
    out = []
    for item in items:
        if isinstance(item, str):
            if "=" not in item:
                raise GLTError(f"--path-map expects OLD=NEW (a path prefix and its replacement), got '{item}'")
            old, new = item.split("=", 1)
        else:
            old, new = item
        out.append((old, new))
    return out


def apply_path_map(paths: Sequence[str], path_map: Sequence[tuple[str, str]]) -> tuple[np.ndarray, list[bool]]:
    """Rewrite the first matching prefix of each path; also says which prefixes matched anything."""
    out = list(paths)
    todo = np.ones(len(out), bool)
    used = []
    for old, new in path_map:
        hit = np.flatnonzero(np.fromiter((p.startswith(old) for p in out), bool, len(out)) & todo)
        used.append(len(hit) > 0)
        for i in hit.tolist():
            out[i] = new + out[i][len(old) :]
        todo[hit] = False  # a rewritten path is not rewritten again by a later prefix
    return np.array(out, dtype=object), used


# ---- import -----------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    out: Path
    layout: str
    rows: dict[str, int]  # split -> rows
    missing: dict[str, int]  # split -> rows whose image file does not exist
    images: int  # distinct image files referenced
    images_missing: int
    example_missing: str | None
    unused_path_maps: list[str]

    def missing_summary(self) -> str | None:
        if not self.images_missing:
            return None
        return (
            f"{self.images_missing} of {self.images} images not found, e.g. {self.example_missing}; "
            "use --path-map OLD=NEW"
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _default_name(glt_file: Path, layout: str) -> str:
    stem, suffix = glt_file.stem, "_" + TRACK_SUFFIX["glt"]
    if stem.endswith(suffix) and len(stem) > len(suffix):  # imagenet_sup_intra_lt_inter_lt.json
        return stem[: -len(suffix)]
    # the MSCOCO-GLT release names both files annotation.json
    return "mscoco_glt" if layout == MSCOCO and stem == "annotation" else stem


def _check_missing(tables: dict[str, SplitTable], root: Path) -> tuple[dict[str, int], int, int, str | None]:
    unique = list(dict.fromkeys(p for t in tables.values() for p in t.path))
    base = str(root) + os.sep
    found = existing_files([p if p.startswith(os.sep) else base + p for p in unique])  # relative: to the root
    exists = dict(zip(unique, found.tolist()))
    missing = {name: int(sum(not exists[p] for p in t.path)) for name, t in tables.items()}
    absent = np.flatnonzero(~found)
    return missing, len(unique), len(absent), (unique[absent[0]] if len(absent) else None)


def run_import(
    glt_file: str | os.PathLike,
    cbl_file: str | os.PathLike,
    out: str | os.PathLike,
    *,
    path_map: Iterable[str | tuple[str, str]] = (),
    name: str | None = None,
    overwrite: bool = False,
) -> ImportReport:
    """`import_original` with the full report the CLI prints."""
    glt_file, cbl_file, out = Path(glt_file), Path(cbl_file), Path(out)
    pairs = parse_path_map(path_map)
    files = {"glt": read_original(glt_file), "cbl": read_original(cbl_file)}
    lt, bl = files["glt"], files["cbl"]
    if lt.layout != bl.layout:
        raise GLTError(f"{glt_file} is in the {lt.layout} layout but {cbl_file} is in the {bl.layout} layout")
    if lt.classes != bl.classes:
        if len(lt.classes) != len(bl.classes):
            diff = f"{len(lt.classes)} vs {len(bl.classes)} classes"
        else:
            i = next(i for i, (a, b) in enumerate(zip(lt.classes, bl.classes)) if a != b)
            diff = f"class {i} is '{lt.classes[i]}' vs '{bl.classes[i]}'"
        raise GLTError(f"{glt_file} and {cbl_file} disagree on the classes (key 'id2cat'): {diff}")
    if len(lt.classes) < 2:
        raise GLTError(f"{glt_file}: 'id2cat' has one class ('{lt.classes[0]}'); a GLT benchmark needs at least 2")
    if lt.attribute_names != bl.attribute_names:
        raise GLTError(f"{glt_file} and {cbl_file} disagree on 'attribute_names'")
    if len(bl.splits["test_lt"]):
        raise GLTError(
            f"{cbl_file}: split 'test_lt' must be empty in the class-balanced (inter_bl) file; "
            "are --glt-file and --cbl-file swapped?"
        )
    for track, f in files.items():
        if not len(f.splits["train"]):
            raise GLTError(f"{f.path}: split 'train' is empty")

    tables: dict[str, SplitTable] = {}
    all_used = [False] * len(pairs)
    for track, f in files.items():
        for key, table in f.splits.items():
            if not len(table):  # cbl's test_lt (and any other empty split) is not written
                continue
            table.path, used = apply_path_map(table.path.tolist(), pairs)
            all_used = [a or b for a, b in zip(all_used, used)]
            tables[f"{track}/{SPLIT_KEYS[key]}"] = table

    num_attributes = _attribute_count(files)
    width = len(lt.attribute_names)
    manifest = Manifest(
        name=name or _default_name(glt_file, lt.layout),
        classes=list(lt.classes),
        attribute_kind="multilabel" if lt.layout == MSCOCO else "index",
        kind=IMPORT_LAYOUT_KINDS[lt.layout],
        num_attributes=num_attributes,
        attribute_names=list(lt.attribute_names),
        attribute_vector_length=width,
        image_style="imagenet",
        image_size=112,
        info={
            "builder": "import",
            "layout": lt.layout,
            "source": {t: {"file": str(f.path.resolve()), "sha256": _sha256(f.path)} for t, f in files.items()},
            "path_map": [list(p) for p in pairs],
            "attribute_vectors": bool(width),
        },
    )
    with build_output(out, overwrite) as tmp:
        write_benchmark(tmp, manifest, tables, unique_ids=True)
    # checked against the final folder: relative paths are relative to the benchmark root
    missing, images, images_missing, example = _check_missing(tables, out)
    return ImportReport(
        out=out,
        layout=lt.layout,
        rows={k: len(t) for k, t in tables.items()},
        missing=missing,
        images=images,
        images_missing=images_missing,
        example_missing=example,
        unused_path_maps=[f"{o}={n}" for (o, n), u in zip(pairs, all_used) if not u],
    )


def _attribute_count(files: dict[str, OriginalFile]) -> int:
    """The number of attribute values, K: the values used must be 0..K-1, each by some sample (a gap means
    the values are not indices: 0, 1, 7 would make a benchmark of 8 attributes, 5 of them empty)."""
    used = np.unique(np.concatenate([t.attribute for f in files.values() for t in f.splits.values()]))
    k = int(used.max()) + 1 if len(used) else 1
    if len(used) != k:
        gap = next(a for a in range(k) if a not in set(used.tolist()))
        f, key, t = next((f, key, t) for f in files.values() for key, t in f.splits.items()
                         if len(t) and int(t.attribute.max()) == k - 1)
        i = int(np.argmax(t.attribute))
        raise GLTError(
            f"{f.path}: split '{key}': attribute of '{t.id[i]}' is {k - 1}, but no sample in either file has "
            f"attribute {gap}: attributes must be numbered 0..K-1 (K values), none skipped"
        )
    return k


def import_original(
    glt_file: str | os.PathLike,
    cbl_file: str | os.PathLike,
    out: str | os.PathLike,
    *,
    path_map: Iterable[str | tuple[str, str]] = (),
    name: str | None = None,
    overwrite: bool = False,
) -> tuple[Path, dict[str, int]]:
    """Turn the two original annotation files (track glt = ``..._inter_lt``, track cbl = ``..._inter_bl``)
    into a benchmark directory at `out`. Returns the directory and, per split, how many rows name an
    image file that does not exist (fix with `path_map` prefix rewrites: OLD=NEW, first match wins)."""
    r = run_import(glt_file, cbl_file, out, path_map=path_map, name=name, overwrite=overwrite)
    return r.out, r.missing


# ---- export -----------------------------------------------------------------------------------------
def _unique_keys(where: str, keys: list[str], what: str) -> None:
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise GLTError(f"{where}: {what} '{dup}' appears twice; the original layout keys samples by {what}")


def _attribute_counts(t: SplitTable, num_classes: int) -> np.ndarray:
    """Per class, how many samples have each attribute (the original `get_att_count`)."""
    counts = np.zeros((num_classes, t.attributes.shape[1]), np.float64)
    np.add.at(counts, t.label, t.attributes)
    return counts


def _attribute_scores(t: SplitTable, train_counts: np.ndarray) -> np.ndarray:
    """The original `attribute_score`: dot(normalised train histogram of the class, normalised vector)."""
    base = train_counts / (train_counts.sum(1, keepdims=True) + 1e-9)
    v = t.attributes.astype(np.float64)
    v /= v.sum(1, keepdims=True) + 1e-9
    return np.einsum("ij,ij->i", base[t.label], v)


def _export_track(b: Benchmark, track: str, absolute_paths: bool) -> dict[str, Any]:
    m = b.manifest
    coco = m.attribute_kind == "multilabel"
    tables = {key: b.split(f"{track}/{ours}") for key, ours in SPLIT_KEYS.items() if ours in m.tracks[track]}
    vectors = coco and all(t.attributes is not None for t in tables.values())
    train_counts = _attribute_counts(tables["train"], m.num_classes) if vectors and "train" in tables else None

    def path_of(p: str) -> str:
        return str(b.root.resolve() / p) if absolute_paths and not os.path.isabs(p) else p

    doc: dict[str, Any] = {}
    if coco:  # as the MSCOCO-GLT release: integer ids in cat2id and labels
        doc["cat2id"] = {c: i for i, c in enumerate(m.classes)}
        doc["id2cat"] = {str(i): c for i, c in enumerate(m.classes)}
        doc["key2path"] = {}
        if vectors:
            doc["attribute_names"] = list(m.attribute_names) or [str(i) for i in range(m.attribute_vector_length)]
    else:  # as the ImageNet-GLT release: class ids and labels are strings
        doc["cat2id"] = {c: str(i) for i, c in enumerate(m.classes)}
        doc["id2cat"] = {str(i): c for i, c in enumerate(m.classes)}
    for key in SPLIT_KEYS:
        t = tables.get(key)
        where = f"{b.root}: split {track}/{SPLIT_KEYS[key]}"
        if t is None:
            s = {"label": {}, "frequency": {}, "attribute": {}}
            if coco:
                s["path"] = {}
            doc[key] = s
            continue
        labels, freqs, attrs = t.label.tolist(), t.frequency.tolist(), t.attribute.tolist()
        paths = [path_of(p) for p in t.path.tolist()]
        if coco:
            keys = t.id.tolist()
            _unique_keys(where, keys, "id")
            s = {
                "label": dict(zip(keys, labels)),
                "frequency": dict(zip(keys, freqs)),
                "attribute": dict(zip(keys, attrs)),
                "path": dict(zip(keys, paths)),
            }
            if vectors:
                if train_counts is not None:
                    s["attribute_score"] = dict(zip(keys, _attribute_scores(t, train_counts).tolist()))
                counts = _attribute_counts(t, m.num_classes)
                s["attribute_dist"] = {str(c): counts[c].tolist() for c in range(m.num_classes)}
                s["attribute_present"] = {k: np.flatnonzero(v).tolist() for k, v in zip(keys, t.attributes)}
        else:
            _unique_keys(where, paths, "path")
            s = {
                "label": dict(zip(paths, map(str, labels))),
                "frequency": dict(zip(paths, freqs)),
                "attribute": dict(zip(paths, attrs)),
            }
        doc[key] = s
    return doc


def export_original(
    benchmark_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str | None = None,
    *,
    overwrite: bool = False,
    absolute_paths: bool = False,
) -> tuple[Path, Path]:
    """Write ``<name>_inter_lt.json`` (track glt) and ``<name>_inter_bl.json`` (track cbl) in the original
    layout: ImageNet-GLT's for benchmarks with one attribute index per sample (keyed by image path as
    stored in the table), MSCOCO-GLT's for multilabel ones (keyed by id, with a `path` map).
    `absolute_paths` resolves relative paths against the benchmark folder."""
    b = Benchmark(benchmark_dir)
    for track in TRACK_SUFFIX:
        if track not in b.manifest.tracks:
            raise GLTError(f"benchmark {b.root} has no track '{track}'; the original layout needs both glt and cbl")
    name = name or b.name
    if not name or "/" in name or os.sep in name:
        raise GLTError(f"export name must be a plain file-name prefix, got '{name}'")
    out_dir = Path(out_dir)
    files = {t: out_dir / f"{name}_{suffix}.json" for t, suffix in TRACK_SUFFIX.items()}
    if not overwrite:
        for f in files.values():
            if f.exists():
                raise GLTError(f"{f} already exists (use --overwrite)")
    docs = {t: _export_track(b, t, absolute_paths) for t in files}  # validate both before writing either
    for t, f in files.items():
        with atomic_path(f) as tmp:
            tmp.write_text(json.dumps(docs[t]))  # dumps: the C encoder; dump(fh) streams in pure Python
            os.chmod(tmp, file_mode())  # the umask's mode, not the temporary file's 0600
    return files["glt"], files["cbl"]
