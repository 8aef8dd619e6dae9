"""Every device-dependent precision choice of a run, decided here once (torch-free).

The rules, as FastChat's FSDP recipe, LLaMA-Factory and the QLoRA paper train:

* **fp32 master weights everywhere by default** (``model.dtype=auto``). A bf16 weight holds 8
  significant bits: an Adam-sized step at lr 2e-5 is below half a unit in the last place of most
  weights and rounds away (:func:`ftx.precision.lost_update_share` measures it). Pure bf16
  weights only on request (``model.dtype=bfloat16``), and the summary says so.
* **Half-precision compute through autocast**: bf16 where the device supports it (Ampere and
  later, CPUs with AVX512-BF16/AMX); on CUDA GPUs without bf16 (T4, V100: compute capability
  < 8.0) fp16 autocast with the Trainer's loss scaling over the fp32 masters; fp32 otherwise.
  ``train.bf16=true`` forced on such a GPU is bad input (:func:`ftx.config.checks
  .check_precision`).
* **Partial tuning** keeps its trained weights as fp32 masters and its frozen weights in the
  autocast dtype on GPUs (:func:`frozen_dtype`).
* **4-bit bases** compute in bf16, else fp16 on CUDA, else fp32 (``method.compute_dtype=auto``)
  and store their packed weights in the compute dtype on GPUs (FSDP needs one dtype per shard).
* **Activation checkpointing** on GPUs by default, non-reentrant (``use_reentrant=False``, passed
  as transformers 5 expects: ``activation_checkpointing_kwargs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftx.context import DeviceInfo

AUTO = "auto"
CHECKPOINTING_KWARGS = {"use_reentrant": False}
"""``train.activation_checkpointing_kwargs`` when checkpointing is on and the user gave none:
non-reentrant checkpointing works with frozen inputs (LoRA, k-bit bases) and with FSDP."""


@dataclass(frozen=True)
class TrainingPrecision:
    """How a run holds and computes: ``weights`` (the dtype trained weights are held and
    updated in) and ``autocast`` (``"bfloat16"``, ``"float16"`` or None)."""

    weights: str
    autocast: str | None

    @property
    def loss_scaling(self) -> bool:
        """fp16 autocast needs a gradient scaler (the Trainer's, with ``train.fp16``)."""
        return self.autocast == "float16"

    @property
    def mode(self) -> str:
        """``mixed-bf16``, ``mixed-fp16``, ``pure-bf16``, ``pure-fp16`` or ``fp32``."""
        if self.weights != "float32":
            return f"pure-{'bf16' if self.weights == 'bfloat16' else 'fp16'}"
        if self.autocast is None:
            return "fp32"
        return f"mixed-{'bf16' if self.autocast == 'bfloat16' else 'fp16'}"

    def describe(self) -> str:
        """One line for ``summary.json`` and the console."""
        half = {"bfloat16": "bf16", "float16": "fp16"}
        if self.mode == "fp32":
            return "fp32 weights and compute"
        if self.weights == "float32":
            scaling = " with loss scaling" if self.loss_scaling else ""
            return f"fp32 master weights, {half[self.autocast or '']} autocast{scaling}"
        return (
            f"pure {half.get(self.weights, self.weights)} weights (requested with model.dtype): "
            "updates smaller than half a unit in the last place round away; no compensated "
            "(Kahan / stochastic-rounding) optimizer is used"
        )


def master_dtype(requested: str, device: DeviceInfo) -> str:
    """Resolve ``model.dtype``: ``auto`` is float32 master weights on every device (half
    precision comes from autocast); an explicit dtype is kept. BadInput for ``bfloat16`` on a
    CUDA GPU without bf16."""
    from ftx.errors import BadInput

    if requested == AUTO:
        return "float32"
    if requested == "bfloat16" and device.kind == "cuda" and not device.bf16:
        raise BadInput(
            f"model.dtype=bfloat16: this GPU ({device.name}) has no bf16 support",
            hint="leave model.dtype=auto (fp32 master weights with fp16 autocast here)",
        )
    return requested


def autocast_flags(device: DeviceInfo, weights: str, bf16: Any, fp16: Any) -> tuple[bool, bool]:
    """``(train.bf16, train.fp16)`` with ``auto`` values decided for ``device`` and the master
    ``weights`` dtype; explicit booleans are kept (conflicts are checked later).

    bf16 where the device supports it (unless fp16 was asked for); fp16 autocast with loss
    scaling on a CUDA GPU without bf16 over fp32 weights (the Trainer cannot unscale fp16
    gradients of fp16 weights); neither on other devices."""
    if bf16 == AUTO:
        bf16 = bool(device.bf16) and fp16 is not True
    if fp16 == AUTO:
        fp16 = device.kind == "cuda" and not device.bf16 and not bf16 and weights == "float32"
    return bool(bf16), bool(fp16)


def training_precision(weights: str, train: dict[str, Any]) -> TrainingPrecision:
    """The :class:`TrainingPrecision` of a resolved run (``weights``: ``run.dtype``)."""
    autocast = "bfloat16" if train.get("bf16") else "float16" if train.get("fp16") else None
    return TrainingPrecision(weights=weights, autocast=autocast)


def checkpointing_kwargs(train: dict[str, Any]) -> dict[str, Any] | None:
    """``train.activation_checkpointing_kwargs`` for a resolved ``train`` section: the user's
    when given, :data:`CHECKPOINTING_KWARGS` when checkpointing is on, else None."""
    given = train.get("activation_checkpointing_kwargs")
    if given or not train.get("activation_checkpointing"):
        return given
    return dict(CHECKPOINTING_KWARGS)


def frozen_dtype(device: DeviceInfo, train: dict[str, Any], weights: str) -> str | None:
    """The dtype frozen weights of a partially tuned model are held in: the autocast dtype on
    GPUs when the trained weights are fp32 masters (LLaMA-Factory's freeze tuning: the frozen
    part only feeds autocast matmuls, so a half copy loses nothing and halves its memory); None
    (keep the load dtype) elsewhere — on a CPU autocast would keep converting them."""
    if not device.is_gpu or weights != "float32":
        return None
    return training_precision(weights, train).autocast


def quantized_compute_dtype(chosen: str, device: DeviceInfo) -> str:
    """The matmul dtype of a 4-bit base (``method.compute_dtype``): ``auto`` is bf16 where the
    device supports it, fp16 on other CUDA GPUs (T4, V100), else fp32."""
    if chosen != AUTO:
        return chosen
    if device.bf16:
        return "bfloat16"
    return "float16" if device.kind == "cuda" else "float32"


def quant_storage_dtype(compute: str, device: DeviceInfo) -> str | None:
    """The dtype 4-bit weights are packed in: the compute dtype on GPUs (so FSDP can shard
    them beside the other half-precision parameters), bitsandbytes' own (uint8) elsewhere."""
    if not device.is_gpu or compute == "float32":
        return None
    return compute


def lost_update_share(weights: Any, update: Any, dtype: Any) -> float:
    """The share of ``weights + update`` entries that come out unchanged when the weights are
    held in ``dtype`` (the update rounded away). Imports torch."""
    held = weights.to(dtype)
    return float(((held + update.to(dtype)) == held).float().mean())
