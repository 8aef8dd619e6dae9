"""``ftx plan`` for full fine-tuning: every weight trains with AdamW (math in ftx.estimates)."""

from __future__ import annotations

from ftx.estimates import EstimateRequest, MemoryEstimate, estimator


@estimator
def estimate(request: EstimateRequest) -> MemoryEstimate:
    """Weights, gradients and AdamW state for every parameter; activations in every block.

    With FSDP on several GPUs (``method.fsdp`` not ``off``) the weights, gradients and optimizer
    state are sharded over ``device.count`` processes; activations are per process.
    """
    shape, options, device = request.shape, request.options, request.device
    result = request.dense(
        trainable_params=shape.total_params(),
        trainable_linear_params=shape.layers * shape.block_linear_params(),
        layers_with_grad=shape.layers,
        head_trainable=True,
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
