"""Export for adapter methods (LoRA, QLoRA, IA3, …): ``adapter/`` plus a merged ``model/``.

The merged model is built from the *unquantised* base read back from disk, never from the
trained (possibly 4-bit) model: bitsandbytes on the CPU repacks 4-bit weights in place after
the first forward pass, so dequantising the trained model is wrong. A LoRA adapter is folded in
tensor by tensor (:mod:`ftx.merging`: about one weight matrix of memory, the base's own dtype);
any other adapter is loaded onto the fresh base with PEFT and folded in with
``merge_and_unload`` (:func:`merge_adapter_in_memory`). Both save plain safetensors.
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
    """Merge ``adapter_dir`` into the base at ``base_path`` and save to ``target`` (floats cast
    to ``save_dtype`` if given): streamed tensor by tensor in the base's own dtype when
    :func:`ftx.merging.streamable_lora` accepts the adapter and the base is safetensors, else
    :func:`merge_adapter_in_memory` (whose output is fp32 unless ``save_dtype``)."""
    from ftx.merging import streamable_lora, streaming_merge
    from ftx.tensor_stream import weight_files

    files = weight_files(Path(base_path))
    if files and streamable_lora(Path(adapter_dir), Path(base_path)) is None:
        return streaming_merge(
            Path(base_path), tokenizer, target, adapter_dir=Path(adapter_dir), dtype=save_dtype
        )
    return merge_adapter_in_memory(adapter_dir, base_path, tokenizer, target, save_dtype=save_dtype)


def merge_adapter_in_memory(
    adapter_dir: Path,
    base_path: Path,
    tokenizer: Any,
    target: Path,
    *,
    save_dtype: str | None = None,
) -> Path:
    """Reload ``base_path`` unquantised (fp32), merge ``adapter_dir`` into it with PEFT, save to
    ``target`` (cast to ``save_dtype`` after merging, if given). Holds the whole base in fp32."""
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
