"""Failures a run explains instead of dumping a traceback: out of memory, a full disk,
non-finite loss."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

from ftx.errors import RunFailed

DISK_FULL_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large",
    errno.EDQUOT: "disk quota exceeded",
}
"""The write failures that mean "no room", and how a message names each."""
# The libraries that write weights report the same errors as text: safetensors as
# "I/O error: No space left on device (os error 28)", tokenizers and json through OSError.
_DISK_FULL_TEXTS = {os.strerror(code).lower(): cause for code, cause in DISK_FULL_ERRNOS.items()}
# torch.save's writer says only that a write failed ("PytorchStreamWriter failed writing file
# data/0: file write failed", "[enforce fail at inline_container.cc:…] unexpected pos …"); the
# cause is then read from the filesystem (:func:`_room_left`). numpy's ``tofile`` (the GGUF
# writer) says "12288 requested and 5808 written".
_TORCH_WRITE_FAILURES = ("pytorchstreamwriter failed", "inline_container.cc", "requested and")
LOW_SPACE_BYTES = 64 * 2**20
"""Free space below which a write that failed without a stated cause is taken for a full disk."""


def is_out_of_memory(exc: BaseException) -> bool:
    """CPU or GPU allocation failure (torch raises MemoryError, OutOfMemoryError or a
    RuntimeError from its CPU allocator)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def disk_full_cause(exc: BaseException, where: Path | None = None) -> str | None:
    """Why ``exc`` (or an exception it was raised from) is a write that found no room: ``"no
    space left on device"``, ``"file too large"`` (a file-size limit: ``ulimit -f``) or ``"disk
    quota exceeded"``; None when it is something else. ``where``: the directory being written,
    consulted when the error does not state its cause (torch's serializer)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return DISK_FULL_ERRNOS[exc.errno]
        text = str(exc).lower()
        for phrase, cause in _DISK_FULL_TEXTS.items():
            if phrase in text:
                return cause
        if any(marker in text for marker in _TORCH_WRITE_FAILURES):
            return _room_left(where or Path.cwd())
        exc = exc.__cause__ or exc.__context__
    return None


def _room_left(where: Path) -> str | None:
    """The cause of a failed write read from the system: a file-size limit, or (almost) no free
    space on ``where``'s filesystem; None when neither explains it."""
    import resource

    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
        return DISK_FULL_ERRNOS[errno.EFBIG]
    free = free_bytes(where)
    if free is not None and free < LOW_SPACE_BYTES:
        return DISK_FULL_ERRNOS[errno.ENOSPC]
    return None


def free_bytes(where: Path) -> int | None:
    """Free bytes on the filesystem of ``where`` (or of its nearest existing parent)."""
    for path in (where, *where.parents):
        try:
            return shutil.disk_usage(path).free
        except OSError:
            continue
    return None


def disk_full_advice(
    exc: BaseException, cause: str, *, run_dir: Path, checkpoint: Path | None
) -> str:
    """One line: the cause, where the run was writing, the room there, what is kept, the fix.
    ``checkpoint``: the last complete checkpoint (None when there is none to resume from)."""
    import resource

    from ftx.estimates.units import format_bytes

    room = []
    free = free_bytes(run_dir)
    if free is not None:
        room.append(f"{format_bytes(free)} free there")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if cause == DISK_FULL_ERRNOS[errno.EFBIG] and limit != resource.RLIM_INFINITY:
        room.append(f"file size limit {format_bytes(limit)}: ulimit -f")
        make_room = "raise the file size limit (ulimit -f)"
    else:
        make_room = "free some space"
    target = getattr(exc, "filename", None) or run_dir
    where = f"{target} ({'; '.join(room)})" if room else str(target)
    if checkpoint is None:
        return (
            f"{cause} while writing to {where}: nothing to resume from; {make_room}, then start "
            f"again with: ftx run --overwrite --output {run_dir}"
        )
    return (
        f"{cause} while writing to {where}: the last complete checkpoint, {checkpoint.name}, "
        f"is intact; {make_room}, then continue with: ftx run --resume --output {run_dir}"
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
    ``ftx plan`` estimate for this run's model, sequence length, batch size and objective is below
    the run's own method's — or every other method with an estimate when the run's method has none.
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
            objective=run.objective,
            optim=run.train_args.get("optim"),
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
        fp16 = bool(run.train_args.get("fp16")) or run.dtype == "float16"
        if fp16:  # the T4/V100 path: fp16's range ends at 65504, bf16's and fp32's do not
            cause = (
                f"fp16 overflow (this run computes in fp16: dtype {run.dtype}, fp16 autocast "
                f"{bool(run.train_args.get('fp16'))}; activations or the loss left fp16's range "
                "despite loss scaling), a learning rate too high (now "
                f"{lr}), or bad data. Lower train.learning_rate, or train in fp32 "
                "(--set train.fp16=false) on a GPU without bf16"
            )
        else:
            cause = (
                f"learning rate too high (now {lr}), fp16 overflow (dtype {run.dtype}, "
                f"bf16={run.train_args.get('bf16')}, fp16=False), or bad data. Lower "
                "train.learning_rate or use bf16/fp32"
            )
        super().__init__(
            f"non-finite loss or gradient at step {step}; training stopped ({keep}). "
            f"Likely causes: {cause}."
        )
