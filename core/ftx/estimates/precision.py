"""Which dtypes a run holds and computes in, as far as memory is concerned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftx.context import DeviceInfo

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
"""Bytes per element of the weight dtypes ftx loads (``model.dtype``)."""


@dataclass(frozen=True)
class Precision:
    """How a run holds and computes: ``weights`` dtype name and whether bf16 autocast is on."""

    weights: str
    autocast: bool

    @property
    def weight_bytes(self) -> int:
        """Bytes per weight element (4 for a dtype name this module does not know)."""
        return DTYPE_BYTES.get(self.weights, 4)

    @property
    def mode(self) -> str:
        """``mixed`` (fp32 weights, bf16/fp16 autocast), ``half`` (bf16/fp16 weights) or
        ``fp32``."""
        if self.weights != "float32":
            return "half"
        return "mixed" if self.autocast else "fp32"

    @property
    def compute_bytes(self) -> int:
        """Bytes per element of matmul inputs and outputs: 4 in ``fp32`` mode, else 2."""
        return 4 if self.mode == "fp32" else 2

    @property
    def residual_bytes(self) -> int:
        """Bytes per feature of the hidden state between blocks."""
        return 2 if self.mode == "half" else 4


def precision_for(device: DeviceInfo, dtype: str = "auto") -> Precision:
    """The precision ``ftx run`` would use (:mod:`ftx.precision`): ``model.dtype`` (``auto``:
    fp32 master weights everywhere) and half-precision autocast where the device has it (bf16,
    or fp16 on CUDA GPUs without bf16)."""
    from ftx.precision import autocast_flags, master_dtype

    weights = master_dtype(dtype, device)
    bf16, fp16 = autocast_flags(device, weights, "auto", "auto")
    return Precision(weights=weights, autocast=(bf16 or fp16) and weights == "float32")


def checkpoint_dtype(config: Any) -> str | None:
    """The dtype of the weights on disk, from the config's ``dtype``/``torch_dtype`` (``None``
    when the config does not say). GGUF models count as ``float32``: ftx converts them to an
    fp32 safetensors directory."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if value is None:
        return None
    name = str(value).removeprefix("torch.")
    return name if name in DTYPE_BYTES else None
