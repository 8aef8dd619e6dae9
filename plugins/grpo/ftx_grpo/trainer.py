"""The ``grpo`` objective's trainer: TRL's ``GRPOTrainer`` on ftx's prompts, rewards and
arguments. Imports TRL (and torch): imported inside ``build_trainer`` only."""

from __future__ import annotations

import functools
import json
from typing import Any

from ftx.checked_arguments import load
from ftx_grpo.objective import CONFIG, FIXED, TRAINER


def prompt_key(prompt: Any) -> str:
    """A prompt (its messages) as a dictionary key."""
    return json.dumps(prompt, sort_keys=True)


@functools.cache
def trainer_class() -> type:
    """``GRPOTrainer`` generating from ftx's prompt ids: ``_tokenize_prompts`` looks each
    prompt up in ``ftx_prompt_ids`` (rendered by ftx's chat template or fallback template, as
    held-out scoring renders them) instead of applying the tokenizer's chat template, which
    base models lack and which would differ from what ftx scores."""
    base = load(TRAINER)

    def _tokenize_prompts(self: Any, prompts: list) -> tuple[list[list[int]], None, dict]:
        return [list(self.ftx_prompt_ids[prompt_key(p)]) for p in prompts], None, {}

    return type(f"Ftx{base.__name__}", (base,), {"_tokenize_prompts": _tokenize_prompts})


def reference_kind(model: Any, beta: float) -> str:
    """How the KL term's reference is held: ``none`` (beta = 0), ``adapters disabled`` (a PEFT
    model) or ``copy`` (TRL's frozen copy of the starting model)."""
    if beta == 0:
        return "none"
    from accelerate.utils import is_peft_model

    return "adapters disabled" if is_peft_model(model) else "copy"


def build(
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    callbacks: list[Any],
) -> Any:
    """The GRPO trainer for ``run``: ``GRPOConfig`` from ``run.train_args`` (the KV cache on
    for generation, the reward weights from ``objective.reward_weights``), the rewards of
    ``objective.rewards`` wrapped by :class:`ftx.rewards.RewardCall`."""
    from ftx.config import training_arguments_kwargs
    from ftx.rewards import RewardCall, load_rewards

    options = run.objective_options
    resume = (
        "the run keeps its last checkpoint: fix the reward, then continue with: "
        f"ftx run --resume --output {run.output_dir}"
    )
    rewards = [RewardCall(r, options, resume=resume) for r in load_rewards(options["rewards"])]
    # ftx loads models with the KV cache off (training does not use it); generation does.
    generation = {**(run.train_args.get("generation_kwargs") or {}), "use_cache": True}
    overrides = {"generation_kwargs": generation, "reward_weights": options.get("reward_weights")}
    args = load(CONFIG)(
        **training_arguments_kwargs(
            run.train_args,
            use_cpu=run.device.kind == "cpu",
            output_dir=run.output_dir / "checkpoints",
            fixed={**FIXED, **overrides},
        )
    )
    trainer = trainer_class()(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.ftx_prompt_ids = {
        prompt_key(prompt): ids
        for dataset in (train_dataset, eval_dataset)
        if dataset is not None
        for prompt, ids in zip(dataset["prompt"], dataset["prompt_ids"], strict=True)
    }
    reference = reference_kind(model, args.beta)
    run.log(f"reference: {reference}; rewards: {', '.join(r.__name__ for r in rewards)}")
    run.report(reference=reference, rewards=[r.reward.name for r in rewards])
    return trainer
