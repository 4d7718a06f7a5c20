"""Mixed precision, memory format and compilation of a run: all on CUDA only by default, so a CPU run
computes exactly what it always did."""

from __future__ import annotations

import contextlib

import torch

from glt.errors import GLTError

AMP_MODES = ("auto", "none", "bf16", "fp16")


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `amp` on `device` (None: full precision)."""
    if amp not in AMP_MODES:
        raise GLTError(f"amp must be one of {', '.join(AMP_MODES)}, not '{amp}'")
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    if amp == "none":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise GLTError("amp=fp16 needs a CUDA device (use amp=bf16 or amp=none on the CPU)")
    return torch.bfloat16 if amp == "bf16" else torch.float16


class Precision:
    """Autocast context + gradient scaling (fp16 only) for the training step and evaluation."""

    def __init__(self, amp: str, device: torch.device):
        self.device = device
        self.dtype = amp_dtype(amp, device)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    @property
    def grad_scale(self) -> float:
        """The factor the last backward pass multiplied gradients by (for state updated outside the
        optimizer, such as IFL's centers)."""
        return float(self.scaler.get_scale()) if self.scaler is not None else 1.0

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def use_channels_last(option: bool | None, device: torch.device) -> bool:
    return device.type == "cuda" if option is None else bool(option)
