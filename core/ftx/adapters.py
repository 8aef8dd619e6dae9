"""Export for adapter methods (LoRA, QLoRA, IA3, …): ``adapter/`` plus a merged ``model/``.

The merged model is built from the *unquantised* base reloaded from disk, never from the
trained (possibly 4-bit) model: bitsandbytes on the CPU repacks 4-bit weights in place after
the first forward pass, so dequantising the trained model is wrong. The adapter is loaded onto
the fresh base with PEFT, folded in with ``merge_and_unload`` and saved as plain safetensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_adapter(model: Any, tokenizer: Any, target: Path, *, base_path: Path) -> Path:
    """Save the PEFT adapter (and tokenizer) to ``target`` atomically; base recorded as a path."""
    from ftx.artifacts import atomic_dir

    peft_config = model.peft_config.get("default")
    if peft_config is not None:
        peft_config.base_model_name_or_path = str(base_path)
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def merge_adapter(
    adapter_dir: Path,
    base_path: Path,
    tokenizer: Any,
    target: Path,
    *,
    save_dtype: str | None = None,
) -> Path:
    """Reload ``base_path`` unquantised (fp32), merge ``adapter_dir`` into it, save to
    ``target`` (cast to ``save_dtype`` after merging, if given)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ftx.loading import torch_dtype
    from ftx.saving import save_full_model

    base = AutoModelForCausalLM.from_pretrained(
        str(base_path), dtype=torch_dtype("float32"), local_files_only=True
    )
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(base, str(adapter_dir), local_files_only=True)
        merged = adapted.merge_and_unload()
    return save_full_model(merged, tokenizer, target, dtype=save_dtype)


def export_adapter_method(run: Any, model: Any, tokenizer: Any) -> dict[str, str]:
    """The ``export`` hook for adapter methods: ``adapter/`` then merged ``model/`` (rank 0)."""
    if not run.is_main_process:
        return {}
    adapter = save_adapter(model, tokenizer, run.output_dir / "adapter", base_path=run.model_path)
    merged = merge_adapter(adapter, run.model_path, tokenizer, run.output_dir / "model")
    return {"adapter": str(adapter), "model": str(merged)}
