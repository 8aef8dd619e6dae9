"""Trainer callbacks the host attaches to every run (imports transformers: run time only).

* :class:`MetricsLog` appends one JSON line per log step to ``metrics.jsonl`` and prints it;
* :class:`FiniteGuard` stops at the first step whose gradients are not finite, before the
  optimizer applies them, and prevents that state from being checkpointed;
* :class:`StopOnSignal` turns SIGINT/SIGTERM into "finish this step, checkpoint, stop";
* :class:`IntervalsFromArguments` makes a resumed run log and save at its own intervals;
* :class:`CheckpointAtEnd` saves the last step whatever ``save_steps`` says.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

KEEP = ("loss", "grad_norm", "learning_rate", "epoch", "num_tokens", "mean_token_accuracy")
KEEP_REWARDS = ("reward", "reward_std", "kl", "completions/mean_length")
"""What a trainer that learns from rewards (TRL's GRPO) logs and ftx keeps too, with every
``rewards/NAME/mean`` (one per reward function)."""


def kept_eval(logs: dict[str, Any]) -> dict[str, Any]:
    """What ``metrics.jsonl`` keeps of an evaluation's log: every ``eval_*`` value (the
    validation loss, the task metric and its seconds …) but throughput and token counts."""
    return {
        k: v
        for k, v in logs.items()
        if k.startswith("eval_") and not k.endswith("_per_second") and k != "eval_num_tokens"
    }


def kept(logs: dict[str, Any]) -> dict[str, Any]:
    """The logged values ``metrics.jsonl`` keeps: :data:`KEEP`, :data:`KEEP_REWARDS` and the
    per-reward means."""
    return {
        k: v
        for k, v in logs.items()
        if k in KEEP or k in KEEP_REWARDS or (k.startswith("rewards/") and k.endswith("/mean"))
    }


class MetricsLog(TrainerCallback):
    """Write ``{"step", "loss", "learning_rate", ...}`` lines to ``path`` (rank 0 only)."""

    def __init__(self, path: Path, console: Any = None, *, resume_step: int = 0) -> None:
        self.path = path
        self.console = console
        self.last: dict[str, Any] = {}
        if resume_step and path.exists():
            from ftx.artifacts import write_text
            from ftx.report import logged_rows

            # Keep the curve continuous: drop lines logged after the checkpoint we resume from,
            # and a last line cut short (a kill, a full disk). Rewritten atomically: a kill
            # during the rewrite must not lose the lines before it.
            kept = [row for row in logged_rows(path) if row.get("step", 0) <= resume_step]
            write_text(path, "".join(f"{json.dumps(row)}\n" for row in kept))

    def on_train_begin(self, args, state, control, **kwargs):
        self._started, self._first_step = time.time(), state.global_step

    def _eta(self, state) -> str:
        done = state.global_step - getattr(self, "_first_step", 0)
        if done <= 0 or not hasattr(self, "_started"):
            return ""
        per_step = (time.time() - self._started) / done
        left = per_step * (state.max_steps - state.global_step)
        return f"  {per_step:.2f} s/step  eta {int(left // 60)}:{int(left % 60):02d}"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" not in logs:
            self._log_eval(state, kept_eval(logs))
            return
        # max_steps and the wall-clock time let a reader of the file alone (ftx ui) show the
        # progress and an ETA of a run in progress.
        row = {"step": state.global_step, **kept(logs), "max_steps": state.max_steps}
        row["time"] = round(time.time(), 3)
        self.last = row
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.console is None:
            return
        live = getattr(self.console, "live_progress", None)  # a notebook's in-place display
        if live is not None:
            self._show_live(live, state)
        else:
            self.console.print(
                f"  step {state.global_step:>5}/{state.max_steps}{self._detail(state)}",
                highlight=False,
            )

    def _log_eval(self, state: Any, values: dict[str, Any]) -> None:
        """An evaluation's line in ``metrics.jsonl``, remembered for the progress line."""
        if not values:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": state.global_step, **values}) + "\n")
        self.last_eval = {**getattr(self, "last_eval", {}), **values}
        self.last_eval["step"] = state.global_step
        if self.console is not None and getattr(self.console, "live_progress", None) is None:
            self.console.print(
                f"  eval  {state.global_step:>5}/{state.max_steps}  {_eval_text(values)}",
                highlight=False,
            )

    def on_step_end(self, args, state, control, **kwargs):
        """In a notebook the bar moves at every step, with the last logged loss."""
        live = getattr(self.console, "live_progress", None)
        if live is not None and state.is_world_process_zero:
            self._show_live(live, state)

    def _show_live(self, live: Any, state: Any) -> None:
        from ftx.live_progress import progress_bar

        live.show(progress_bar(state.global_step, state.max_steps, self._detail(state)))

    def _detail(self, state: Any) -> str:
        """``"  loss 0.4210 … lr 1.00e-03  0.52 s/step  eta 0:31"`` from the last logged row."""
        row = self.last
        if "loss" not in row:
            return self._eta(state)
        lr = row.get("learning_rate", 0.0)
        held_out = getattr(self, "last_eval", None)
        valid = f"  val {_eval_text(held_out)}" if held_out else ""
        return f"  loss {row['loss']:.4f}{_reward_text(row)}{valid}  lr {lr:.2e}{self._eta(state)}"


def _eval_text(values: dict[str, Any]) -> str:
    """``loss 0.4210 exact 0.906 (3.2 s)`` of an evaluation's kept values."""
    parts = []
    if "eval_loss" in values:
        parts.append(f"loss {values['eval_loss']:.4f}")
    for key, value in values.items():
        name = key.removeprefix("eval_")
        if f"{key}_seconds" in values:
            parts.append(f"{name} {value:.3f} ({values[f'{key}_seconds']:.1f} s)")
    return " ".join(parts)


def _reward_text(row: dict[str, Any]) -> str:
    """``  reward 0.62 (exact 0.40, format 0.88)  len 7.5  kl 0.012`` for a run that learns
    from rewards; empty otherwise."""
    if "reward" not in row:
        return ""
    parts = [
        f"{k.removeprefix('rewards/').removesuffix('/mean')} {v:.2f}"
        for k, v in row.items()
        if k.startswith("rewards/")
    ]
    text = f"  reward {row['reward']:.3f}" + (f" ({', '.join(parts)})" if parts else "")
    if "completions/mean_length" in row:
        text += f"  len {row['completions/mean_length']:.1f}"
    if "kl" in row:
        text += f"  kl {row['kl']:.4f}"
    return text


class FiniteGuard(TrainerCallback):
    """Stop training at the first non-finite gradient; ``bad_step`` says where.

    The check is the total norm of all gradients, finite exactly when every gradient is (barring
    fp32 overflow of a norm above ~1e19). ftx's trainer computes that norm every step anyway (for
    clipping and the ``grad_norm`` log) and keeps it as ``step_grad_norm``: after
    :meth:`read_norm_from` the guard takes it from there, at no cost. Otherwise it computes it in
    one fused pass (``torch.nn.utils.get_total_norm``): 19 ms per optimizer step on SmolLM2's 135M
    gradients (full fine-tuning, CPU) where ``isfinite(grad).all()`` per parameter took 150 ms
    (``bench/nan_guard.py``).
    """

    def __init__(self) -> None:
        self.bad_step: int | None = None
        self._trainer: Any = None

    def read_norm_from(self, trainer: Any) -> None:
        """Use ``trainer.step_grad_norm`` (set before each optimizer step, taken once)."""
        self._trainer = trainer

    def _step_norm(self, grads: list[Any]) -> Any:
        import torch

        norm = None if self._trainer is None else vars(self._trainer).pop("step_grad_norm", None)
        return torch.nn.utils.get_total_norm(grads) if norm is None else norm

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is None or self.bad_step is not None:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or math.isfinite(float(self._step_norm(grads))):
            return
        self.bad_step = state.global_step + 1
        control.should_training_stop = True
        # Zero the poisoned gradients so the optimizer step leaves the weights as they were.
        for grad in grads:
            grad.zero_()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bad_step is not None:
            control.should_save = False
            control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if self.bad_step is None and isinstance(loss, float) and not math.isfinite(loss):
            self.bad_step = state.global_step
            control.should_training_stop = True
            control.should_save = False


class StopOnSignal(TrainerCallback):
    """On SIGINT/SIGTERM/SIGUSR1: let the current step finish, save a checkpoint, stop training."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        from ftx.stop_signals import STOP_SIGNALS

        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame):
        if self.signal_name is not None:
            # Second signal: the user insists; restore defaults and let it through.
            self.uninstall()
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def on_step_end(self, args, state, control, **kwargs):
        if self.signal_name is not None:
            control.should_save = True
            control.should_training_stop = True


class IntervalsFromArguments(TrainerCallback):
    """Log, evaluate and save at this run's ``logging_steps``, ``eval_steps``, ``save_steps``.

    Resuming, the Trainer keeps the intervals stored in the checkpoint's ``trainer_state.json``
    and only warns that the arguments differ: ``ftx run --resume --set train.save_steps=…``
    would be recorded in ``config.yaml`` without taking effect. Recomputed from the arguments
    at the start of training (a fresh run gets the same values)."""

    def on_train_begin(self, args, state, control, **kwargs):
        state.compute_steps(args, state.max_steps)


class CheckpointAtEnd(TrainerCallback):
    """Save a checkpoint at the last step whatever ``save_steps`` says, so a run stopped after
    training (while scoring or exporting) resumes straight to export instead of re-training."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_save = True
