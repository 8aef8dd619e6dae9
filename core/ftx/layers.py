"""Finding a model's decoder blocks and naming its parameters, for any architecture.

Methods that select parts of a model (SFT's layer freezing, LoRA target lists, memory
estimates) use these instead of Llama-only attribute names such as ``model.model.layers``.
"""

from __future__ import annotations

from typing import Any


def decoder_blocks(model: Any) -> tuple[str, list[Any]]:
    """Return ``(prefix, blocks)``: the longest ``nn.ModuleList`` of same-class modules.

    ``prefix`` is its qualified name (e.g. ``model.layers`` for Llama, ``transformer.h`` for
    GPT-2), so parameter ``f"{prefix}.{i}.…"`` belongs to block ``i``.
    """
    import torch

    best: tuple[str, list[Any]] = ("", [])
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) <= len(best[1]):
            continue
        kinds = {type(m) for m in module}
        if len(kinds) == 1:
            best = (name, list(module))
    if not best[1]:
        raise ValueError(f"cannot find the decoder blocks of {type(model).__name__}")
    return best


def block_index(param_name: str, prefix: str) -> int | None:
    """The block number of a parameter under ``prefix``, or None if it is outside the blocks."""
    # PEFT wraps names as base_model.model.<name>; match the prefix anywhere.
    marker = f"{prefix}."
    at = param_name.find(marker)
    if at < 0:
        return None
    head = param_name[at + len(marker) :].split(".", 1)[0]
    return int(head) if head.isdigit() else None


LINEAR_KINDS = ("Linear", "Conv1D")
"""Class names of the plain linear layers adapters attach to: ``nn.Linear`` and GPT-2's
``Conv1D`` (a transposed linear; bitsandbytes quantises both to ``Linear4bit``/``Linear8bitLt``,
PEFT adapts both)."""


def linear_module_names(model: Any) -> list[str]:
    """Short names of the Linear(-like) layers inside the decoder blocks (LoRA targets)."""
    prefix, _ = decoder_blocks(model)
    names = set()
    for name, module in model.named_modules():
        if block_index(name, prefix) is None:
            continue
        kind = type(module).__name__
        if kind in LINEAR_KINDS or kind.startswith(("Linear4bit", "Linear8bit")):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def outer_norm_parameters(model: Any) -> dict[str, Any]:
    """Parameters of the normalisation layers outside the decoder blocks (the final norm:
    ``model.norm`` in Llama, ``transformer.ln_f`` in GPT-2, ``final_layer_norm`` in OPT and
    GPT-NeoX), by qualified name. A norm is a module whose class name contains ``norm`` (any
    case): LayerNorm, LlamaRMSNorm, GemmaRMSNorm, ..."""
    prefix, _ = decoder_blocks(model)
    out: dict[str, Any] = {}
    for name, module in model.named_modules():
        if "norm" not in type(module).__name__.lower() or block_index(name, prefix) is not None:
            continue
        for pname, param in module.named_parameters(recurse=False):
            out[f"{name}.{pname}" if name else pname] = param
    return out
