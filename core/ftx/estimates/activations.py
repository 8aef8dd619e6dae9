"""What one training step keeps alive for backward: saved tensors per block and the loss head.

Activation coefficients are bytes per token per decoder block as ``a*hidden + b*kv_dim +
c*intermediate``; they were measured by counting the tensors autograd saves (deduplicated by
storage) for Llama blocks with SDPA attention, for each precision mode, and fitted exactly
(:data:`ACTIVATION_COEFFICIENTS`). The loss head: on CUDA/XPU TRL's chunked Triton log-prob kernel,
which never materialises ``tokens x vocab`` logits but works on tiles of ``min(tokens, 4096) x
min(vocab, 32768)`` (about 2 bytes per entry plus a bf16 weight chunk); elsewhere ftx's lean loss
(``ftx.trainer``), fp32 logits of the trained tokens only (12 bytes per entry in backward),
counted here for every token of the step (the plan does not know which are trained).
"""

from __future__ import annotations

from typing import Any

from ftx.estimates.precision import Precision
from ftx.estimates.shape import ModelShape

Coefficients = tuple[float, float, float]
"""Bytes per token per decoder block on ``(hidden, kv_dim, intermediate)``."""

NO_EXTRA: Coefficients = (0.0, 0.0, 0.0)

ACTIVATION_COEFFICIENTS: dict[str, Coefficients] = {
    # mode: bytes per token per decoder block = a*hidden + b*kv_dim + c*intermediate
    "mixed": (30.0, 4.0, 8.0),  # fp32 weights under bf16 autocast (the CPU default)
    "half": (20.0, 4.0, 8.0),  # bf16/fp16 weights (the GPU default)
    "fp32": (32.0, 8.0, 16.0),  # fp32 weights and compute (no bf16 support)
}
"""Measured with ``torch.autograd.graph.saved_tensors_hooks`` on Llama blocks (SDPA), fitted
exactly over four shapes (hidden 576-2048, intermediate 1024-2816, MHA and GQA)."""

HEAD_TOKEN_CHUNK = 4096
HEAD_VOCAB_CHUNK = 32768
HEAD_TILE_BYTES = 2.0
"""Bytes alive per (token, vocab) entry of one tile of TRL's Triton loss head (the devices in
``ftx.trainer.TRITON_DEVICES``) at the backward's peak: its bf16 tile (from its design, not
measured here)."""

LEAN_HEAD_BYTES = 12.0
"""Bytes alive per (trained token, vocab) entry of ftx's lean loss head (``ftx.trainer``, every
device without Triton) at the backward's peak: the fp32 log-softmax output it saves, the
gradient of that output and the gradient of the logits. Measured (peak RSS, 1k-4k tokens)."""


def block_activation_bytes(
    shape: ModelShape,
    precision: Precision,
    *,
    extra: Coefficients = NO_EXTRA,
) -> float:
    """Bytes autograd saves per token for one decoder block (no checkpointing).

    ``extra`` adds method-specific coefficients on ``(hidden, kv_dim, intermediate)`` (LoRA
    inputs, quantised linears). A mixture-of-experts block counts its active experts only.
    """
    a, b, c = ACTIVATION_COEFFICIENTS[precision.mode]
    ea, eb, ec = extra
    mlp = shape.intermediate * max(1, shape.experts_per_token if shape.experts > 1 else 1)
    return (a + ea) * shape.hidden + (b + eb) * shape.kv_dim + (c + ec) * mlp


def head_bytes(
    shape: ModelShape,
    tokens: int,
    precision: Precision,
    device_kind: str,
    *,
    head_trainable: bool,
) -> int:
    """Transient memory of the loss head at its backward peak, plus the fp32 gradient of the
    final hidden states and, when the head trains and its weights are not fp32, an fp32
    accumulator for its gradient. On CUDA/XPU (TRL's Triton kernel): one ``min(tokens, 4096) x
    min(vocab, 32768)`` tile and a weight chunk in the compute dtype. Elsewhere (ftx's lean
    loss): fp32 logits of every token (an upper bound: only trained tokens are projected) with
    their log-softmax and gradients, and the gathered hidden states."""
    from ftx.trainer import TRITON_DEVICES

    if device_kind in TRITON_DEVICES:
        tile = min(tokens, HEAD_TOKEN_CHUNK) * min(shape.vocab, HEAD_VOCAB_CHUNK)
        per_entry = HEAD_TILE_BYTES + (2 if precision.mode == "fp32" else 0)
        chunk = min(shape.vocab, HEAD_VOCAB_CHUNK) * shape.hidden * precision.compute_bytes
        out = int(tile * per_entry) + chunk
    else:
        per_entry = LEAN_HEAD_BYTES + (2 if precision.weight_bytes != 4 else 0)
        out = int(tokens * shape.vocab * per_entry) + tokens * shape.hidden * precision.weight_bytes
    out += tokens * shape.hidden * 4
    if head_trainable and precision.weight_bytes != 4:
        out += shape.vocab * shape.hidden * 4
    return out


def activation_bytes(
    shape: ModelShape,
    *,
    batch_size: int,
    seq_len: int,
    precision: Precision,
    device_kind: str,
    layers_with_grad: int,
    checkpointing: bool,
    head_trainable: bool,
    extra: Coefficients = NO_EXTRA,
) -> int:
    """Activation memory of one training step: what autograd saves in the ``layers_with_grad``
    decoder blocks gradients flow through (blocks before the first trainable one save nothing),
    the embeddings/final-norm outputs, the attention mask of padded batches and the loss head.

    With ``checkpointing`` each of those blocks keeps only its input hidden state and one block
    at a time is recomputed in full during backward.
    """
    tokens = batch_size * seq_len
    block = block_activation_bytes(shape, precision, extra=extra)
    if checkpointing:
        blocks = layers_with_grad * shape.hidden * precision.residual_bytes * tokens
        blocks += int(block * tokens) if layers_with_grad else 0
    else:
        blocks = int(layers_with_grad * block * tokens)
    edges = tokens * shape.hidden * (precision.residual_bytes + 8)
    mask = batch_size * seq_len * seq_len
    head = head_bytes(shape, tokens, precision, device_kind, head_trainable=head_trainable)
    return blocks + edges + mask + head


def activation_pair(shape: ModelShape, **step: Any) -> tuple[int, int]:
    """:func:`activation_bytes` of ``shape`` with ``step``'s keywords (all of them but
    ``checkpointing``), without and with checkpointing, in that order: the two numbers a
    :class:`~ftx.estimates.memory.MemoryEstimate` holds (``activations``,
    ``activations_checkpointed``)."""
    return (
        activation_bytes(shape, checkpointing=False, **step),
        activation_bytes(shape, checkpointing=True, **step),
    )
