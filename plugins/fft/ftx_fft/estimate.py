"""``ftx plan`` for full fine-tuning: every weight trains with AdamW (shared math in ftx.plan)."""

from __future__ import annotations

from typing import Any

from ftx.plan import MemoryEstimate, estimate_dense, model_shape, precision_for


def estimate(
    model_config: Any,
    seq_len: int,
    batch_size: int,
    options: dict[str, Any],
    device: Any,
    dtype: str,
) -> MemoryEstimate:
    """Weights, gradients and AdamW state for every parameter; activations in every block.

    With FSDP on several GPUs (``method.fsdp`` not ``off``) the weights, gradients and optimizer
    state are sharded over ``device.count`` processes; activations are per process.
    """
    shape = model_shape(model_config)
    total = shape.total_params()
    linear = shape.layers * shape.block_linear_params()
    notes: list[str] = []
    result = estimate_dense(
        shape,
        seq_len=seq_len,
        batch_size=batch_size,
        precision=precision_for(device, dtype),
        device_kind=device.kind,
        trainable_params=total,
        trainable_linear_params=linear,
        layers_with_grad=shape.layers,
        head_trainable=True,
        notes=notes,
    )
    shards = device.count if options.get("fsdp", "off") != "off" and device.count > 1 else 1
    if shards > 1:
        result.weights //= shards
        result.gradients //= shards
        result.optimizer //= shards
        result.notes.append(f"FSDP {options['fsdp']}: states sharded over {shards} GPUs")
    if options.get("fsdp_offload") or options.get("deepspeed"):
        result.notes.append("offload/DeepSpeed settings are not modelled (upper bound)")
    return result
