"""Model configs the planning tests share (configs only: no weights)."""

from __future__ import annotations

from typing import Any


def llama_7b() -> Any:
    """Llama-2-7B's config: transformers' ``LlamaConfig`` defaults are its shape (hidden 4096,
    intermediate 11008, 32 layers, 32 heads without GQA, vocab 32000, untied head)."""
    from transformers import LlamaConfig

    return LlamaConfig()
