"""How a run loads its model: the dtype names ftx uses and the shared ``from_pretrained`` keywords.

Helpers for the core default ``load_model`` and for method plugins that load differently (the
qlora plugin adds its quantisation config to the same keywords).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ftx.context import RunContext

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` -> ``torch.bfloat16`` etc. (one of :data:`DTYPE_NAMES`)."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def from_pretrained_kwargs(run: RunContext) -> dict[str, Any]:
    """Keyword arguments every model load of this run shares (dtype, attention, safety flags,
    ``local_files_only``: ftx never downloads)."""
    model_cfg = run.config["model"]
    return {
        "dtype": torch_dtype(run.dtype),
        "attn_implementation": run.attn_implementation,
        "trust_remote_code": bool(model_cfg.get("trust_remote_code")),
        "use_safetensors": None if model_cfg.get("allow_pickle") else True,
        "local_files_only": True,
    }
