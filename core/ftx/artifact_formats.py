"""The formats a finished run's model can be (re)written in, for ``ftx export``: ``full``,
``merged`` or ``adapter``.

* ``full``: the whole model for every method (the run's ``model/``, cast to ``dtype``);
* ``merged``: an adapter run's base with the adapter folded in (rebuilt from ``adapter/`` and
  the unquantised base, exactly as the run's own ``model/`` was);
* ``adapter``: the PEFT adapter alone.

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


def export_run(run: Path, fmt: str, dtype: str, target: Path, *, overwrite: bool = False) -> Path:
    """Write the ``fmt`` artifact of ``run`` to ``target``; return ``target``."""
    _check_run(run)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise BadInput(f"{target} already exists", hint="pass --overwrite or choose --out")
    adapter = run / "adapter"
    if fmt in ("adapter", "merged") and not (adapter / "adapter_config.json").is_file():
        raise BadInput(
            f"run {run} has no adapter/ (its method trains full weights)",
            hint="use --format full",
        )
    from ftx.models import load_tokenizer

    tokenizer = load_tokenizer(run / "model")
    if fmt == "adapter":
        return _export_adapter(adapter, tokenizer, target, DTYPES[dtype])
    if fmt == "merged":
        from ftx.adapters import merge_adapter

        base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
        if not (Path(base) / "config.json").is_file():
            raise BadInput(f"the adapter's base model {base} is gone; cannot merge")
        return merge_adapter(adapter, Path(base), tokenizer, target, save_dtype=DTYPES[dtype])
    return _export_full(run / "model", tokenizer, target, DTYPES[dtype])


def _check_run(run: Path) -> None:
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


def _export_full(model_dir: Path, tokenizer, target: Path, dtype: str) -> Path:
    from transformers import AutoModelForCausalLM

    from ftx.loading import torch_dtype
    from ftx.saving import save_full_model

    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch_dtype(dtype), local_files_only=True
    )
    return save_full_model(model, tokenizer, target)


def _export_adapter(adapter: Path, tokenizer, target: Path, dtype: str) -> Path:
    from safetensors.torch import load_file, save_file

    from ftx.artifacts import atomic_dir
    from ftx.loading import torch_dtype

    with atomic_dir(target) as tmp:
        for item in adapter.iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
        weights = tmp / "adapter_model.safetensors"
        if weights.is_file() and dtype != "float32":
            tensors = {k: v.to(torch_dtype(dtype)) for k, v in load_file(str(weights)).items()}
            save_file(tensors, str(weights), metadata={"format": "pt"})
    return target
