"""``ftx plan`` for QLoRA: a 4/8-bit frozen base plus fp32 LoRA adapters (math in ftx.plan)."""

from __future__ import annotations

from typing import Any

from ftx.options import AUTO
from ftx.plan import (
    QUANTIZED_LINEAR_EXTRA,
    MemoryEstimate,
    Precision,
    activation_bytes,
    adamw_bytes,
    autocast_copy_bytes,
    lora_activation_extra,
    lora_params,
    mapped_checkpoint_bytes,
    model_shape,
    quantized_bytes,
    quantized_workspace_bytes,
)


def estimate(
    model_config: Any,
    seq_len: int,
    batch_size: int,
    options: dict[str, Any],
    device: Any,
    dtype: str,
) -> MemoryEstimate:
    """Every linear inside the decoder blocks is quantised (``method.bits``); embeddings,
    norms and an untied head stay fp32 (``prepare_model_for_kbit_training`` upcasts them, on
    GPUs too); LoRA adapters and ``modules_to_save`` copies train in fp32 with AdamW. Compute
    runs in bf16 where the device has it (``method.compute_dtype``). Export merges into the
    unquantised base, reloaded in fp32 while the trained model is still in memory.
    """
    shape = model_shape(model_config)
    notes: list[str] = []
    known = {name for name, *_ in shape.block_linears()}
    targets = options.get("target_modules", "all-linear")
    if isinstance(targets, str):
        targets = None if targets == "all-linear" else [t.strip() for t in targets.split(",")]
    if targets is not None and not set(targets) & known:
        notes.append("target_modules not recognised for this architecture: counted all-linear")
        targets = None
    compute = options.get("compute_dtype", AUTO)
    if compute == AUTO:
        compute = "bfloat16" if device.bf16 else "float32"
    precision = Precision(weights="float32", autocast=compute != "float32")

    total = shape.total_params()
    quantized = shape.layers * shape.block_linear_params()
    bits = int(options.get("bits", 4))
    data, constants = quantized_bytes(
        quantized, bits, double_quant=bool(options.get("double_quant", True))
    )
    r = int(options.get("r", 16))
    lora = lora_params(shape, r, targets)
    if options.get("use_dora"):
        lora += shape.layers * sum(
            out * n
            for name, _, out, n in shape.block_linears()
            if targets is None or name in targets
        )
        notes.append("DoRA: adapter magnitudes counted; its weight-norm pass is not modelled")
    saved = 0
    for module in options.get("modules_to_save") or []:
        if module in {"lm_head", "embed_tokens"}:
            saved += shape.vocab * shape.hidden
        else:
            notes.append(f"modules_to_save {module!r}: size unknown, not counted")
    trainable = lora + saved
    largest = max(a * b for _, a, b, _ in shape.block_linears())
    extra = lora_activation_extra(
        shape, targets, precision, dropout=float(options.get("lora_dropout", 0.0)) > 0
    )
    if precision.mode == "mixed":
        extra = tuple(x + y for x, y in zip(extra, QUANTIZED_LINEAR_EXTRA, strict=True))
    acts = {
        ckpt: activation_bytes(
            shape,
            batch_size=batch_size,
            seq_len=seq_len,
            precision=precision,
            device_kind=device.kind,
            layers_with_grad=shape.layers,
            checkpointing=ckpt,
            head_trainable="lm_head" in (options.get("modules_to_save") or []),
            extra=extra,
        )
        for ckpt in (False, True)
    }
    mapped = mapped_checkpoint_bytes(shape, model_config, device)
    if mapped:
        notes.append("quant. includes the fp32 checkpoint kept memory-mapped on the CPU")
    notes.append(
        f"{bits}-bit base; LoRA r={r} on {'all linears' if targets is None else ', '.join(targets)}"
    )
    return MemoryEstimate(
        weights=data
        + 4 * (total - quantized)
        + 4 * trainable
        + autocast_copy_bytes(trainable, precision),
        gradients=4 * trainable,
        optimizer=adamw_bytes(trainable, 4),
        activations=acts[False],
        activations_checkpointed=acts[True],
        quantization_overhead=constants
        + largest * precision.compute_bytes
        + quantized_workspace_bytes(shape, device)
        + mapped,
        trainable_params=trainable,
        total_params=total + trainable,
        export=4 * total,
        notes=notes,
    )
