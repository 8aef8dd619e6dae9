"""Low-rank adapters (LoRA) on a model's block linears: their parameters and saved inputs."""

from __future__ import annotations

from collections.abc import Iterable

from ftx.estimates.activations import Coefficients
from ftx.estimates.precision import Precision
from ftx.estimates.shape import ModelShape

LORA_DROPOUT_MASK_BYTES = 1.0
"""Extra saved bytes per input feature per token for each LoRA-wrapped linear with dropout on:
the dropout mask (its dropped copy of the input replaces the input as what ``lora_A`` saves).
Measured."""


def lora_params(shape: ModelShape, r: int, targets: Iterable[str] | None = None) -> int:
    """LoRA parameters over all decoder blocks: ``r * (in + out)`` per targeted linear
    (``targets``: Llama-style short names; ``None``: every linear in the blocks)."""
    wanted = None if targets is None else set(targets)
    per_block = sum(
        r * (a + b) * n
        for name, a, b, n in shape.block_linears()
        if wanted is None or name in wanted
    )
    return shape.layers * per_block


def lora_activation_extra(
    shape: ModelShape,
    targets: Iterable[str] | None = None,
    precision: Precision | None = None,
    *,
    dropout: bool = False,
) -> Coefficients:
    """Per-token-per-block activation coefficients LoRA adds on ``(hidden, kv, intermediate)``
    for every targeted linear (``None``: all): per input feature, what ``lora_A`` saves beyond
    the base layer's own input: the compute-dtype copy of its input when autocast casts it
    (``mixed`` precision, the default when ``precision`` is None) or dropout replaces it, plus
    the dropout mask (:data:`LORA_DROPOUT_MASK_BYTES`) when ``dropout`` is on."""
    wanted = None if targets is None else set(targets)
    precision = precision or Precision(weights="float32", autocast=True)
    copies = dropout or precision.mode == "mixed"
    per_input = (LORA_DROPOUT_MASK_BYTES if dropout else 0.0) + (
        precision.compute_bytes if copies else 0.0
    )
    h = i = 0.0
    for name, fan_in, _, n in shape.block_linears():
        if name == "router" or (wanted is not None and name not in wanted):
            continue
        count = n if n == 1 else max(1, shape.experts_per_token)
        if name == "down_proj":
            i += per_input * count * fan_in / shape.intermediate
        else:
            h += per_input * count * fan_in / shape.hidden
    return (h, 0.0, i)


def merge_bytes(shape: ModelShape, adapter_params: int, *, streamed: bool = True) -> int:
    """Memory the export's merge adds (:mod:`ftx.merging`). Streamed (plain LoRA): the fp32
    delta ``B @ A`` and the merged copy of the largest block weight, plus the fp32 adapter;
    the base is read through a file mapping and each merged tensor written out before the
    next. Not streamed (DoRA, ``modules_to_save``, other PEFT types): the whole base in fp32."""
    if not streamed:
        return 4 * shape.total_params()
    largest = max(a * b for _, a, b, _ in shape.block_linears())
    return 2 * 4 * largest + 4 * adapter_params
