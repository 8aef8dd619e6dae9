"""Memory planning without weights: what ``ftx plan`` computes.

Everything here works from a model's *config* (hidden size, layers, heads, vocabulary, …); no
weights are read and torch is not needed. Each method plugin answers the ``estimate_memory``
hook with a :class:`MemoryEstimate`, built from the shared helpers below, so a third-party
method shows up in the plan next to the built-in ones.

The model of peak training memory (bytes, per process)::

    weights       parameters in their load dtype (+ the bf16 working copy autocast keeps of
                  weights that receive gradients, when fp32 weights train under bf16 autocast)
    gradients     one per trainable parameter, in the parameter's dtype
    optimizer     AdamW: two moments per trainable parameter, in the parameter's dtype
    activations   tensors saved for backward, per token and per decoder block that gradients
                  flow through, plus the loss head's transient tiles (see below)
    quantization  4/8-bit constants (absmax, double-quant tables) and one dequantised weight;
                  on a CPU also bitsandbytes' per-block workspace and the fp32 checkpoint that
                  stays memory-mapped after quantising (both measured)
    export        (CPU plans) adapter methods reload the unquantised base to merge: the peak
                  is the larger of training and export, see :meth:`MemoryEstimate.peak`

Activation coefficients are bytes per token per decoder block as ``a*hidden + b*kv_dim +
c*intermediate``; they were measured by counting the tensors autograd saves (deduplicated by
storage) for Llama blocks with SDPA attention, for each precision mode, and fitted exactly
(:data:`ACTIVATION_COEFFICIENTS`). The loss head: on CUDA/XPU TRL's chunked Triton log-prob kernel,
which never materialises ``tokens x vocab`` logits but works on tiles of ``min(tokens, 4096) x
min(vocab, 32768)`` (about 2 bytes per entry plus a bf16 weight chunk); elsewhere ftx's lean loss
(``ftx.trainer``), fp32 logits of the trained tokens only (12 bytes per entry in backward),
counted here for every token of the step (the plan does not know which are trained).

Calibration (``tests/test_plan.py``, slow tier): the estimate is compared with the peak RSS above
the pre-load baseline that ``ftx run`` records in ``summary.json``, for every built-in method on
SmolLM2-135M and a 280M-parameter random Llama, and must agree within ±30%. Published sanity
points for Llama-2-7B (LLaMA-Factory's hardware table) are fast tests.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftx.context import DeviceInfo
from ftx.errors import BadInput

GiB = 1 << 30
MiB = 1 << 20

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

ACTIVATION_COEFFICIENTS: dict[str, tuple[float, float, float]] = {
    # mode: bytes per token per decoder block = a*hidden + b*kv_dim + c*intermediate
    "mixed": (30.0, 4.0, 8.0),  # fp32 weights under bf16 autocast (the CPU default)
    "half": (20.0, 4.0, 8.0),  # bf16/fp16 weights (the GPU default)
    "fp32": (32.0, 8.0, 16.0),  # fp32 weights and compute (no bf16 support)
}
"""Measured with ``torch.autograd.graph.saved_tensors_hooks`` on Llama blocks (SDPA), fitted
exactly over four shapes (hidden 576-2048, intermediate 1024-2816, MHA and GQA)."""

QUANTIZED_LINEAR_EXTRA = (0.5, 0.0, 7.0)
"""Extra bytes per token per block when the block's linears are bitsandbytes 4/8-bit layers:
their outputs come back in the (fp32) input dtype instead of bf16 (measured, CPU)."""

LORA_DROPOUT_MASK_BYTES = 1.0
"""Extra saved bytes per input feature per token for each LoRA-wrapped linear with dropout on:
the dropout mask (its dropped copy of the input replaces the input as what ``lora_A`` saves).
Measured."""

BNB_CPU_BLOCK_WORKSPACE = 11 * (1 << 20)
"""Memory bitsandbytes' CPU training path holds per quantised decoder block beyond the saved
activations (dequantisation buffers, fp32 gradients of its fp32 outputs, heap slack). Empirical:
fitted to the measured peaks of QLoRA runs on SmolLM2 (30 blocks of 3.5M parameters) and a
random Llama (24 blocks of 11.8M), where it did not vary with block size or tokens per step."""

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

ALLOCATOR_RESERVE = 0.05
"""Share of the memory budget kept free for allocator fragmentation (the CUDA caching allocator,
glibc arenas) on top of :data:`RUNTIME_RESERVE`."""
RUNTIME_RESERVE = GiB // 2
"""Memory a training process needs besides the estimate (CUDA context / imported libraries)."""


@dataclass
class MemoryEstimate:
    """Peak training memory of one method, in bytes, split by what holds it.

    ``activations`` is without gradient checkpointing, ``activations_checkpointed`` with it
    (each decoder block keeps only its input; one block is recomputed at a time).
    ``quantization_overhead`` holds quantisation constants and dequantisation buffers.
    ``export`` is memory the export step adds on top of what the finished training still holds
    (adapter methods reload the unquantised base in fp32 to merge): host RAM, which on a CPU is
    the same memory that training used. ``notes`` are short human-readable caveats.
    """

    weights: int
    gradients: int
    optimizer: int
    activations: int
    activations_checkpointed: int
    quantization_overhead: int = 0
    trainable_params: int = 0
    total_params: int = 0
    export: int = 0
    notes: list[str] = field(default_factory=list)

    def total(self, checkpointing: bool = False) -> int:
        """Peak bytes during training: every component, activations per ``checkpointing``."""
        acts = self.activations_checkpointed if checkpointing else self.activations
        return self.weights + self.gradients + self.optimizer + acts + self.quantization_overhead

    def peak(self, checkpointing: bool = False, *, with_export: bool = False) -> int:
        """``total(checkpointing)``, or the export step's peak if that is higher and
        ``with_export`` (a CPU run, where training and export share the same memory).

        At export the process still holds the steady state plus part of the activations'
        memory (the CPU allocator keeps freed blocks; half, as measured on SmolLM2 and a 280M
        Llama), and the export's own allocations come on top.
        """
        train = self.total(checkpointing)
        if not with_export or not self.export:
            return train
        acts = self.activations_checkpointed if checkpointing else self.activations
        return max(train, train + self.export - acts // 2)

    def as_dict(self) -> dict[str, Any]:
        """Every field (bytes and counts) plus ``total`` and ``total_checkpointed``."""
        out = asdict(self)
        out["total"] = self.total(False)
        out["total_checkpointed"] = self.total(True)
        return out


# --------------------------------------------------------------------------- model shape


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that memory depends on.

    ``gated_mlp``: gate/up/down projections (Llama, Mistral, Qwen, Gemma …) instead of up/down
    (GPT-2, GPT-NeoX, OPT, Phi-2 …). ``biases``: ``none``, ``qkv`` (Qwen2) or ``all`` (GPT-2
    family: every linear). ``norm_params``: parameters per norm per feature (1 for RMSNorm,
    2 for LayerNorm with bias). ``experts``/``experts_per_token``: mixture-of-experts MLPs
    (each expert has ``intermediate`` features).
    """

    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    gated_mlp: bool = True
    biases: str = "none"
    norm_params: int = 1
    position_embeddings: int = 0
    experts: int = 1
    experts_per_token: int = 1

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def block_linears(self) -> list[tuple[str, int, int, int]]:
        """``(name, in_features, out_features, count)`` for the linears of one decoder block,
        named like Llama's (``count`` > 1 for the experts of a mixture-of-experts MLP)."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        out = [
            ("q_proj", h, q, 1),
            ("k_proj", h, kv, 1),
            ("v_proj", h, kv, 1),
            ("o_proj", q, h, 1),
        ]
        n = self.experts
        if self.gated_mlp:
            out += [("gate_proj", h, i, n), ("up_proj", h, i, n), ("down_proj", i, h, n)]
        else:
            out += [("up_proj", h, i, n), ("down_proj", i, h, n)]
        if n > 1:
            out.append(("router", h, n, 1))
        return out

    def block_linear_params(self, names: Iterable[str] | None = None) -> int:
        """Weights of one block's linears (only those named in ``names``, if given)."""
        wanted = None if names is None else set(names)
        return sum(
            a * b * c for name, a, b, c in self.block_linears() if wanted is None or name in wanted
        )

    def block_bias_params(self) -> int:
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        if self.biases == "qkv":
            return q + 2 * kv
        if self.biases == "all":
            return q + 2 * kv + h + (i + h) * self.experts
        return 0

    def block_params(self) -> int:
        """All parameters of one decoder block (linears, biases, its two norms)."""
        return (
            self.block_linear_params()
            + self.block_bias_params()
            + 2 * self.norm_params * self.hidden
        )

    def embedding_params(self) -> int:
        return self.vocab * self.hidden + self.position_embeddings * self.hidden

    def head_params(self) -> int:
        """The output projection's own parameters (0 when tied to the input embeddings)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def outside_params(self) -> int:
        """Parameters outside the decoder blocks: embeddings, final norm, untied head."""
        return self.embedding_params() + self.norm_params * self.hidden + self.head_params()

    def total_params(self) -> int:
        return self.layers * self.block_params() + self.outside_params()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params": self.total_params()}


GATED_TYPES = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
    "gemma3_text", "phi3", "olmo", "olmo2", "cohere", "cohere2", "granite", "granitemoe",
    "internlm2", "smollm3", "stablelm", "deepseek_v2", "deepseek_v3", "exaone", "helium", "glm",
}  # fmt: skip
UNGATED_TYPES = {
    "gpt2", "gpt_neox", "gpt_neo", "gptj", "opt", "phi", "falcon", "bloom", "starcoder2",
    "gpt_bigcode", "codegen", "mpt",
}  # fmt: skip
LAYERNORM_TYPES = {
    "gpt2", "gpt_neox", "gpt_neo", "gptj", "opt", "phi", "falcon", "bloom", "starcoder2",
    "gpt_bigcode", "codegen", "stablelm",
}  # fmt: skip
ALL_BIAS_TYPES = {
    "gpt2", "gpt_neox", "gpt_neo", "opt", "phi", "bloom", "starcoder2", "gpt_bigcode", "codegen",
}  # fmt: skip
QKV_BIAS_TYPES = {"qwen2", "qwen2_moe"}
LEARNED_POSITION_TYPES = {"gpt2", "opt", "gpt_neo", "gpt_bigcode"}


def _first(config: Any, names: Iterable[str], default: Any = None) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def model_shape(config: Any) -> ModelShape:
    """Read a :class:`ModelShape` from a ``transformers`` config (or any object with the same
    attribute names, e.g. a parsed ``config.json``).

    Understands Llama-style names (``hidden_size``, ``intermediate_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``,
    ``tie_word_embeddings``) and the GPT-2/NeoX/Falcon/OPT aliases (``n_embd``, ``n_layer``,
    ``n_head``, ``n_inner``, ``ffn_dim``, ``multi_query`` …); a missing intermediate size means
    ``4 * hidden``. Raises :class:`BadInput` when the config lacks hidden size, layers, heads or
    vocabulary (not a decoder-only language model ftx can plan for).
    """
    getter = getattr(config, "get_text_config", None)
    if callable(getter):
        config = getter()
    model_type = str(getattr(config, "model_type", "") or "unknown")
    hidden = _first(config, ("hidden_size", "n_embd", "d_model", "dim", "word_embed_proj_dim"))
    layers = _first(config, ("num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    heads = _first(config, ("num_attention_heads", "n_head", "num_heads", "n_heads"))
    vocab = _first(config, ("vocab_size", "padded_vocab_size"))
    missing = [
        name
        for name, value in (
            ("hidden size", hidden),
            ("number of layers", layers),
            ("attention heads", heads),
            ("vocabulary size", vocab),
        )
        if not value
    ]
    if missing:
        raise BadInput(
            f"cannot plan for this model: its config has no {', '.join(missing)} "
            f"(model_type {model_type!r})"
        )
    hidden, layers, heads, vocab = int(hidden), int(layers), int(heads), int(vocab)
    kv_heads = _first(config, ("num_key_value_heads", "num_kv_heads", "n_head_kv", "num_kv"))
    if kv_heads is None and getattr(config, "multi_query", False):
        kv_heads = 1
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    experts = int(_first(config, ("num_local_experts", "num_experts", "n_routed_experts"), 1) or 1)
    intermediate = _first(config, ("intermediate_size", "n_inner", "ffn_dim", "d_ff"))
    if experts > 1:
        intermediate = _first(config, ("moe_intermediate_size",), intermediate)
    if not intermediate:
        intermediate = 4 * hidden
    act = str(_first(config, ("hidden_act", "activation_function"), "")).lower()
    if model_type in GATED_TYPES:
        gated = True
    elif model_type in UNGATED_TYPES:
        gated = False
    else:
        gated = act in {"silu", "swish", "swiglu"}
    if model_type in ALL_BIAS_TYPES:
        biases = "all"
    elif model_type in QKV_BIAS_TYPES:
        biases = "qkv"
    elif getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        biases = "all"
    else:
        biases = "none"
    positions = 0
    if model_type in LEARNED_POSITION_TYPES:
        positions = int(_first(config, ("n_positions", "max_position_embeddings"), 0) or 0)
    return ModelShape(
        model_type=model_type,
        hidden=hidden,
        intermediate=int(intermediate),
        layers=layers,
        heads=heads,
        kv_heads=int(kv_heads or heads),
        head_dim=int(head_dim),
        vocab=vocab,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
        gated_mlp=gated,
        biases=biases,
        norm_params=2 if model_type in LAYERNORM_TYPES else 1,
        position_embeddings=positions,
        experts=experts,
        experts_per_token=int(_first(config, ("num_experts_per_tok",), 1) or 1),
    )


# --------------------------------------------------------------------------- precision


@dataclass(frozen=True)
class Precision:
    """How a run holds and computes: ``weights`` dtype name and whether bf16 autocast is on."""

    weights: str
    autocast: bool

    @property
    def weight_bytes(self) -> int:
        return DTYPE_BYTES.get(self.weights, 4)

    @property
    def mode(self) -> str:
        """``mixed`` (fp32 weights, bf16 autocast), ``half`` (bf16/fp16 weights) or ``fp32``."""
        if self.weights != "float32":
            return "half"
        return "mixed" if self.autocast else "fp32"

    @property
    def compute_bytes(self) -> int:
        return 4 if self.mode == "fp32" else 2

    @property
    def residual_bytes(self) -> int:
        """Bytes per feature of the hidden state between blocks."""
        return 2 if self.mode == "half" else 4


def precision_for(device: DeviceInfo, dtype: str = "auto") -> Precision:
    """The precision ``ftx run`` would use: ``model.dtype`` (``auto``: fp32 on CPUs, bf16 on
    bf16-capable GPUs) and bf16 autocast where the device supports bf16 (``train.bf16=auto``)."""
    from ftx.device import choose_dtype

    weights = choose_dtype(dtype, device)
    return Precision(weights=weights, autocast=bool(device.bf16) and weights == "float32")


# --------------------------------------------------------------------------- building blocks


def checkpoint_dtype(config: Any) -> str | None:
    """The dtype of the weights on disk, from the config's ``dtype``/``torch_dtype`` (``None``
    when the config does not say). GGUF models count as ``float32``: ftx converts them to an
    fp32 safetensors directory."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if value is None:
        return None
    name = str(value).removeprefix("torch.")
    return name if name in DTYPE_BYTES else None


def mapped_checkpoint_bytes(shape: ModelShape, config: Any, device: DeviceInfo) -> int:
    """On a CPU, a model quantised while loading from an fp32 safetensors checkpoint keeps the
    checkpoint memory-mapped (its unquantised parameters still point into it), so every page
    read during loading stays in the process's resident memory: ``4 * params`` bytes. They are
    clean file pages the kernel may drop under pressure, but they count in the measured peak.
    0 on GPUs (host memory) and for checkpoints in another dtype (converted, then unmapped)."""
    if device.kind != "cpu" or checkpoint_dtype(config) != "float32":
        return 0
    return 4 * shape.total_params()


def quantized_workspace_bytes(shape: ModelShape, device: DeviceInfo) -> int:
    """Per-block workspace of bitsandbytes' CPU path (:data:`BNB_CPU_BLOCK_WORKSPACE`); on
    GPUs the dequantised-weight buffer is counted separately and this is 0."""
    return shape.layers * BNB_CPU_BLOCK_WORKSPACE if device.kind == "cpu" else 0


def adamw_bytes(trainable_params: int, dtype_bytes: int) -> int:
    """AdamW state: ``exp_avg`` and ``exp_avg_sq``, each shaped and typed like the parameter."""
    return 2 * trainable_params * dtype_bytes


def block_activation_bytes(
    shape: ModelShape,
    precision: Precision,
    *,
    extra: tuple[float, float, float] = (0.0, 0.0, 0.0),
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
    extra: tuple[float, float, float] = (0.0, 0.0, 0.0),
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


def autocast_copy_bytes(linear_params: int, precision: Precision) -> int:
    """The bf16 copies autocast caches of fp32 weights that require grad (kept for backward)."""
    return 2 * linear_params if precision.mode == "mixed" else 0


def estimate_dense(
    shape: ModelShape,
    *,
    seq_len: int,
    batch_size: int,
    precision: Precision,
    device_kind: str,
    trainable_params: int,
    trainable_linear_params: int,
    layers_with_grad: int,
    head_trainable: bool,
    notes: list[str] | None = None,
) -> MemoryEstimate:
    """Estimate a method that trains a subset of an unquantised model's own weights with AdamW
    (full fine-tuning: everything; partial fine-tuning: chosen blocks).

    ``trainable_linear_params`` are the trainable weights that run through autocast matmuls
    (their bf16 copies stay cached for backward in ``mixed`` precision); ``layers_with_grad``
    the decoder blocks that gradients flow through (from the first trainable block on).
    """
    total = shape.total_params()
    wb = precision.weight_bytes
    acts = {
        ckpt: activation_bytes(
            shape,
            batch_size=batch_size,
            seq_len=seq_len,
            precision=precision,
            device_kind=device_kind,
            layers_with_grad=layers_with_grad,
            checkpointing=ckpt,
            head_trainable=head_trainable,
        )
        for ckpt in (False, True)
    }
    notes = list(notes or [])
    copy = autocast_copy_bytes(trainable_linear_params, precision)
    if copy:
        notes.append("weights include the bf16 autocast copy of trained matrices")
    return MemoryEstimate(
        weights=total * wb + copy,
        gradients=trainable_params * wb,
        optimizer=adamw_bytes(trainable_params, wb),
        activations=acts[False],
        activations_checkpointed=acts[True],
        trainable_params=trainable_params,
        total_params=total,
        notes=notes,
    )


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
) -> tuple[float, float, float]:
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


def quantized_bytes(
    params: int, bits: int, *, double_quant: bool = True, blocksize: int = 64
) -> tuple[int, int]:
    """``(data, constants)`` bytes of ``params`` weights quantised by bitsandbytes.

    4-bit (NF4/FP4): half a byte per weight plus one absmax per ``blocksize`` block, fp32, or
    with double quantisation 8-bit absmax plus one fp32 constant per 256 blocks. 8-bit
    (LLM.int8): a byte per weight plus fp32 row statistics (approximated as one per 4096 weights).
    """
    if bits == 4:
        blocks = math.ceil(params / blocksize)
        constants = blocks + 4 * math.ceil(blocks / 256) if double_quant else 4 * blocks
        return params // 2 + params % 2, constants
    return params, 4 * math.ceil(params / 4096)


# --------------------------------------------------------------------------- sizes and config


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"16GB"``, ``"16G"``, ``"16 GiB"``, ``"800MB"``, ``"1.5T"`` → bytes.

    Units are binary (1 GB = 1 GiB = 2**30 bytes, as GPU memory is sold); a bare number is
    GiB. Raises :class:`BadInput` for anything else.
    """
    match = _SIZE.match(str(text))
    if not match:
        raise BadInput(
            f"--gpu-mem {text!r}: expected a size such as 16GB, 24GiB, 80G or 512MB",
        )
    number, unit, suffix = match.groups()
    if not unit and suffix:  # "16B" would be 16 bytes: surely a mistake
        raise BadInput(f"--gpu-mem {text!r}: expected a size such as 16GB, 24GiB or 80G")
    power = {"": 3, "k": 1, "m": 2, "g": 3, "t": 4}[unit.lower()]
    value = int(float(number) * 1024**power)
    if value <= 0:
        raise BadInput(f"--gpu-mem {text!r}: must be more than zero")
    return value


def format_bytes(n: int | float | None) -> str:
    """Human-readable binary size: ``1.5 GiB``, ``620 MiB``."""
    if n is None:
        return "?"
    if abs(n) >= GiB:
        return f"{n / GiB:.1f} GiB"
    if abs(n) >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def format_count(n: int) -> str:
    """``6.74B``, ``134.5M``, ``4.9M``, ``12.3K``."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.{2 if div == 1e9 else 1}f}{unit}"
    return str(n)


class _DictConfig:
    """A config.json read as attributes (for model types this transformers does not know)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def load_model_config(spec: str | None) -> tuple[Any, str]:
    """Read a model's config without its weights; return ``(config, label)``.

    ``spec``: ``None``/``demo`` (the SmolLM2 GGUF), a ``.gguf`` file (metadata only), a model
    directory or run directory (``model/config.json``), or a hub id already in the local cache.
    Raises :class:`BadInput` for anything that cannot be found or read.
    """
    from ftx.models import check_model_spec, demo_gguf_path, is_demo

    if spec is not None and not is_demo(spec):
        path = Path(spec).expanduser()
        if path.is_dir() and not (path / "config.json").is_file():
            if (path / "model" / "config.json").is_file():
                return _read_config_dir(path / "model"), str(path / "model")
            raise BadInput(
                f"model directory {spec} has no config.json",
                hint="pass a Hugging Face model directory, a .gguf file or a run directory",
            )
    check_model_spec(spec)
    if is_demo(spec):
        gguf = demo_gguf_path()
        return _read_gguf_config(gguf), f"demo ({gguf.stem})"
    assert spec is not None
    if spec.endswith(".gguf"):
        return _read_gguf_config(Path(spec).expanduser()), spec
    path = Path(spec).expanduser()
    if path.is_dir():
        return _read_config_dir(path), spec
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(spec, local_files_only=True), spec
    except Exception as exc:
        raise BadInput(f"cannot read the config of {spec}: {exc}") from None


def _read_config_dir(path: Path) -> Any:
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(path))
    except Exception:
        try:
            return _DictConfig(json.loads((path / "config.json").read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise BadInput(f"{path / 'config.json'}: cannot read ({exc})") from None


def _read_gguf_config(gguf: Path) -> Any:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:
        raise BadInput(f"{gguf}: cannot read its GGUF metadata ({exc})") from None
    config.dtype = "float32"  # what ftx converts GGUF weights to (see ftx.models)
    return config


# --------------------------------------------------------------------------- the plan


def memory_budget(device: DeviceInfo, gpu_mem: int | None) -> tuple[int | None, str]:
    """``(bytes, what)``: ``gpu_mem`` if given, else the detected GPU's memory, else the RAM
    available now (``MemAvailable``)."""
    if gpu_mem is not None:
        return gpu_mem, "given --gpu-mem"
    if device.kind == "cuda":
        try:
            import torch

            return int(torch.cuda.get_device_properties(0).total_memory), "GPU memory"
        except Exception:
            return None, "GPU memory (unknown)"
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "RAM"
    except (ValueError, OSError, AttributeError):
        return None, "RAM (unknown)"


def usable_memory(budget: int) -> int:
    """What an estimate may use of ``budget``: minus :data:`RUNTIME_RESERVE` and
    :data:`ALLOCATOR_RESERVE`."""
    return max(0, int(budget * (1 - ALLOCATOR_RESERVE)) - RUNTIME_RESERVE)


def resolve_device(device: str, gpu_mem: int | None) -> DeviceInfo:
    """The device to plan for: ``auto`` = this machine, except that ``--gpu-mem`` means a
    bf16-capable CUDA GPU of that size; ``cuda`` = such a GPU; ``cpu`` = a CPU (bf16 autocast
    where this machine's CPU has it)."""
    choice = device.lower()
    if choice not in {"auto", "cpu", "cuda", "gpu"}:
        raise BadInput(f"--device {device!r}: expected auto, cpu or cuda")
    if choice == "cpu" and gpu_mem is not None:
        raise BadInput("--gpu-mem plans for a GPU; drop --device cpu (or --gpu-mem)")
    if choice in {"cuda", "gpu"} or (choice == "auto" and gpu_mem is not None):
        from ftx.device import detect

        found = detect() if gpu_mem is None else None
        if found is not None and found.kind == "cuda":
            return found
        if gpu_mem is None:
            raise BadInput(
                f"--device {device}: this machine has no CUDA GPU",
                hint="pass --gpu-mem SIZE (e.g. 24GB) to plan for a GPU you do not have here",
            )
        return DeviceInfo(kind="cuda", bf16=True, count=1, name="CUDA GPU (bf16)")
    from ftx.device import cpu_supports_bf16, detect

    if choice == "auto":
        return detect()
    return DeviceInfo(kind="cpu", bf16=cpu_supports_bf16(), count=0, name="CPU")


def parse_method_sets(sets: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["sft.layers=last:2", "qlora.r=8"]`` → ``{"sft": {"layers": "last:2"}, …}`` (values
    read as YAML, like ``ftx run --set``)."""
    import yaml

    from ftx.config import load_yaml

    out: dict[str, dict[str, Any]] = {}
    for expr in sets:
        lhs, sep, raw = expr.partition("=")
        plugin, dot, key = lhs.strip().partition(".")
        if not sep or not dot or not plugin or not key:
            raise BadInput(f"--set {expr!r}: expected PLUGIN.OPTION=VALUE, e.g. sft.layers=last:2")
        try:
            value = load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.setdefault(plugin, {})[key.strip()] = value
    return out


def _rank_key(row: dict[str, Any]) -> tuple[int, int]:
    # More trainable parameters first (more capacity to adapt), then the smaller peak.
    est = row["estimate"]
    return (-est["trainable_params"], row["peak_bytes"])


def recommend(rows: list[dict[str, Any]], usable: int | None, checkpointing: bool) -> dict:
    """Pick the method to use: among those that fit (without turning on checkpointing if it is
    off by default, else with it), the one that trains the most parameters — full fine-tuning
    before partial before adapters, since more trainable capacity adapts better when memory
    allows. If none fits, the one with the smallest peak, with what to change."""
    known = [r for r in rows if r["estimate"] is not None]
    if not known:
        return {"method": None, "checkpointing": checkpointing, "reason": "no method estimate"}
    if usable is None:
        return {
            "method": None,
            "checkpointing": checkpointing,
            "reason": "the memory budget is unknown: pass --gpu-mem SIZE",
        }
    fits = sorted((r for r in known if r["fits"]), key=_rank_key)
    if fits:
        best = fits[0]
        what = (
            "trains every weight"
            if best["estimate"]["trainable_params"] >= best["estimate"]["total_params"]
            else f"trains {format_count(best['estimate']['trainable_params'])} parameters"
        )
        others = [r["name"] for r in fits[1:]]
        tail = f"; {', '.join(others)} also fit{'s' if len(others) == 1 else ''}" if others else ""
        return {
            "method": best["name"],
            "checkpointing": checkpointing,
            "reason": (
                f"fits ({format_bytes(best['peak_bytes'])} of {format_bytes(usable)} usable) "
                f"and {what}: the most capacity that fits{tail}"
            ),
        }
    if not checkpointing:
        with_ckpt = sorted((r for r in known if r["fits_checkpointed"]), key=_rank_key)
        if with_ckpt:
            best = with_ckpt[0]
            return {
                "method": best["name"],
                "checkpointing": True,
                "reason": (
                    f"fits only with activation checkpointing "
                    f"({format_bytes(best['peak_checkpointed_bytes'])} of "
                    f"{format_bytes(usable)} usable): add --set train.gradient_checkpointing=true"
                ),
            }
    smallest = min(known, key=lambda r: r["peak_checkpointed_bytes"])
    return {
        "method": smallest["name"],
        "checkpointing": True,
        "reason": (
            f"nothing fits in {format_bytes(usable)} usable; {smallest['name']} needs the least "
            f"({format_bytes(smallest['peak_checkpointed_bytes'])} with checkpointing): lower "
            "--batch-size/--seq-len, or use a machine with more memory"
        ),
    }


def plan(
    model_spec: str | None,
    seq_len: int = 512,
    batch_size: int = 8,
    gpu_mem: int | None = None,
    device: str = "auto",
    *,
    dtype: str = "auto",
    method_options: dict[str, dict[str, Any]] | None = None,
    plugins: list[Any] | None = None,
) -> dict[str, Any]:
    """Estimate peak training memory of every installed method plugin for ``model_spec``.

    Reads only the model's config. ``seq_len``/``batch_size``: tokens per padded row and rows
    per step (``ftx run`` defaults: ``data.max_length`` 512, batch 8). ``gpu_mem``: the memory
    budget in bytes (implies a CUDA GPU); otherwise ``device`` (``auto``/``cpu``/``cuda``) and
    its memory. ``dtype``: ``model.dtype``. ``method_options``: ``{plugin: {option: value}}``.

    Returns a JSON-ready dict: the model's shape and parameter count, the device and precision,
    the budget, one row per plugin (``estimate`` in bytes, or ``None`` with ``status``
    explaining why) with ``peak_bytes`` (the default checkpointing setting) and
    ``peak_checkpointed_bytes`` (both include the export step on a CPU:
    ``peak_includes_export``), ``fits``/``fits_checkpointed``, and a ``recommendation``
    (``method``, ``checkpointing``, ``reason``). Raises :class:`BadInput` for bad input.
    """
    from ftx.options import resolve_options
    from ftx.plugins import call_first, discover, manager_for

    if seq_len < 1 or batch_size < 1:
        raise BadInput("--seq-len and --batch-size must be at least 1")
    if dtype not in ("auto", *DTYPE_BYTES):
        raise BadInput(f"--dtype {dtype!r}: expected auto, {', '.join(DTYPE_BYTES)}")
    given = dict(method_options or {})
    found = discover() if plugins is None else plugins
    unknown = sorted(set(given) - {p.name for p in found})
    if unknown:
        raise BadInput(f"--set {unknown[0]}.…: no installed plugin named {unknown[0]!r}")
    config, label = load_model_config(model_spec)
    shape = model_shape(config)
    dev = resolve_device(device, gpu_mem)
    precision = precision_for(dev, dtype)
    checkpointing = dev.is_gpu
    budget, budget_kind = memory_budget(dev, gpu_mem)
    usable = usable_memory(budget) if budget is not None else None
    with_export = not dev.is_gpu

    rows: list[dict[str, Any]] = []
    for info in found:
        row: dict[str, Any] = {
            "name": info.name,
            "distribution": info.distribution,
            "status": "ok",
            "estimate": None,
            "fits": False,
            "fits_checkpointed": False,
            "peak_bytes": None,
            "peak_checkpointed_bytes": None,
        }
        rows.append(row)
        if not info.ok:
            row["status"] = f"not loaded: {info.status}"
            continue
        pm = manager_for(info, defaults=False)
        try:
            declared, _ = call_first(pm, "method_options")
        except Exception as exc:
            row["status"] = f"method_options failed: {type(exc).__name__}: {exc}"
            continue
        options = resolve_options(list(declared or []), given.get(info.name), plugin=info.name)
        try:
            estimate, _ = call_first(
                pm,
                "estimate_memory",
                model_config=config,
                seq_len=seq_len,
                batch_size=batch_size,
                options=options,
                device=dev,
                dtype=precision.weights,
            )
        except BadInput:
            raise
        except Exception as exc:
            row["status"] = f"estimate failed: {type(exc).__name__}: {exc}"
            continue
        if estimate is None:
            row["status"] = "unknown (the plugin gives no estimate)"
            continue
        if not isinstance(estimate, MemoryEstimate):
            row["status"] = f"estimate failed: returned {type(estimate).__name__}"
            continue
        peak = estimate.peak(checkpointing, with_export=with_export)
        peak_ckpt = estimate.peak(True, with_export=with_export)
        row.update(
            estimate=estimate.as_dict(),
            peak_bytes=peak,
            peak_checkpointed_bytes=peak_ckpt,
            fits=usable is not None and peak <= usable,
            fits_checkpointed=usable is not None and peak_ckpt <= usable,
        )
    return {
        "model": label,
        "model_type": shape.model_type,
        "params": shape.total_params(),
        "shape": shape.as_dict(),
        "seq_len": seq_len,
        "batch_size": batch_size,
        "device": {"kind": dev.kind, "name": dev.name, "bf16": dev.bf16},
        "dtype": precision.weights,
        "autocast_bf16": precision.autocast,
        "checkpointing_default": checkpointing,
        "peak_includes_export": with_export,
        "budget_bytes": budget,
        "budget_kind": budget_kind,
        "usable_bytes": usable,
        "methods": rows,
        "recommendation": recommend(rows, usable, checkpointing),
    }
