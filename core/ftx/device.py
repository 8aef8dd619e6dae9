"""Hardware detection: which device, whether bf16 compute is supported, which attention to use."""

from __future__ import annotations

import importlib.util

from ftx.context import DeviceInfo


def detect() -> DeviceInfo:
    """Describe the device a run will use (imports torch)."""
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
    return DeviceInfo(kind="cpu", bf16=cpu_supports_bf16(), count=0, name="CPU")


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 compute (AVX512-BF16 or AMX), where bf16 autocast
    roughly halves step time; on other CPUs bf16 is emulated and slower than fp32."""
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


def choose_attention(requested: str, device: DeviceInfo) -> str:
    """Resolve ``model.attn_implementation``: ``auto`` means FlashAttention-2 when ``flash-attn``
    is installed and a CUDA device is present, else PyTorch SDPA."""
    from ftx.errors import BadInput

    if requested == "flash_attention_2" and not (device.kind == "cuda" and flash_attn_available()):
        raise BadInput(
            "model.attn_implementation=flash_attention_2 needs a CUDA GPU and flash-attn",
            hint="pip install 'ftx-fft[flash]' on a CUDA machine, or use sdpa",
        )
    if requested != "auto":
        return requested
    if device.kind == "cuda" and flash_attn_available():
        return "flash_attention_2"
    return "sdpa"


def choose_dtype(requested: str, device: DeviceInfo) -> str:
    """Resolve ``model.dtype``: ``auto`` keeps float32 master weights on the CPU (bf16 compute
    comes from autocast, ``train.bf16``) and loads bfloat16 on GPUs that support it."""
    if requested != "auto":
        return requested
    if device.kind == "cuda" and device.bf16:
        return "bfloat16"
    return "float32"
