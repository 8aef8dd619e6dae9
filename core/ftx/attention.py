"""``ftx_sdpa``: SDPA with two CPU fixes, packed rows example by example and short rows in fp32.

1. **Padding-free rows.** transformers runs a packed ``[1, total]`` row (several examples,
   ``position_ids`` restarting at 0, no attention mask) through SDPA with a block-diagonal mask
   over all ``total**2`` query/key pairs: a masked SDPA cannot use the fused causal kernel, and
   most of the pairs are masked out. flash-attention's variable-length kernel avoids both, but
   exists only on CUDA. ``ftx_sdpa`` is its analogue for every device: one causal SDPA call per
   example, the examples found where ``position_ids`` restart at 0, no mask built at all.
2. **Short bf16 sequences on the CPU run in fp32.** torch's CPU flash-attention kernel is slow in
   bf16 on short sequences: forward and backward of 64-token rows take 1.6-2.3x as long as the
   same kernel on fp32 copies, casts included (``bench/attention_kernels.py``); from about 256
   tokens the bf16 kernel is as fast or faster. So on the CPU, a bf16 call whose query and key
   lengths are at most :data:`FP32_MAX_LENGTH` runs on fp32 copies of ``q``, ``k``, ``v`` and its
   output is cast back to bf16 (more precise, never less). Under CPU autocast this is decided by the
   dtype SDPA computes in (autocast's), not the query's: Llama's query is fp32 after the rotary
   embedding and autocast casts it down.

Contract:

* a row that is packed (batch 1, no attention mask, ``position_ids`` restarting inside it) is
  attended example by example, causally, never across examples: the outputs equal those of the
  block-diagonal mask (``tests/test_attention.py``);
* everything else (padded batches, generation with a cache, single examples) is passed, with the
  same mask transformers would build for ``sdpa``, to transformers' own SDPA implementation;
* the output has the dtype plain SDPA would return; only the dtype it computes in changes
  (rule 2).

:func:`register` makes the name known to transformers (idempotent); the runner switches a model
to it for training where ``model.attn_implementation`` is ``auto`` and resolves to SDPA (packed
rows on any device, and every CPU run; :func:`suits_run`); ``sdpa`` set explicitly keeps
transformers' own. The name is not saved
with the model (transformers does not serialise the attention implementation), so exported
models load with the default.
"""

from __future__ import annotations

import itertools
from typing import Any

NAME = "ftx_sdpa"
FP32_MAX_LENGTH = 192
"""Longest query/key length that rule 2 runs in fp32 (measured crossover: 192 tokens 0.82-0.94x
the bf16 kernel's time, 256 tokens 1.0x, 512 tokens 1.1-1.2x)."""


def packed_example_starts(query: Any, attention_mask: Any, position_ids: Any) -> list[int] | None:
    """For one row of several examples (batch 1, no mask, ``position_ids`` restarting at 0
    inside it): the offsets where its examples start, plus the row's length. None otherwise."""
    if (
        attention_mask is not None
        or position_ids is None
        or query.shape[0] != 1
        or position_ids.shape[-1] != query.shape[2]
    ):
        return None
    positions = position_ids[0]
    starts = (positions == 0).nonzero().flatten().tolist()
    return [*starts, int(positions.numel())] if len(starts) > 1 else None


def computes_in(query: Any) -> Any:
    """The dtype torch's SDPA computes in for this query: CPU autocast's dtype while it is on
    (SDPA is on its lower-precision list: Llama's query is fp32 after the rotary embedding, and
    autocast casts it down), the query's own dtype otherwise."""
    import torch

    on_cpu = query.device.type == "cpu"
    if on_cpu and torch.is_autocast_enabled("cpu") and query.dtype == torch.float32:
        return torch.get_autocast_dtype("cpu")
    return query.dtype


def fp32_is_faster(query: Any, key: Any) -> bool:
    """Rule 2: a CPU SDPA call in bf16 with query and key lengths <= :func:`fp32_max_length`."""
    import torch

    return (
        query.device.type == "cpu"
        and computes_in(query) == torch.bfloat16
        and max(query.shape[2], key.shape[2]) <= fp32_max_length()
    )


def fp32_max_length() -> int:
    """Rule 2's longest length on this CPU: what :mod:`ftx.calibration` measured for the run
    (0: the bf16 kernel is as fast), :data:`FP32_MAX_LENGTH` where nothing was calibrated."""
    from ftx import calibration

    applied = calibration.APPLIED
    return FP32_MAX_LENGTH if applied is None else applied.attention_fp32_max_length


def sdpa_forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention function with transformers' signature (``query``: ``[batch, heads, seq, dim]``;
    returns ``[batch, seq, heads, dim]`` in the dtype SDPA would have computed in, and no
    weights)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    starts = packed_example_starts(query, attention_mask, kwargs.get("position_ids"))
    if starts is None:

        def transformers_sdpa(q: Any, k: Any, v: Any, mask: Any) -> Any:
            out, _ = sdpa_attention_forward(
                module, q, k, v, mask, scaling=scaling, dropout=dropout, **kwargs
            )
            return out

        return in_fastest_dtype(transformers_sdpa, query, key, value, attention_mask), None
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    p = dropout if module.training else 0.0

    def causal(q: Any, k: Any, v: Any, _mask: None) -> Any:
        return torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=p, scale=scaling
        )

    pieces = [
        in_fastest_dtype(causal, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None)
        for a, b in itertools.pairwise(starts)
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def in_fastest_dtype(attend: Any, query: Any, key: Any, value: Any, mask: Any) -> Any:
    """``attend(query, key, value, mask)``, or, where rule 2 says so, the same on fp32 copies
    (a floating mask too) outside autocast, the output cast to bf16 (what the bf16 kernel would
    have returned)."""
    import torch

    if not fp32_is_faster(query, key):
        return attend(query, key, value, mask)
    if mask is not None and mask.is_floating_point():
        mask = mask.float()
    with torch.autocast("cpu", enabled=False):
        out = attend(query.float(), key.float(), value.float(), mask)
    return out.to(torch.bfloat16)


def varlen_sdpa_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    attention_mask: Any = None,
    **kwargs: Any,
) -> Any:
    """No mask for one uncached row without padding (causal SDPA, or example by example when
    packed); otherwise exactly the mask transformers builds for ``sdpa``."""
    from transformers.masking_utils import sdpa_mask

    whole_row = q_length == kv_length and not q_offset and not kv_offset
    if batch_size == 1 and attention_mask is None and whole_row:
        return None
    return sdpa_mask(
        batch_size,
        q_length,
        kv_length,
        q_offset,
        kv_offset,
        attention_mask=attention_mask,
        **kwargs,
    )


def applies_to(config: Any) -> bool:
    """Whether a model can use it: full causal attention everywhere (no sliding windows)."""
    configs = [config, getattr(config, "text_config", None)]
    return not any(
        getattr(c, "sliding_window", None) or "sliding" in str(getattr(c, "layer_types", "") or "")
        for c in configs
        if c is not None
    )


def register() -> str:
    """Register ``ftx_sdpa`` with transformers (attention and mask); return the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(NAME, sdpa_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, varlen_sdpa_mask)
    return NAME


def suits_run(requested: str, resolved: str, *, packing: bool, device: str) -> bool:
    """Whether a run trains on ``ftx_sdpa``: ``model.attn_implementation`` left on ``auto`` (an
    explicit ``sdpa`` gets transformers' own), resolved to SDPA, and the rows packed or the
    device a CPU."""
    return requested == "auto" and resolved == "sdpa" and (packing or device == "cpu")


def use_ftx_sdpa(model: Any) -> str:
    """Switch ``model`` (on SDPA) to ``ftx_sdpa`` where it applies; return the attention it
    trains with, for the run summary."""
    if not applies_to(model.config):
        return "sdpa (the model has sliding-window attention)"
    model.set_attn_implementation(register())
    return NAME
