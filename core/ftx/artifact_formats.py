"""The formats a finished run's model can be (re)written in, for ``ftx export``: ``full``,
``merged`` or ``adapter``.

* ``full``: the whole model for every method (the run's ``model/``, cast to ``dtype``);
* ``merged``: an adapter run's base with the adapter folded in (rebuilt from ``adapter/`` and
  the unquantised base, exactly as the run's own ``model/`` was);
* ``adapter``: the PEFT adapter alone;
* ``gguf``: one ``.gguf`` file for llama.cpp and an Ollama ``Modelfile`` (:mod:`ftx.gguf_export`).

``dtype`` None keeps every tensor's own dtype (a bf16 checkpoint stays bf16); weights are read
and written one tensor at a time (:mod:`ftx.merging`), in shards of at most 2 GB.

Writes go through a temporary directory and a rename: never a half-written artifact.
(Not to be confused with the ``export`` hook, which writes a run's own ``model/`` at the end of
training, nor ``ftx.adapters.export_adapter_method``, the helper adapter plugins answer it with.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ftx.errors import BadInput

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
FORMATS = ("full", "merged", "adapter")
"""What :func:`export_run` writes (``gguf`` is :mod:`ftx.gguf_export`'s)."""
RUN_PARTS = ("model", "adapter", "checkpoints")
"""A run's own directories, which no export may be written into."""


def export_artifact(
    run: Path,
    fmt: str,
    *,
    dtype: str | None = None,
    quant: str | None = None,
    out: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """``ftx export`` and ``RunResult.export``: ``fmt`` ``gguf`` (``quant``, default f16) into
    the ``.gguf`` file ``out`` (default ``RUN/export-gguf-QUANT/RUNNAME-QUANT.gguf``) with an
    Ollama Modelfile beside it, else :func:`export_run` into ``out`` (default
    :func:`default_target`). Returns what was written."""
    if fmt == "gguf":
        if dtype is not None:
            raise BadInput(
                "--dtype does not apply to --format gguf", hint="choose the type with --quant"
            )
        from ftx.gguf_export import check_gguf_export, export_gguf

        return export_gguf(check_gguf_export(run, quant or "f16", out, overwrite=overwrite))
    if quant is not None:
        raise BadInput("--quant applies to --format gguf only", hint="use --dtype")
    target = out if out is not None else default_target(run, fmt, dtype)
    return export_run(run, fmt, dtype, target, overwrite=overwrite)


def export_run(
    run: Path, fmt: str, dtype: str | None, target: Path, *, overwrite: bool = False
) -> Path:
    """Write the ``fmt`` artifact (``full``, ``merged`` or ``adapter``) of ``run`` to ``target``
    with floats in ``dtype`` (a key of :data:`DTYPES`; None: their own); return ``target``."""
    if fmt not in FORMATS:
        raise BadInput(
            f"format {fmt!r}: expected one of {', '.join(FORMATS)}",
            hint="a .gguf file: format gguf (ftx export --format gguf)",
        )
    if dtype is not None and dtype not in DTYPES:
        raise BadInput(
            f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}, or none to keep the run's own"
        )
    check_run(run)
    check_target(run, target)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise BadInput(f"{target} already exists", hint="pass --overwrite or choose --out")
    adapter = run / "adapter"
    if fmt in ("adapter", "merged") and not (adapter / "adapter_config.json").is_file():
        raise BadInput(
            f"run {run} has no adapter/ (its method trains full weights)",
            hint="use --format full",
        )
    from ftx.models import load_tokenizer
    from ftx.quiet import quiet_libraries

    quiet_libraries()
    tokenizer = load_tokenizer(run / "model")
    save_dtype = DTYPES[dtype] if dtype else None
    if fmt == "adapter":
        return _export_adapter(adapter, tokenizer, target, save_dtype)
    if fmt == "merged":
        from ftx.adapters import merge_adapter

        base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
        if not (Path(base) / "config.json").is_file():
            raise BadInput(f"the adapter's base model {base} is gone; cannot merge")
        return merge_adapter(adapter, Path(base), tokenizer, target, save_dtype=save_dtype)
    from ftx.merging import streaming_merge

    return streaming_merge(run / "model", tokenizer, target, dtype=save_dtype)


def default_target(run: Path, fmt: str, dtype: str | None) -> Path:
    """``RUN/export-FMT`` (``RUN/export-FMT-DTYPE`` when a dtype is chosen)."""
    return run / (f"export-{fmt}-{dtype}" if dtype else f"export-{fmt}")


def check_target(run: Path, target: Path) -> None:
    """BadInput when writing ``target`` (replaced whole with ``--overwrite``) would destroy
    the run: ``target`` is the run, holds it, is inside its ``model/``, ``adapter/`` or
    ``checkpoints/``, or is one of its files; or it is a file."""
    run_path, target_path = run.resolve(), target.resolve()
    if run_path == target_path or run_path.is_relative_to(target_path):
        raise BadInput(
            f"--out {target} holds the run {run}: exporting there would replace the run",
            hint="choose --out outside it, or leave --out out (RUN/export-FMT)",
        )
    if target_path.is_relative_to(run_path):
        own = run_path / target_path.relative_to(run_path).parts[0]
        if own.name in RUN_PARTS or own.is_file():
            raise BadInput(
                f"--out {target} is inside the run's own {own.name}",
                hint="choose a new directory, e.g. the default RUN/export-FMT",
            )
    if target.exists() and not target.is_dir():
        raise BadInput(f"--out {target} exists and is not a directory")


def check_run(run: Path) -> None:
    """Raise BadInput unless ``run`` is a run directory with a finished ``model/``."""
    if not run.is_dir():
        raise BadInput(f"run directory not found: {run}")
    if not (run / "model" / "config.json").is_file():
        try:
            status = json.loads((run / "summary.json").read_text()).get("status", "unknown")
        except (OSError, ValueError):
            status = "not an ftx run"
        raise BadInput(
            f"run {run} has no model/ (status: {status})",
            hint="only a finished run can be exported; resume it first",
        )


def _export_adapter(adapter: Path, tokenizer, target: Path, dtype: str | None) -> Path:
    from safetensors.torch import load_file, save_file

    from ftx.artifacts import atomic_dir
    from ftx.loading import torch_dtype

    with atomic_dir(target) as tmp:
        for item in adapter.iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
        weights = tmp / "adapter_model.safetensors"
        if weights.is_file() and dtype not in (None, "float32"):
            tensors = {k: v.to(torch_dtype(dtype)) for k, v in load_file(str(weights)).items()}
            save_file(tensors, str(weights), metadata={"format": "pt"})
    return target
