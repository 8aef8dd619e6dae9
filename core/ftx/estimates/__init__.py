"""Memory estimates without weights: the library method plugins build ``estimate_memory`` from.

Everything here works from a model's *config* (hidden size, layers, heads, vocabulary, …); no
weights are read, torch is not imported, and nothing here discovers plugins (that is
:mod:`ftx.planner`, behind ``ftx plan``). Each method plugin answers the ``estimate_memory``
hook with a :class:`MemoryEstimate` built from these helpers, so a third-party method shows up
in the plan next to the built-in ones and follows the same calibrated model.

Modules, one job each:

* :mod:`~ftx.estimates.shape`: :class:`ModelShape`, read from a config by :func:`model_shape`;
* :mod:`~ftx.estimates.precision`: :class:`Precision`, what a run holds and computes in;
* :mod:`~ftx.estimates.activations`: what a step saves for backward, and the loss head;
* :mod:`~ftx.estimates.memory`: :class:`MemoryEstimate` (the model of peak memory) and
  :func:`estimate_dense` for methods that train a model's own weights;
* :mod:`~ftx.estimates.lora` and :mod:`~ftx.estimates.quantized`: adapters, 4/8-bit bases;
* :mod:`~ftx.estimates.request`: :class:`EstimateRequest`, the hook's arguments as one object;
* :mod:`~ftx.estimates.units`: ``16GB`` in, ``1.5 GiB`` and ``6.74B`` out.

Calibration (``tests/test_plan.py``, slow tier): the estimate is compared with the peak RSS above
the pre-load baseline that ``ftx run`` records in ``summary.json``, for every built-in method on
SmolLM2-135M and a 280M-parameter random Llama, and must agree within ±30%. Published sanity
points for Llama-2-7B (LLaMA-Factory's hardware table) are fast tests.
"""

from __future__ import annotations

from ftx.estimates.activations import (
    ACTIVATION_COEFFICIENTS,
    HEAD_TILE_BYTES,
    HEAD_TOKEN_CHUNK,
    HEAD_VOCAB_CHUNK,
    LEAN_HEAD_BYTES,
    Coefficients,
    activation_bytes,
    activation_pair,
    block_activation_bytes,
    head_bytes,
)
from ftx.estimates.lora import (
    LORA_DROPOUT_MASK_BYTES,
    lora_activation_extra,
    lora_params,
    merge_bytes,
)
from ftx.estimates.memory import (
    MemoryEstimate,
    adamw_bytes,
    autocast_copy_bytes,
    estimate_dense,
    optimizer_state_bytes,
)
from ftx.estimates.precision import DTYPE_BYTES, Precision, checkpoint_dtype, precision_for
from ftx.estimates.quantized import (
    BNB_CPU_BLOCK_WORKSPACE,
    QUANTIZED_LINEAR_EXTRA,
    mapped_checkpoint_bytes,
    quantized_bytes,
    quantized_workspace_bytes,
)
from ftx.estimates.request import EstimateRequest, estimator
from ftx.estimates.shape import (
    ALL_BIAS_TYPES,
    GATED_TYPES,
    LAYERNORM_TYPES,
    LEARNED_POSITION_TYPES,
    QKV_BIAS_TYPES,
    UNGATED_TYPES,
    ModelShape,
    model_shape,
)
from ftx.estimates.units import GiB, MiB, format_bytes, format_count, parse_size

__all__ = [
    "ACTIVATION_COEFFICIENTS",
    "ALL_BIAS_TYPES",
    "BNB_CPU_BLOCK_WORKSPACE",
    "DTYPE_BYTES",
    "GATED_TYPES",
    "HEAD_TILE_BYTES",
    "HEAD_TOKEN_CHUNK",
    "HEAD_VOCAB_CHUNK",
    "LAYERNORM_TYPES",
    "LEAN_HEAD_BYTES",
    "LEARNED_POSITION_TYPES",
    "LORA_DROPOUT_MASK_BYTES",
    "QKV_BIAS_TYPES",
    "QUANTIZED_LINEAR_EXTRA",
    "UNGATED_TYPES",
    "Coefficients",
    "EstimateRequest",
    "GiB",
    "MemoryEstimate",
    "MiB",
    "ModelShape",
    "Precision",
    "activation_bytes",
    "activation_pair",
    "adamw_bytes",
    "autocast_copy_bytes",
    "block_activation_bytes",
    "checkpoint_dtype",
    "estimate_dense",
    "estimator",
    "format_bytes",
    "format_count",
    "head_bytes",
    "lora_activation_extra",
    "lora_params",
    "mapped_checkpoint_bytes",
    "merge_bytes",
    "model_shape",
    "optimizer_state_bytes",
    "parse_size",
    "precision_for",
    "quantized_bytes",
    "quantized_workspace_bytes",
]
