"""Checkpoints: written atomically, read with weights_only=True (never unpickle arbitrary objects).

A checkpoint records what wrote it (`meta`: method, number of classes, backbone), and `check_checkpoint`
refuses one that does not fit the run loading it (another method's, another class count, another
architecture) with a message naming the file, before any weight is copied."""

from __future__ import annotations

import contextlib
import operator
import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glt.errors import GLTError, first_line
from glt.io import atomic_path

# torch.load(weights_only=True) warns about the pickle protocol of a file it then fails to read: the error
# that follows says all (one line on stderr)
warnings.filterwarnings("ignore", message=r"Detected pickle protocol \d+ in the checkpoint")


class Checkpoint(dict):
    """A loaded checkpoint: a dict that knows its file, and names it when a key is missing (a file that
    is not a checkpoint of `glt train`, or not of the kind expected)."""

    path: Path | None = None

    def __missing__(self, key):
        raise GLTError(f"checkpoint {self.path} holds no '{key}': not a checkpoint written by glt train "
                       f"(it holds {', '.join(map(str, list(self)[:6])) or 'nothing'})")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as e:  # torch reports a failed write (a full disk) as a RuntimeError
            raise OSError(f"cannot write checkpoint {path}: {first_line(e)}") from None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # empty / truncated / corrupt / unsafe content: many exception types
        raise GLTError(f"cannot read checkpoint {path} (empty, corrupt or truncated?): {first_line(e)}") from None
    if not isinstance(state, dict):
        raise GLTError(f"checkpoint {path} holds a {type(state).__name__}, not the dict glt train writes")
    ckpt = Checkpoint(state)
    ckpt.path = path
    return ckpt


def checkpoint_meta(method: str, num_classes: int, backbone: str) -> dict[str, Any]:
    """What a checkpoint records about the run that wrote it."""
    return {"method": str(method), "num_classes": int(num_classes), "backbone": str(backbone)}


def check_checkpoint(state: dict, *, method: str, num_classes: int, backbone: str,
                     parts: dict[str, torch.nn.Module],
                     same_method: Callable[[str, str], bool] = operator.eq) -> None:
    """Refuse a checkpoint that does not fit the run loading it: written by another method, for another
    number of classes, or whose weights (`parts`: name -> module) have other names or shapes. `same_method`
    tells two method names apart (the caller's: this layer knows no method registry)."""
    path = getattr(state, "path", None) or "checkpoint"
    meta = state.get("meta")
    if isinstance(meta, dict):
        _check_meta(meta, path, method, num_classes, backbone, same_method)
    for name, module in parts.items():
        _check_part(state[name], module.state_dict(), path, name, method, num_classes, backbone)


def _check_meta(meta: dict, path, method: str, num_classes: int, backbone: str, same_method) -> None:
    """What the checkpoint says wrote it."""
    theirs = meta.get("method")
    if theirs is not None and not same_method(str(theirs), str(method)):
        raise GLTError(f"checkpoint {path} was written by method '{theirs}', but this run's method is '{method}'")
    n = meta.get("num_classes")
    if n is not None and int(n) != int(num_classes):
        raise GLTError(f"checkpoint {path} holds {n} classes, but the benchmark has {num_classes} classes")
    bb = meta.get("backbone")
    if bb is not None and str(bb) != str(backbone):
        raise GLTError(f"checkpoint {path} was written for backbone '{bb}', but this run's is '{backbone}'")


def _check_part(given, own: dict, path, name: str, method: str, num_classes: int, backbone: str) -> None:
    """One state dict of the checkpoint against the module's own: the same keys, the same shapes."""
    if not isinstance(given, dict):
        raise GLTError(f"checkpoint {path}: '{name}' is not a state dict")
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    if missing or unexpected:
        raise GLTError(
            f"checkpoint {path} does not fit this run's {name} (method {method}, backbone {backbone}): "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for k, v in own.items():
        g = given[k]
        if hasattr(g, "shape") and tuple(g.shape) != tuple(v.shape):
            classes = ""
            if tuple(g.shape[1:]) == tuple(v.shape[1:]) and v.shape and v.shape[0] == num_classes:
                classes = f": it holds {g.shape[0]} classes, but the benchmark has {num_classes} classes"
            raise GLTError(f"checkpoint {path} does not fit this run's {name}: '{k}' has shape "
                           f"{list(g.shape)}, expected {list(v.shape)}{classes}")


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_pos": random.getstate()[2]}
    state["numpy"] = torch.from_numpy(np.random.get_state()[1].astype(np.int64))
    state["numpy_pos"] = int(np.random.get_state()[2])
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def kept_rng():
    """Run a block without moving any global RNG (torch, CUDA, Python, NumPy): its draws (a DataLoader's
    seed) leave the training's random stream as it was."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
