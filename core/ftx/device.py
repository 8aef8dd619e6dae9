"""Hardware detection: which device, whether bf16 compute is supported, which attention to use."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from ftx.context import DeviceInfo


def detect() -> DeviceInfo:
    """Describe the device a run will use (imports torch). On a CPU, ``bf16`` is whether bf16
    autocast pays on this processor, as :mod:`ftx.calibration` measured it (once per CPU)."""
    import torch

    if torch.cuda.is_available():
        return DeviceInfo(
            kind="cuda",
            bf16=bool(torch.cuda.is_bf16_supported()),
            count=torch.cuda.device_count(),
            name=torch.cuda.get_device_name(0),
        )
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return DeviceInfo(kind="mps", bf16=False, count=1, name="Apple MPS")
    return cpu_device()


def cpu_device() -> DeviceInfo:
    """This machine's CPU as a training device: ``bf16`` from :mod:`ftx.calibration` (whether
    bf16 autocast pays here; measured once per CPU, cached). Imports torch."""
    from ftx.calibration import for_this_cpu

    return DeviceInfo(kind="cpu", bf16=for_this_cpu().bf16_autocast, count=0, name="CPU")


def cpu_supports_bf16() -> bool:
    """True when the CPU reports native bf16 compute (AVX512-BF16 or AMX) and torch's oneDNN
    has bf16 kernels for it: the rule ``FTX_CALIBRATION=off`` falls back to."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        if check is None or not check():
            return False
    except Exception:
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return True
    return "avx512_bf16" in flags or "amx_bf16" in flags


def flash_attn_available() -> bool:
    """True when the ``flash-attn`` package is importable (it only works on CUDA)."""
    return importlib.util.find_spec("flash_attn") is not None


ATTENTION = ("flash_attention_2", "sdpa", "eager")
"""The implementations ``model.attn_implementation`` may name, in the order ``auto`` tries them."""


def model_class(model_config: Any) -> type | None:
    """The class ``AutoModelForCausalLM`` would build for ``model_config`` (a
    ``transformers.PretrainedConfig`` or a config dict read from ``config.json``/GGUF), found
    through transformers' causal-LM auto mapping by ``model_type``, else by the first class
    named in ``architectures`` that transformers has. None for a model transformers does not
    know (remote code). Imports transformers and the model's modeling module, loads no weights.
    """
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type, architectures = _config_fields(model_config)
    names = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type) if model_type else None
    candidates = [names] if isinstance(names, str) else list(names or ())
    candidates += [a for a in architectures if isinstance(a, str)]
    for name in candidates:
        try:
            cls = getattr(transformers, name, None)
        except Exception:  # a modeling module whose own optional imports fail
            cls = None
        if isinstance(cls, type):
            return cls
    return None


def supported_attention(model_config: Any) -> tuple[str, ...] | None:
    """The implementations of :data:`ATTENTION` that the model's class declares support for
    (its ``_supports_flash_attn`` / ``_supports_sdpa`` flags, which transformers checks when it
    loads the model; eager always), in :data:`ATTENTION` order. None when the class is unknown.
    """
    cls = model_class(model_config)
    if cls is None:
        return None
    flash = getattr(cls, "_supports_flash_attn", False) or getattr(
        cls, "_supports_flash_attn_2", False
    )
    flags = {"flash_attention_2": flash, "sdpa": getattr(cls, "_supports_sdpa", False)}
    return tuple(a for a in ATTENTION if a == "eager" or flags[a] is True)


def choose_attention(requested: str, device: DeviceInfo, model_config: Any = None) -> str:
    """Resolve ``model.attn_implementation`` for the model described by ``model_config`` (a
    ``transformers.PretrainedConfig`` or a config dict; nothing is loaded).

    ``auto`` picks the first the model supports of FlashAttention-2 (only on CUDA with
    ``flash-attn`` installed), SDPA, eager: Gemma2, which transformers refuses to run on SDPA,
    gets eager. An explicit value the model does not support, or ``flash_attention_2`` without
    a CUDA GPU and ``flash-attn``, raises :class:`~ftx.errors.BadInput` naming the key, the
    value, the model type and what it supports. Without ``model_config``, or for a model
    transformers does not know (remote code), every implementation counts as supported.
    """
    from ftx.errors import BadInput

    if requested != "auto" and requested not in ATTENTION:
        raise BadInput(
            f"model.attn_implementation={requested}: not one of auto, {', '.join(ATTENTION)}"
        )
    declared = supported_attention(model_config) if model_config is not None else None
    flash_here = device.kind == "cuda" and flash_attn_available()
    usable = [a for a in (declared or ATTENTION) if a != "flash_attention_2" or flash_here]
    if requested == "auto":
        return usable[0]
    if requested in usable:
        return requested
    model = _describe(model_config)
    if declared is not None and requested not in declared:
        raise BadInput(
            f"model.attn_implementation={requested}: {model} does not support it; "
            f"it supports {', '.join(declared)}",
            hint=f"set model.attn_implementation=auto, which picks {usable[0]} here",
        )
    lacking = (
        "the flash-attn package" if device.kind == "cuda" else f"a CUDA GPU (device: {device.name})"
    )
    supports = f"; {model} supports {', '.join(declared)}" if declared is not None else ""
    raise BadInput(
        f"model.attn_implementation={requested} needs a CUDA GPU and flash-attn; this run lacks "
        f"{lacking}{supports}",
        hint=f"pip install 'ftx-fft[flash]' on a CUDA machine, or use auto ({usable[0]} here)",
    )


def _config_fields(model_config: Any) -> tuple[str | None, list[Any]]:
    """``(model_type, architectures)`` of a PretrainedConfig or a config dict."""
    if isinstance(model_config, Mapping):
        model_type, architectures = (
            model_config.get("model_type"),
            model_config.get("architectures"),
        )
    else:
        model_type = getattr(model_config, "model_type", None)
        architectures = getattr(model_config, "architectures", None)
    return model_type, list(architectures or [])


def _describe(model_config: Any) -> str:
    """``model type gemma2 (Gemma2ForCausalLM)`` for messages."""
    model_type, _ = _config_fields(model_config)
    cls = model_class(model_config) if model_config is not None else None
    text = f"model type {model_type or '?'}"
    return f"{text} ({cls.__name__})" if cls is not None else text


def choose_dtype(requested: str, device: DeviceInfo) -> str:
    """Resolve ``model.dtype`` (:func:`ftx.precision.master_dtype`): ``auto`` keeps float32
    master weights on every device; half-precision compute comes from autocast."""
    from ftx.precision import master_dtype

    return master_dtype(requested, device)
