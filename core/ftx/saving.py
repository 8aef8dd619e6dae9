"""Writing full model weights into a run: atomically, with the tokenizer and chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftx.loading import torch_dtype


def save_full_model(model: Any, tokenizer: Any, target: Path, *, dtype: str | None = None) -> Path:
    """Save ``model`` (optionally cast to ``dtype``) and ``tokenizer`` to ``target`` atomically
    (:func:`ftx.artifacts.atomic_dir`) so that plain ``AutoModelForCausalLM.from_pretrained``
    loads it. Shared by every method that exports full weights; large models are sharded by
    ``save_pretrained``'s default ``max_shard_size``."""
    from ftx.artifacts import atomic_dir

    if dtype is not None:
        model = model.to(torch_dtype(dtype))
    model.config.use_cache = True
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(target)
