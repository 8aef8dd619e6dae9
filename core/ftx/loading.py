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


def hold_frozen_in_autocast_dtype(run: RunContext, model: Any) -> None:
    """On GPUs, hold the frozen floating-point weights of a model whose trained weights are
    fp32 masters in the autocast dtype (:func:`ftx.precision.frozen_dtype`): they only feed
    autocast matmuls, so a half copy loses nothing and halves their memory. Call it from
    ``select_trainable`` once ``requires_grad`` is final (partial tuning, adapter methods on an
    unquantised base). A no-op on CPUs and for pure half-precision runs."""
    from ftx.precision import frozen_dtype

    dtype = frozen_dtype(run.device, run.train_args, run.dtype)
    if dtype is None:
        return
    for param in model.parameters():
        if not param.requires_grad and param.is_floating_point():
            param.data = param.data.to(torch_dtype(dtype))
