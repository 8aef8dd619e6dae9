"""A bitsandbytes 4/8-bit base: its bytes, constants, workspace and the mapped checkpoint."""

from __future__ import annotations

import math
from typing import Any

from ftx.context import DeviceInfo
from ftx.estimates.activations import Coefficients
from ftx.estimates.precision import checkpoint_dtype
from ftx.estimates.shape import ModelShape

QUANTIZED_LINEAR_EXTRA: Coefficients = (0.5, 0.0, 7.0)
"""Extra bytes per token per block when the block's linears are bitsandbytes 4/8-bit layers:
their outputs come back in the (fp32) input dtype instead of bf16 (measured, CPU)."""

BNB_CPU_BLOCK_WORKSPACE = 11 * (1 << 20)
"""Memory bitsandbytes' CPU training path holds per quantised decoder block beyond the saved
activations (dequantisation buffers, fp32 gradients of its fp32 outputs, heap slack). Empirical:
fitted to the measured peaks of QLoRA runs on SmolLM2 (30 blocks of 3.5M parameters) and a
random Llama (24 blocks of 11.8M), where it did not vary with block size or tokens per step."""


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
