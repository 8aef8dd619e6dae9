"""Peak training memory of one method: :class:`MemoryEstimate` and the dense-method builder.

The model of peak training memory (bytes, per process)::

    weights       parameters in their load dtype (+ the bf16 working copy autocast keeps of
                  weights that receive gradients, when fp32 weights train under bf16 autocast)
    gradients     one per trainable parameter, in the parameter's dtype
    optimizer     AdamW: two moments per trainable parameter, in the parameter's dtype
    activations   tensors saved for backward, per token and per decoder block that gradients
                  flow through, plus the loss head's transient tiles (ftx.estimates.activations),
                  for every sequence of the step (two per row for a chosen/rejected pair)
    reference     a frozen copy of the weights, for an objective with a reference model
                  (DPO, KTO) on a method that trains the model's own weights; adapter methods
                  disable their adapters instead and hold no copy
    quantization  4/8-bit constants (absmax, double-quant tables) and one dequantised weight;
                  on a CPU also bitsandbytes' per-block workspace and the fp32 checkpoint that
                  stays memory-mapped after quantising (ftx.estimates.quantized)
    export        adapter methods merge into the unquantised base, tensor by tensor
                  (:func:`ftx.estimates.merge_bytes`); on a CPU the peak is the larger of
                  training and export, see :meth:`MemoryEstimate.peak`
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ftx.estimates.activations import activation_pair
from ftx.estimates.precision import Precision
from ftx.estimates.shape import ModelShape


@dataclass
class MemoryEstimate:
    """Peak training memory of one method, in bytes, split by what holds it.

    ``activations`` is without gradient checkpointing, ``activations_checkpointed`` with it
    (each decoder block keeps only its input; one block is recomputed at a time).
    ``quantization_overhead`` holds quantisation constants and dequantisation buffers.
    ``reference`` is a frozen reference copy of the weights (an objective with a reference
    model on a non-adapter method: :meth:`ftx.estimates.EstimateRequest.dense`).
    ``export`` is memory the export step adds on top of what the finished training still holds
    (adapter methods merge into the unquantised base): host RAM, which on a CPU is the same
    memory that training used. ``notes`` are short human-readable caveats.
    """

    weights: int
    gradients: int
    optimizer: int
    activations: int
    activations_checkpointed: int
    quantization_overhead: int = 0
    trainable_params: int = 0
    total_params: int = 0
    export: int = 0
    notes: list[str] = field(default_factory=list)
    reference: int = 0

    def total(self, checkpointing: bool = False) -> int:
        """Peak bytes during training: every component, activations per ``checkpointing``."""
        acts = self.activations_checkpointed if checkpointing else self.activations
        return (
            self.weights
            + self.gradients
            + self.optimizer
            + acts
            + self.quantization_overhead
            + self.reference
        )

    def peak(self, checkpointing: bool = False, *, with_export: bool = False) -> int:
        """``total(checkpointing)``, or the export step's peak if that is higher and
        ``with_export`` (a CPU run, where training and export share the same memory).

        At export the process still holds the steady state plus part of the activations'
        memory (the CPU allocator keeps freed blocks; half, as measured on SmolLM2 and a 280M
        Llama), and the export's own allocations come on top.
        """
        train = self.total(checkpointing)
        if not with_export or not self.export:
            return train
        return max(train, self.export_peak(checkpointing))

    def export_peak(self, checkpointing: bool = False) -> int:
        """Peak bytes while the export step runs after training (0 when it adds nothing): the
        steady state, half the activations' memory the allocator still keeps, and ``export``."""
        if not self.export:
            return 0
        acts = self.activations_checkpointed if checkpointing else self.activations
        return self.total(checkpointing) + self.export - acts // 2

    def as_dict(self) -> dict[str, Any]:
        """Every field (bytes and counts) plus ``total`` and ``total_checkpointed``."""
        out = asdict(self)
        out["total"] = self.total(False)
        out["total_checkpointed"] = self.total(True)
        return out


def adamw_bytes(trainable_params: int, dtype_bytes: int) -> int:
    """AdamW state: ``exp_avg`` and ``exp_avg_sq``, each shaped and typed like the parameter."""
    return 2 * trainable_params * dtype_bytes


OPTIMIZER_MOMENTS: dict[str, int] = {
    "sgd": 0,
    "adafactor": 0,
    "lion": 1,
    "adagrad": 1,
    "rmsprop": 1,
    "ademamix": 3,
}
"""Per-parameter state tensors of the ``train.optim`` families that differ from AdamW's two
(``exp_avg``, ``exp_avg_sq``); matched by name prefix. transformers' ``sgd`` runs without
momentum and ``adafactor`` keeps factored row/column statistics (a vector per matrix): both
are counted as no per-parameter state."""


def optimizer_state_bytes(optim: str | None, trainable_params: int, dtype_bytes: int = 4) -> int:
    """State of the ``train.optim`` optimizer (``None``: AdamW): its moments per trainable
    parameter (:data:`OPTIMIZER_MOMENTS`, else AdamW's two), each in the parameter's dtype, or
    one byte for an ``*8bit`` optimizer (bitsandbytes' and torchao's blockwise-quantised state;
    the per-block constants are under 1% and not counted), half a byte for ``*4bit``. Paging
    (``paged_*``) moves state to CPU memory under pressure; the bytes are the same."""
    name = (optim or "adamw").removeprefix("paged_")
    moments = next((n for k, n in OPTIMIZER_MOMENTS.items() if name.startswith(k)), 2)
    if name.endswith("8bit"):
        return moments * trainable_params
    if name.endswith("4bit"):
        return moments * trainable_params // 2
    return moments * trainable_params * dtype_bytes


def autocast_copy_bytes(linear_params: int, precision: Precision) -> int:
    """The bf16 copies autocast caches of fp32 weights that require grad (kept for backward)."""
    return 2 * linear_params if precision.mode == "mixed" else 0


def estimate_dense(
    shape: ModelShape,
    *,
    seq_len: int,
    batch_size: int,
    precision: Precision,
    device_kind: str,
    trainable_params: int,
    trainable_linear_params: int,
    layers_with_grad: int,
    head_trainable: bool,
    notes: list[str] | None = None,
    frozen_weight_bytes: int | None = None,
    optim: str | None = None,
) -> MemoryEstimate:
    """Estimate a method that trains a subset of an unquantised model's own weights with AdamW
    (full fine-tuning: everything; partial fine-tuning: chosen blocks).

    ``trainable_linear_params`` are the trainable weights that run through autocast matmuls
    (their bf16 copies stay cached for backward in ``mixed`` precision); ``layers_with_grad``
    the decoder blocks that gradients flow through (from the first trainable block on).
    ``notes`` is copied, never changed. ``frozen_weight_bytes``: bytes per weight the frozen
    part is held in when it differs from the trained part (partial tuning on a GPU keeps frozen
    weights in the autocast dtype, :func:`ftx.precision.frozen_dtype`).
    """
    total = shape.total_params()
    wb = precision.weight_bytes
    plain, checkpointed = activation_pair(
        shape,
        batch_size=batch_size,
        seq_len=seq_len,
        precision=precision,
        device_kind=device_kind,
        layers_with_grad=layers_with_grad,
        head_trainable=head_trainable,
    )
    notes = list(notes or [])
    copy = autocast_copy_bytes(trainable_linear_params, precision)
    if copy:
        notes.append("weights include the bf16 autocast copy of trained matrices")
    if optim:
        notes.append(f"optimizer {optim}")
    frozen = total - trainable_params
    held = trainable_params * wb + frozen * (frozen_weight_bytes or wb)
    return MemoryEstimate(
        weights=held + copy,
        gradients=trainable_params * wb,
        optimizer=optimizer_state_bytes(optim, trainable_params, wb),
        activations=plain,
        activations_checkpointed=checkpointed,
        trainable_params=trainable_params,
        total_params=total,
        notes=notes,
    )
