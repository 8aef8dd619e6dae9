"""Held-out scoring of a saved model directory, before and after training."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def eval_settings(data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``score`` keyword arguments a run's ``data`` section implies."""
    return {
        "metric": data_cfg["eval_metric"],
        "template": data_cfg["template"],
        "max_new_tokens": data_cfg["eval_max_new_tokens"],
        "max_length": data_cfg["max_length"],
    }


def score_dir(model_dir: Path, convs: list[Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Load ``model_dir`` for inference and score it on ``convs`` (:func:`ftx.evaluate.score`)."""
    from ftx.evaluate import score
    from ftx.inference import load_for_inference

    loaded = load_for_inference(model_dir)
    try:
        result = score(loaded.model, loaded.tokenizer, convs, **settings)
    finally:
        import torch

        torch.set_grad_enabled(True)
    return result
