"""``ftx data check`` as a function (:func:`check`, also ``ftx.data.check``): the file is read
and validated before any tokenizer is loaded, then measured with the model's tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def check(
    path: str | Path,
    *,
    model: str | Path | None = None,
    max_length: int = 512,
    fmt: str = "auto",
    template: str = "auto",
) -> dict[str, Any]:
    """What ``ftx data check PATH --json`` prints: format, rows, token lengths, % truncated,
    % of tokens trained (pairs and label balance for preference data), ``dropped`` rows that
    ``ftx run`` would skip. Raises :class:`ftx.errors.BadInput` naming the file and row."""
    from ftx.process_env import choose_wait_policy_if_possible

    choose_wait_policy_if_possible()  # before the tokenizer's libraries load torch
    from ftx.data import data_kind, load_conversations
    from ftx.data.preference import (
        check_any_format,
        load_labelled_completions,
        load_preference_pairs,
    )
    from ftx.data.prompts import load_prompt_rows
    from ftx.data.stats import data_check_report
    from ftx.model_files import check_tokenizer_files
    from ftx.models import check_model_spec, load_tokenizer, resolve_model

    path = str(path)
    model = None if model is None else str(model)
    check_any_format(fmt)
    loaders = {
        "conversations": load_conversations,
        "pairs": load_preference_pairs,
        "labelled": load_labelled_completions,
        "prompts": lambda path, fmt: load_prompt_rows(path),
    }
    loaders[data_kind(path, fmt)](path, fmt)  # bad data fails before any model work
    check_model_spec(model)
    check_tokenizer_files(model)
    tokenizer = load_tokenizer(resolve_model(model))
    report = data_check_report(path, tokenizer, max_length=max_length, fmt=fmt, template=template)
    report["model"] = model or "demo"
    return report
