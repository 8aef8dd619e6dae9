"""The core's own hook implementations, all ``trylast``: what a method plugin inherits.

* ``load_model``: ``AutoModelForCausalLM.from_pretrained`` with ``run.dtype`` and
  ``run.attn_implementation``, safetensors only unless ``model.allow_pickle``;
* ``select_trainable``: every parameter trainable (full fine-tuning);
* ``export``: ``save_pretrained`` of the model and tokenizer into ``model/``, atomically.

The trainer is the objective's (``build_trainer`` of the run's objective plugin, e.g.
:mod:`ftx.objectives.supervised`). Nothing else lives here. The helpers plugins import are
in :mod:`ftx.loading` (``torch_dtype``, ``from_pretrained_kwargs``), :mod:`ftx.saving`
(``save_full_model``) and :mod:`ftx.trainer` (``build_sft_trainer``); the names below stay
importable from ``ftx.defaults`` for plugins written against earlier versions.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.loading import from_pretrained_kwargs, torch_dtype
from ftx.saving import save_full_model

__all__ = ["from_pretrained_kwargs", "make_sft_trainer", "save_full_model", "torch_dtype"]


@hookimpl(trylast=True)
def load_model(run: Any) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(run.model_path), **from_pretrained_kwargs(run))
    model.config.use_cache = False
    return model


@hookimpl(trylast=True)
def select_trainable(model: Any) -> Any:
    for param in model.parameters():
        param.requires_grad_(True)
    return model


@hookimpl(trylast=True)
def export(run: Any, model: Any, tokenizer: Any) -> dict[str, str]:
    if not run.is_main_process:
        return {}
    return {"model": str(save_full_model(model, tokenizer, run.output_dir / "model"))}


def make_sft_trainer(
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    data_collator: Any,
    callbacks: list[Any],
    **overrides: Any,
) -> Any:
    """Positional form of :func:`ftx.trainer.build_sft_trainer`, kept for existing plugins."""
    from ftx.trainer import build_sft_trainer

    return build_sft_trainer(
        run=run,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        callbacks=callbacks,
        **overrides,
    )
