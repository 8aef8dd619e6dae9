"""The core's own hook implementations, all ``trylast``: what a method plugin inherits.

* ``load_model``: ``AutoModelForCausalLM.from_pretrained`` with ``run.dtype`` and
  ``run.attn_implementation``, safetensors only unless ``model.allow_pickle``;
* ``select_trainable``: every parameter trainable (full fine-tuning);
* ``build_trainer``: TRL's ``SFTTrainer`` (lean loss on the CPU, :mod:`ftx.trainer`) on the
  host's tokenised data and collator;
* ``export``: ``save_pretrained`` of the model and tokenizer into ``model/``, atomically.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl


def torch_dtype(name: str):
    """``"bfloat16"`` -> ``torch.bfloat16`` etc."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def from_pretrained_kwargs(run: Any) -> dict[str, Any]:
    """Keyword arguments every model load of this run shares (dtype, attention, safety flags)."""
    model_cfg = run.config["model"]
    return {
        "dtype": torch_dtype(run.dtype),
        "attn_implementation": run.attn_implementation,
        "trust_remote_code": bool(model_cfg.get("trust_remote_code")),
        "use_safetensors": None if model_cfg.get("allow_pickle") else True,
    }


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
def build_trainer(
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    data_collator: Any,
    callbacks: list[Any],
) -> Any:
    return make_sft_trainer(
        run, model, tokenizer, train_dataset, eval_dataset, data_collator, callbacks
    )


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
    """ftx's ``SFTTrainer`` (:mod:`ftx.trainer`: TRL's, with a lean loss on the CPU) over ftx's
    tokenised data; ``overrides`` win over ``run.train_args``.

    Plugins that need different training arguments (FSDP settings, LoRA-specific options) call
    this from their own ``build_trainer`` instead of re-implementing trainer construction.
    TRL's preparation is skipped (ftx has tokenised and masked the rows already) and its
    defaults that ftx decides itself (gradient checkpointing, bf16) come from ``run.train_args``.
    """
    from trl import SFTConfig

    from ftx.trainer import trainer_class

    args = SFTConfig(
        **{"use_cpu": run.device.kind == "cpu", **run.train_args, **overrides},
        output_dir=str(run.output_dir / "checkpoints"),
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        max_length=None,
    )
    return trainer_class()(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


@hookimpl(trylast=True)
def export(run: Any, model: Any, tokenizer: Any) -> dict[str, str]:
    if not run.is_main_process:
        return {}
    return {"model": str(save_full_model(model, tokenizer, run.output_dir / "model"))}


def save_full_model(model: Any, tokenizer: Any, target: Any, *, dtype: str | None = None) -> Any:
    """Save ``model`` (unwrapped, optionally cast) and ``tokenizer`` to ``target`` atomically.

    Shared by every method that exports full weights. Large models are sharded by
    ``save_pretrained``'s default ``max_shard_size``.
    """
    from ftx.artifacts import atomic_dir

    if dtype is not None:
        model = model.to(torch_dtype(dtype))
    model.config.use_cache = True
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target
