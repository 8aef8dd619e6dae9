"""Failures a run explains instead of dumping a traceback: out of memory, non-finite loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftx.errors import RunFailed


def is_out_of_memory(exc: BaseException) -> bool:
    """CPU or GPU allocation failure (torch raises MemoryError, OutOfMemoryError or a
    RuntimeError from its CPU allocator)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def out_of_memory_advice(
    run: Any, exc: BaseException, *, lighter_methods: list[tuple[str, int]]
) -> str:
    """Say what was tried and what would fit instead. ``lighter_methods``: installed methods
    with a smaller estimated peak (:func:`lighter_methods`)."""
    args = run.train_args
    batch = int(args.get("per_device_train_batch_size", 1))
    length = run.config["data"]["max_length"]
    lines = [
        f"out of memory on {run.device.name} with plugin '{run.plugin}' "
        f"(batch {batch}, max_length {length}, dtype {run.dtype}, "
        f"activation checkpointing {bool(args.get('activation_checkpointing'))}).",
        "Try one of:",
    ]
    if batch > 1:
        accumulation = int(args.get("gradient_accumulation_steps", 1)) * 2
        lines.append(
            f"  --set train.per_device_train_batch_size={max(1, batch // 2)} "
            f"--set train.gradient_accumulation_steps={accumulation}  (same effective batch)"
        )
    if not args.get("activation_checkpointing"):
        lines.append("  --set train.gradient_checkpointing=true  (recompute activations)")
    lines.append(f"  --set data.max_length={max(64, length // 2)}  (shorter examples)")
    for name, peak in lighter_methods:
        lines.append(f"  --plugin {name}  (estimated peak {peak / 2**30:.1f} GiB)")
    lines.append("`ftx plan --model M` estimates what fits before you run.")
    return "\n".join(lines)


def lighter_methods(run: Any) -> list[tuple[str, int]]:
    """``[(method, estimated peak bytes), …]``, lightest first: installed methods whose
    ``ftx plan`` estimate for this run's model, sequence length and batch size is below the run's
    own method's — or every other method with an estimate when the run's method has none.
    Asked through the ``estimate_memory`` hook; no method is named here. ``[]`` when nothing can
    be estimated."""
    try:
        from ftx.planner import plan

        result = plan(
            str(run.model_path),
            seq_len=int(run.config["data"]["max_length"]),
            batch_size=int(run.train_args.get("per_device_train_batch_size", 1)),
            device=run.device.kind if run.device.kind in ("cpu", "cuda") else "auto",
            dtype=run.dtype,
        )
    except Exception:  # advice must never hide the out-of-memory error itself
        return []
    peaks = {row["name"]: row["peak_bytes"] for row in result["methods"] if row["peak_bytes"]}
    own = peaks.pop(run.plugin, None)
    lighter = [(n, peak) for n, peak in peaks.items() if own is None or peak < own]
    return sorted(lighter, key=lambda item: item[1])


class NonFiniteLoss(RunFailed):
    """Training produced a NaN/inf loss or gradient; the run stops and keeps its last checkpoint."""

    def __init__(self, step: int, checkpoint: Path | None, run: Any) -> None:
        lr = run.train_args.get("learning_rate")
        keep = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was saved"
        super().__init__(
            f"non-finite loss or gradient at step {step}; training stopped ({keep}). "
            f"Likely causes: learning rate too high (now {lr}), fp16 overflow "
            f"(dtype {run.dtype}, bf16={run.train_args.get('bf16')}, fp16="
            f"{run.train_args.get('fp16', False)}), or bad data. Lower train.learning_rate or "
            "use bf16/fp32."
        )
