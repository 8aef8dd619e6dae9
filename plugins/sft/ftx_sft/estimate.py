"""``ftx plan`` for partial fine-tuning: only the chosen blocks (and extras) train.

Uses the same selectors as a run (:func:`ftx_sft.selection.parse_layers`) on the block count
from the config, and the shared math in :mod:`ftx.estimates`.
"""

from __future__ import annotations

import fnmatch

from ftx.errors import BadInput
from ftx.estimates import EstimateRequest, MemoryEstimate, ModelShape, estimator
from ftx_sft.selection import EXTRAS, parse_layers


def block_parameter_sizes(shape: ModelShape) -> dict[str, tuple[int, bool]]:
    """``{name inside a block: (numel, is_matrix)}`` with Llama's parameter names, for
    matching ``method.modules`` glob patterns the way a run does."""
    out: dict[str, tuple[int, bool]] = {}
    for name, fan_in, fan_out, count in shape.block_linears():
        part = "self_attn" if name in {"q_proj", "k_proj", "v_proj", "o_proj"} else "mlp"
        out[f"{part}.{name}.weight"] = (fan_in * fan_out * count, True)
    for norm in ("input_layernorm", "post_attention_layernorm"):
        out[f"{norm}.weight"] = (shape.hidden * shape.norm_params, False)
    return out


@estimator
def estimate(request: EstimateRequest) -> MemoryEstimate:
    """Frozen weights stay in their load dtype; the selected blocks get gradients and AdamW
    state; activations are saved from the first selected block on (frozen blocks before it
    record no graph) unless the embeddings train, in which case every block saves them."""
    shape, options = request.shape, request.options
    blocks = parse_layers(options.get("layers", "auto"), shape.layers)
    sizes = block_parameter_sizes(shape)
    patterns = options.get("modules") or None
    notes: list[str] = []
    if patterns:
        chosen = {
            n: v
            for n, v in sizes.items()
            if any(
                fnmatch.fnmatch(n, p) or fnmatch.fnmatch(n.split(".", 1)[-1], p) for p in patterns
            )
        }
        if not chosen:
            notes.append("method.modules matched no Llama-style name; counted whole blocks")
            chosen = sizes
    else:
        chosen = sizes
    per_block = sum(n for n, _ in chosen.values())
    per_block_linear = sum(n for n, matrix in chosen.values() if matrix)
    trainable = per_block * len(blocks)
    linear = per_block_linear * len(blocks)
    extras = list(options.get("extra") or [])
    for extra in extras:
        if extra not in EXTRAS:
            raise BadInput(f"method.extra: {extra!r} is not one of {', '.join(EXTRAS)}")
    embed = "embed_tokens" in extras or ("lm_head" in extras and shape.tied_embeddings)
    if embed:
        trainable += shape.embedding_params()
    if "lm_head" in extras:
        trainable += shape.head_params()
    if "norm" in extras:
        trainable += shape.norm_params * shape.hidden
    first = 0 if embed else min(blocks)
    half_frozen = request.device.is_gpu and request.precision.mode == "mixed"
    return request.dense(
        frozen_weight_bytes=2 if half_frozen else None,
        trainable_params=trainable,
        trainable_linear_params=linear,
        layers_with_grad=shape.layers - first,
        head_trainable="lm_head" in extras or (embed and shape.tied_embeddings),
        notes=[f"trains blocks {_ranges(blocks)} of {shape.layers}", *notes],
    )


def _ranges(indices: list[int]) -> str:
    """``[26, 27, 28, 29]`` → ``26-29``; ``[1, 3, 4]`` → ``1,3-4``."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)
