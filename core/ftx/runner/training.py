"""The training phase of a run: the trainer hooks in order, then ``trainer.train()``.

:func:`build_trainer` walks ``training_arguments -> build_trainer -> trainer_ready`` with the
host's callbacks (metrics log, NaN guard, graceful stop); :func:`train` runs it, resuming from a
checkpoint when there is one, and returns the facts the summary records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftx.plugins import call_all, call_first
from ftx.runner.checkpoints import checkpoint_step, read_json, training_finished_in


@dataclass
class Trainer:
    """A built trainer and the host callbacks the run reads after training."""

    trainer: Any
    guard: Any
    stopper: Any
    evaluation: Any = None


def build_trainer(
    run: Any,
    pm: Any,
    model: Any,
    tokenizer: Any,
    datasets: tuple[Any, Any],
    *,
    resume_from: Path | None,
    summary: dict[str, Any],
    evaluation: Any = None,
    held_out: list[Any] | None = None,
) -> Trainer:
    """Collators, callbacks and the three trainer hooks. ``datasets``: (train, eval or None)
    ``datasets.Dataset`` of tokenised examples; ``evaluation``: the run's
    :class:`ftx.config.evaluation.Evaluation` (the validation loss on its first ``loss_rows``
    tokenised rows, the task metric on the first ``metric_rows`` of ``held_out``, the
    objective's rows). Records packing, attention and who answered in ``summary``."""
    from ftx.attention import suits_run, use_ftx_sdpa
    from ftx.callbacks import (
        CheckpointAtEnd,
        FiniteGuard,
        IntervalsFromArguments,
        MetricsLog,
        StopOnSignal,
    )

    collator, summary["hooks"]["data_collator"] = call_first(
        pm, "data_collator", run=run, tokenizer=tokenizer
    )
    packing = run.state.get("summary", {}).get("packing") == "padding-free"
    requested = run.config["model"]["attn_implementation"]
    if suits_run(requested, run.attn_implementation, packing=packing, device=run.device.kind):
        summary["training_attention"] = use_ftx_sdpa(model)
    else:
        summary["training_attention"] = run.attn_implementation
    from ftx.validation import evaluation_callbacks

    train_set, eval_set = datasets
    if evaluation is not None and evaluation.enabled and eval_set is not None:
        eval_set = eval_set.select(range(min(evaluation.loss_rows, len(eval_set))))
    resume_step = checkpoint_step(resume_from) if resume_from else 0
    guard, stopper = FiniteGuard(), StopOnSignal()
    callbacks = [
        MetricsLog(run.output_dir / "metrics.jsonl", run.console, resume_step=resume_step),
        guard,
        stopper,
        IntervalsFromArguments(),
        CheckpointAtEnd(),
        *evaluation_callbacks(pm, run, evaluation, list(held_out or [])),
    ]

    answered = call_all(pm, "training_arguments", run=run, model=model)
    for overrides, _ in answered:
        run.train_args.update(overrides or {})
    warmup = whole_warmup_steps(run.train_args, len(train_set))
    if warmup is not None:
        run.train_args["warmup_steps"] = summary["warmup_steps"] = warmup
    summary["hooks"]["training_arguments"] = [who for _, who in answered]
    trainer, who = call_first(
        pm,
        "build_trainer",
        run=run,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_set,
        eval_dataset=eval_set if eval_set is not None and len(eval_set) else None,
        data_collator=collator,
        callbacks=callbacks,
    )
    summary["hooks"]["build_trainer"] = who
    answered = call_all(pm, "trainer_ready", run=run, model=model, trainer=trainer)
    summary["hooks"]["trainer_ready"] = [who for _, who in answered]
    guard.read_norm_from(trainer)
    for callback in callbacks:
        if hasattr(callback, "attach"):
            callback.attach(trainer)
    summary.update(run.state.get("summary", {}))
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    # ftx prints its own progress lines (MetricsLog); the Trainer's would print every log twice.
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    return Trainer(trainer=trainer, guard=guard, stopper=stopper, evaluation=evaluation)


def whole_warmup_steps(args: dict[str, Any], rows: int) -> int | None:
    """A fractional ``warmup_steps`` (a share of the run, e.g. 0.05) as whole steps, rounded
    down; ``None`` when it is already a step count.

    The Trainer rounds the share *up*, and its warm-up starts at a learning rate of 0: a run of
    one step (fewer rows than a batch) would train nothing, one of 2–19 steps would lose its
    first step. Rounded down, a short run has no warm-up and every step trains. The run's
    length is ``max_steps`` when set, else ``num_train_epochs`` over ``rows`` rows in batches of
    ``per_device_train_batch_size`` × processes × ``gradient_accumulation_steps`` (an objective
    whose step takes other than that many rows sets ``max_steps`` or a whole warm-up)."""
    import math

    from ftx.ranks import world_size

    share = float(args.get("warmup_steps") or 0)
    if not 0 < share < 1:
        return None
    steps = int(args.get("max_steps") or -1)
    if steps <= 0:
        batch = int(args.get("per_device_train_batch_size") or 8) * world_size()
        updates = math.ceil(
            math.ceil(rows / batch) / int(args.get("gradient_accumulation_steps") or 1)
        )
        steps = math.ceil(float(args.get("num_train_epochs") or 1) * updates)
    return math.floor(steps * share)


def train(built: Trainer, resume_from: Path | None) -> dict[str, Any]:
    """Train and return the summary facts: steps, time, tokens, losses.

    From a checkpoint saved at the last step (a run interrupted while scoring or exporting)
    nothing is trained: the checkpoint's weights and state are restored and only the step and
    loss facts are returned (the caller keeps the interrupted run's timings)."""
    from ftx.validation import selection_facts

    trainer = built.trainer
    if resume_from is not None and training_finished_in(resume_from):
        trainer._load_from_checkpoint(str(resume_from))
        trainer.state = type(trainer.state).load_from_json(str(resume_from / "trainer_state.json"))
        if trainer.args.load_best_model_at_end and trainer.state.best_model_checkpoint:
            trainer._load_best_model()  # what train() ends with: export the best checkpoint
        return {
            "steps": trainer.state.global_step,
            "max_steps": trainer.state.max_steps,
            "final_loss": final_loss(trainer),
            **selection_facts(trainer, built.evaluation),
        }
    earlier_tokens = checkpoint_tokens(resume_from) if resume_from is not None else 0
    if earlier_tokens and hasattr(trainer, "_total_train_tokens"):
        trainer._total_train_tokens = earlier_tokens  # TRL counts from 0 in every process
    started = time.time()
    built.stopper.install()
    try:
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        built.stopper.uninstall()
    train_time = time.time() - started
    tokens = tokens_seen(trainer)
    this_session = tokens - earlier_tokens if tokens else None  # the rate is this process's
    return {
        "steps": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "train_time_s": round(train_time, 2),
        "tokens": tokens,
        "tokens_per_s": (
            round(this_session / train_time, 1) if train_time > 0 and this_session else None
        ),
        "final_loss": final_loss(trainer),
        "train_loss": round(float(result.training_loss), 6),
        **selection_facts(trainer, built.evaluation),
    }


def checkpoint_tokens(checkpoint: Path) -> int:
    """The tokens trained up to ``checkpoint`` (its ``trainer_state.json``'s last logged
    ``num_tokens``; 0 when it logged none)."""
    state = read_json(checkpoint / "trainer_state.json")
    return last_num_tokens(state.get("log_history") or []) or 0


def tokens_seen(trainer: Any) -> int | None:
    return last_num_tokens(trainer.state.log_history)


def last_num_tokens(log_history: list[dict[str, Any]]) -> int | None:
    """The last ``num_tokens`` logged in ``log_history``, None when none was."""
    for row in reversed(log_history):
        if "num_tokens" in row:
            return int(row["num_tokens"])
    return None


def final_loss(trainer: Any) -> float | None:
    for row in reversed(trainer.state.log_history):
        if "loss" in row:
            return round(float(row["loss"]), 6)
    return None


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit packed weights count as their logical size."""
    trainable = total = 0
    for param in model.parameters():
        n = param.numel()
        if getattr(param, "quant_state", None) is not None or type(param).__name__ == "Params4bit":
            n *= 2
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total
