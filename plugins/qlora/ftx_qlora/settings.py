"""What qlora's options mean, written once for the run's hooks and for ``ftx plan``'s estimate.

Torch-free: the entry-point module and :mod:`ftx_qlora.estimate` both import it at load time.
"""

from __future__ import annotations

from typing import Any

from ftx.context import DeviceInfo
from ftx.precision import quant_storage_dtype, quantized_compute_dtype

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
    """``method.compute_dtype`` resolved for ``device`` by the core's one rule
    (:func:`ftx.precision.quantized_compute_dtype`: bf16, else fp16 on CUDA, else fp32)."""
    return quantized_compute_dtype(chosen, device)


def quantization_settings(options: dict[str, Any], device: DeviceInfo | Any) -> dict[str, Any]:
    """The ``BitsAndBytesConfig`` keywords for ``options`` on ``device``, dtypes as names
    (``ftx.loading.torch_dtype`` turns them into torch dtypes): NF4 + double quantisation by
    default, compute in :func:`compute_dtype`, 4-bit weights stored in the compute dtype on
    GPUs (:func:`ftx.precision.quant_storage_dtype`)."""
    if options["bits"] != 4:
        return {"load_in_8bit": True}
    compute = compute_dtype(options["compute_dtype"], device)
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": options["quant_type"],
        "bnb_4bit_use_double_quant": options["double_quant"],
        "bnb_4bit_compute_dtype": compute,
        "bnb_4bit_quant_storage": quant_storage_dtype(compute, device),
    }


DTYPE_KEYS = ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage")
"""The keywords of :func:`quantization_settings` that name a dtype."""


def load_dtype(options: dict[str, Any], device: DeviceInfo | Any) -> str:
    """The dtype the unquantised parts (embeddings, norms, head) load in: the compute dtype on
    GPUs, fp32 elsewhere (PEFT's k-bit preparation casts them to fp32 for training anyway)."""
    return compute_dtype(options["compute_dtype"], device) if device.is_gpu else "float32"


PAGED_OPTIMIZER = "paged_adamw_32bit"
"""``train.optim`` on CUDA: the QLoRA paper's paged AdamW (32-bit state, as its reference
implementation's default), whose state bitsandbytes pages to CPU memory on a memory spike."""


def fsdp_qlora(options: dict[str, Any], device: DeviceInfo | Any) -> bool:
    """FSDP + QLoRA (``method.fsdp`` on a CUDA GPU): every parameter, the packed 4-bit weights
    and the LoRA adapters included, is held in the compute dtype so FSDP can flatten them
    together (Answer.AI's recipe, PEFT's FSDP-QLoRA guide); elsewhere ``method.fsdp`` only
    names the engine the summary reports."""
    return options.get("fsdp", "off") != "off" and device.kind == "cuda"


def check_fsdp_qlora(options: dict[str, Any], device: DeviceInfo | Any) -> None:
    """BadInput for FSDP + QLoRA settings that cannot shard: 8-bit bases (bitsandbytes' int8
    weights do not shard) and GPUs without bf16 (fp16 adapters cannot take loss scaling)."""
    from ftx.errors import BadInput

    if not fsdp_qlora(options, device):
        return
    if options["bits"] != 4:
        raise BadInput(
            f"method.fsdp={options['fsdp']} with method.bits=8: FSDP shards 4-bit bases only",
            hint="use method.bits=4 with FSDP, or method.fsdp=off",
        )
    if compute_dtype(options["compute_dtype"], device) != "bfloat16":
        raise BadInput(
            f"method.fsdp={options['fsdp']}: FSDP + QLoRA holds every parameter in the compute "
            f"dtype, which must be bfloat16 (this GPU, {device.name}, computes in "
            f"{compute_dtype(options['compute_dtype'], device)})",
            hint="use method.fsdp=off on GPUs without bf16 (T4, V100), or a bf16 GPU",
        )
