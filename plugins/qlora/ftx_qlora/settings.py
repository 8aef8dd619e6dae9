"""What qlora's options mean, written once for the run's hooks and for ``ftx plan``'s estimate.

Torch-free: the entry-point module and :mod:`ftx_qlora.estimate` both import it at load time.
"""

from __future__ import annotations

from typing import Any

from ftx.context import DeviceInfo
from ftx.options import AUTO

ALL_LINEAR = "all-linear"
"""``method.target_modules`` value meaning every linear layer inside the decoder blocks."""


def target_modules(value: str | list[str]) -> list[str] | None:
    """``method.target_modules`` as module names: ``None`` for ``all-linear``, else the names
    of a comma list (``"q_proj, v_proj"``) or of a list, stripped, empty ones dropped."""
    if value == ALL_LINEAR:
        return None
    names = value.split(",") if isinstance(value, str) else value
    return [name.strip() for name in names if name.strip()]


def compute_dtype(chosen: str, device: DeviceInfo | Any) -> str:
    """``method.compute_dtype`` resolved for ``device``: ``auto`` is ``bfloat16`` where the
    device supports bf16, else ``float32``; any other value is kept."""
    if chosen != AUTO:
        return chosen
    return "bfloat16" if device.bf16 else "float32"
