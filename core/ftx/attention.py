"""``ftx_varlen_sdpa``: SDPA that runs a padding-free row as variable-length sequences.

transformers runs a packed ``[1, total]`` row (several examples, ``position_ids`` restarting at
0, no attention mask) through SDPA with a block-diagonal mask over all ``total**2`` query/key
pairs: a masked SDPA cannot use the fused causal kernel, and most of the pairs are masked out.
flash-attention's variable-length kernel avoids both, but exists only on CUDA. This
implementation is its analogue for every device: one causal SDPA call per example, the examples
found where ``position_ids`` restart at 0, no mask built at all.

Contract:

* a row that is packed (batch 1, no attention mask, ``position_ids`` restarting inside it) is
  attended example by example, causally, never across examples: the outputs equal those of the
  block-diagonal mask (``tests/test_attention.py``);
* everything else (padded batches, generation with a cache, single examples) is passed, with the
  same mask transformers would build for ``sdpa``, to transformers' own SDPA implementation.

:func:`register` makes the name known to transformers (idempotent); the runner switches a model
to it for padding-free training on SDPA. The name is not saved with the model (transformers does
not serialise the attention implementation), so exported models load with the default.
"""

from __future__ import annotations

import itertools
from typing import Any

NAME = "ftx_varlen_sdpa"


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


def varlen_sdpa_forward(
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
    returns ``[batch, seq, heads, dim]`` and no weights)."""
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    starts = packed_example_starts(query, attention_mask, kwargs.get("position_ids"))
    if starts is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    p = dropout if module.training else 0.0
    pieces = [
        F.scaled_dot_product_attention(
            query[:, :, a:b],
            key[:, :, a:b],
            value[:, :, a:b],
            is_causal=True,
            dropout_p=p,
            scale=scaling,
        )
        for a, b in itertools.pairwise(starts)
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


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
    """Register ``ftx_varlen_sdpa`` with transformers (attention and mask); return the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(NAME, varlen_sdpa_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, varlen_sdpa_mask)
    return NAME


def use_for_packed_rows(model: Any) -> str:
    """Switch ``model`` (SDPA, training padding-free rows) to ``ftx_varlen_sdpa`` where it
    applies; return the attention that packed rows will get, for the run summary."""
    if not applies_to(model.config):
        return "sdpa (block-diagonal mask: the model has sliding-window attention)"
    model.set_attn_implementation(register())
    return NAME
