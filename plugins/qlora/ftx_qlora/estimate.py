"""``ftx plan`` for QLoRA: a 4/8-bit frozen base plus fp32 LoRA adapters (math in ftx.estimates).

What the options mean (targets, compute dtype) comes from :mod:`ftx_qlora.settings`, which the
run's hooks use too.
"""

from __future__ import annotations

from ftx.estimates import (
    QUANTIZED_LINEAR_EXTRA,
    EstimateRequest,
    MemoryEstimate,
    Precision,
    autocast_copy_bytes,
    estimator,
    lora_activation_extra,
    lora_params,
    mapped_checkpoint_bytes,
    merge_bytes,
    optimizer_state_bytes,
    quantized_bytes,
    quantized_workspace_bytes,
)
from ftx_qlora.settings import PAGED_OPTIMIZER, compute_dtype, target_modules


@estimator
def estimate(request: EstimateRequest) -> MemoryEstimate:
    """Every linear inside the decoder blocks is quantised (``method.bits``); embeddings,
    norms and an untied head stay fp32 (``prepare_model_for_kbit_training`` upcasts them, on
    GPUs too); LoRA adapters and ``modules_to_save`` copies train in fp32 with AdamW. Compute
    runs in bf16 where the device has it (``method.compute_dtype``). Export merges into the
    unquantised base tensor by tensor (:func:`ftx.estimates.merge_bytes`) while the trained
    model is still in memory.
    """
    shape, options, device = request.shape, request.options, request.device
    notes: list[str] = []
    known = {name for name, *_ in shape.block_linears()}
    targets = target_modules(options["target_modules"])
    if targets is not None and not set(targets) & known:
        notes.append("target_modules not recognised for this architecture: counted all-linear")
        targets = None
    compute = compute_dtype(options["compute_dtype"], device)
    precision = Precision(weights="float32", autocast=compute != "float32")

    total = shape.total_params()
    quantized = shape.layers * shape.block_linear_params()
    bits = int(options["bits"])
    data, constants = quantized_bytes(quantized, bits, double_quant=bool(options["double_quant"]))
    r = int(options["r"])
    lora = lora_params(shape, r, targets)
    if options["use_dora"]:
        lora += shape.layers * sum(
            out * n
            for name, _, out, n in shape.block_linears()
            if targets is None or name in targets
        )
        notes.append("DoRA: adapter magnitudes counted; its weight-norm pass is not modelled")
    saved = 0
    for module in options["modules_to_save"] or []:
        if module in {"lm_head", "embed_tokens"}:
            saved += shape.vocab * shape.hidden
        else:
            notes.append(f"modules_to_save {module!r}: size unknown, not counted")
    trainable = lora + saved
    largest = max(a * b for _, a, b, _ in shape.block_linears())
    extra = lora_activation_extra(
        shape, targets, precision, dropout=float(options["lora_dropout"]) > 0
    )
    if precision.mode == "mixed":
        extra = tuple(x + y for x, y in zip(extra, QUANTIZED_LINEAR_EXTRA, strict=True))
    activations, activations_checkpointed = request.activations(
        layers_with_grad=shape.layers,
        head_trainable="lm_head" in (options["modules_to_save"] or []),
        extra=extra,
        precision=precision,
    )
    mapped = mapped_checkpoint_bytes(shape, request.model_config, device)
    if mapped:
        notes.append("quant. includes the fp32 checkpoint kept memory-mapped on the CPU")
    optim = request.optim or (PAGED_OPTIMIZER if device.kind == "cuda" else None)
    if optim == PAGED_OPTIMIZER:
        notes.append(f"optimizer {optim} (32-bit AdamW state, paged to CPU memory on spikes)")
    elif optim:
        notes.append(f"optimizer {optim}")
    notes.append(
        f"{bits}-bit base; LoRA r={r} on {'all linears' if targets is None else ', '.join(targets)}"
    )
    return MemoryEstimate(
        weights=data
        + 4 * (total - quantized)
        + 4 * trainable
        + autocast_copy_bytes(trainable, precision),
        gradients=4 * trainable,
        optimizer=optimizer_state_bytes(optim, trainable, 4),
        activations=activations,
        activations_checkpointed=activations_checkpointed,
        quantization_overhead=constants
        + largest * precision.compute_bytes
        + quantized_workspace_bytes(shape, device)
        + mapped,
        trainable_params=trainable,
        total_params=total + trainable,
        # The streaming merge keeps about one weight in anonymous memory, but it reads the
        # unquantised base through a memory map whose pages count in the process's RSS (what
        # the calibration test measures): a run with an fp32 base reaches its size.
        export=max(
            4 * total,
            merge_bytes(
                shape, trainable, streamed=not (options["use_dora"] or options["modules_to_save"])
            ),
        ),
        notes=notes,
    )
