"""A leaner forward for PEFT's plain LoRA layers: the low-rank update added in one ``addmm``.

PEFT's LoRA layer computes ``base(x)``, clones it (a defensive copy for 4-bit bases), computes
``lora_B(lora_A(dropout(x)))``, multiplies that by ``scaling`` and adds it to the clone: a copy,
a multiplication and an addition over the full ``[tokens, out_features]`` output, each again in
the backward pass, in every adapted layer. On the CPU these elementwise passes are memory-bound
and showed up as the largest non-matmul costs of a QLoRA step (``bench/floor.py``: ``mul``
0.13 s, ``add`` 0.06 s, ``copy_`` 0.04 s of a 2.7 s step on SmolLM2).

:func:`use_lean_forward` gives each plain LoRA layer a forward that computes the same sum as

    ``addmm(base(x), lora_A(x) * scaling, lora_B.weight.T)``

— the scaling applied to the ``r``-wide intermediate instead of the output, the addition done by
the matmul itself (BLAS's ``beta = 1``), no clone (``addmm`` writes a new tensor; the base's
output is never modified). Mathematically the same function and gradients; in floating point
the sums are ordered differently (``tests/test_lora_forward.py`` compares outputs and gradients).

A layer falls back to PEFT's own forward whenever anything beyond that plain case is in play:
adapters disabled (``disable_adapter()``, used for the base model's answers) or merged, several
or per-row adapters, DoRA or another variant, dropout, a bias on ``lora_B``, extra arguments, or
dtypes that would make the sum's dtype differ from PEFT's.
"""

from __future__ import annotations

import functools
from typing import Any


def use_lean_forward(model: Any) -> int:
    """Give every plain LoRA layer (``lora_A``/``lora_B`` ``Linear`` modules) of ``model`` the
    lean forward; return how many layers got it. Imports torch and PEFT."""
    import torch
    from peft.tuners.lora import LoraLayer

    count = 0
    for module in model.modules():
        if not isinstance(module, LoraLayer) or "forward" in vars(module):
            continue
        adapters = list(getattr(module, "lora_A", {}).values())
        if not adapters or not all(isinstance(a, torch.nn.Linear) for a in adapters):
            continue
        module.forward = functools.partial(_lean_forward, module, module.forward)
        count += 1
    return count


def _lean_forward(layer: Any, peft_forward: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    name = _plain_adapter(layer, args, kwargs)
    if name is None:
        return peft_forward(x, *args, **kwargs)
    import torch

    result = layer.base_layer(x)
    lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
    if torch.is_autocast_enabled(x.device.type):
        same_dtype = result.dtype == torch.get_autocast_dtype(x.device.type)
    else:
        same_dtype = x.dtype == lora_a.weight.dtype
    if not same_dtype:
        return peft_forward(x, *args, **kwargs)
    low = lora_a(x) * layer.scaling[name]
    width = result.shape[-1]
    summed = torch.addmm(
        result.reshape(-1, width), low.reshape(-1, low.shape[-1]), lora_b.weight.t()
    )
    return summed.view(result.shape)


def _plain_adapter(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The one active adapter when the layer's forward is the plain case; None otherwise."""
    import torch

    if args or kwargs or layer.disable_adapters or layer.merged:
        return None
    active = [name for name in layer.active_adapters if name in layer.lora_A]
    if len(active) != 1:
        return None
    name = active[0]
    if name in getattr(layer, "lora_variant", {}) or getattr(layer, "use_dora", {}).get(name):
        return None
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None
    if getattr(layer.lora_B[name], "bias", None) is not None:
        return None
    return name
