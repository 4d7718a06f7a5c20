"""LoRA adapters on a backbone through the `peft` library (Hu et al. 2022): each adapted layer W gets
W + (alpha / r) * B A with A (r x in) and B (out x r), B starting at zero, so the adapted model starts as
the base model. Only the adapters train (peft marks every other parameter frozen)."""

from __future__ import annotations

from torch import nn

from glt.errors import GLTError


def default_targets(module: nn.Module) -> list[str]:
    """The layers LoRA adapts by default: every attention block (nn.MultiheadAttention: peft adapts its input
    and output projections) and every nn.Linear outside one (a ViT's MLP: open_clip's c_fc / c_proj, timm's
    fc1 / fc2 and qkv / proj); in a backbone with none of these (a CNN), every nn.Conv2d."""
    attn = [n for n, m in module.named_modules() if isinstance(m, nn.MultiheadAttention)]
    linear = [n for n, m in module.named_modules()
              if isinstance(m, nn.Linear) and not any(n.startswith(a + ".") for a in attn)]
    return attn + linear or [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]


def add_lora(module: nn.Module, r: int, alpha: float, dropout: float = 0.0,
             targets: list[str] | None = None) -> list[str]:
    """Inject LoRA adapters into `module` in place (peft.inject_adapter_in_model); returns the adapted layer
    names. `targets`: module names (default_targets when None)."""
    try:
        import peft
    except ImportError:
        raise GLTError("LoRA needs peft: pip install peft") from None
    names = targets if targets is not None else default_targets(module)
    if not names:
        raise GLTError(f"LoRA: {type(module).__name__} has no attention, Linear or Conv2d layer to adapt")
    if r < 1:
        raise GLTError(f"method_args.lora_r must be at least 1, not {r}")
    # exact names, so a prefix of another layer's name is not adapted by accident
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=names)
    try:
        peft.inject_adapter_in_model(config, module)
    except ValueError as e:  # a target peft cannot adapt, or one that is not in the module
        raise GLTError(f"LoRA: {str(e).splitlines()[0]}") from None
    return names
