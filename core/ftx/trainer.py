"""ftx's trainer: TRL's ``SFTTrainer`` with a lean causal-LM loss on devices without Triton.

TRL 1.16 scores every batch through a fused, chunked LM head. On CUDA/XPU its Triton kernel
projects only the positions that have a label; everywhere else (every CPU) it projects *every*
position, prompt and padding included, in Python-level vocabulary tiles, and computes entropy and
token accuracy over the full vocabulary on each step. On this project's CPU that made one
forward+backward of a SmolLM2 QLoRA batch (8 rows) take 4.5 s where the loss below takes 2.1 s
(``bench/ablations.py``).

The lean loss (``FtxSFTTrainer.compute_loss``), used when the model lives on a device without
Triton and the run asks for nothing but TRL's plain ``nll`` loss:

* the LM head receives only the hidden states whose next-token label is not -100 (a forward
  pre-hook on ``get_output_embeddings()``, so DDP/FSDP/PEFT wrappers still run their own
  forward, and parameter names and checkpoints are unchanged);
* loss = summed cross-entropy (fp32) over those positions / ``num_items_in_batch`` (or their
  count), scaled by the number of processes when tokens are averaged across devices: the same
  value and gradients as TRL's loss;
* logged metrics: ``mean_token_accuracy`` and ``num_tokens`` (as TRL logs them); TRL's
  ``entropy`` is not computed.

Everything else (CUDA/XPU, ``compute_loss_func``, label smoothing, ``dft`` loss, MoE auxiliary
loss, ``return_outputs``) goes to TRL's own ``compute_loss`` unchanged.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from ftx.data.masking import IGNORE_INDEX

SFT_FIXED_ARGUMENTS = {
    # ftx has tokenised and masked the rows: no TRL data preparation, keep ftx's columns, no
    # second truncation.
    "dataset_kwargs": {"skip_prepare_dataset": True},
    "remove_unused_columns": False,
    "max_length": None,
}
"""``SFTConfig`` keywords ftx always sets (the user cannot: the supervised objective says so)."""

TRITON_DEVICES = ("cuda", "xpu")
"""Devices where TRL's fused LM head is a Triton kernel that scores only trained positions
(and bounds memory with tiles): the lean loss leaves them to TRL."""


def next_token_targets(inputs: dict[str, Any]) -> Any:
    """Per position, the label of the *next* token (``shift_labels`` if the batch has them),
    shape ``[batch, seq]``; the last position of each row gets -100."""
    import torch.nn.functional as F

    if inputs.get("shift_labels") is not None:
        return inputs["shift_labels"]
    return F.pad(inputs["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)


@contextlib.contextmanager
def head_on_positions(head: Any, mask: Any) -> Iterator[None]:
    """While active, ``head`` is applied only to the hidden states at ``mask`` (``[batch, seq]``
    booleans): its input ``[batch, seq, hidden]`` becomes ``[n, hidden]`` and the model's
    ``logits`` come back as ``[n, vocab]``, in the order of ``mask.nonzero()``.

    The projection runs outside autocast, in the head's own dtype: with fp32 weights (ftx's CPU
    default) the logits are fp32, as TRL's fused head accumulates them. bf16 logits under
    autocast (what a plain ``model(labels=...)`` computes) put errors of up to ~4% into the
    gradients; on trained positions only, fp32 costs little.
    """
    import torch

    had_own_forward = "forward" in vars(head)  # an instance override, e.g. a hook wrapper
    projection = head.forward

    def on_positions(hidden: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(hidden.device.type, enabled=False):
            return projection(hidden[mask].to(head.weight.dtype), *args, **kwargs)

    # A forward swapped for the block, not split autocast enter/exit hooks: torch.compile can
    # trace a ``with`` block, not a context entered in one hook and left in another.
    head.forward = on_positions
    try:
        yield
    finally:
        if had_own_forward:
            head.forward = projection
        else:
            vars(head).pop("forward", None)


@functools.cache
def trainer_class() -> type:
    """``FtxSFTTrainer``, built on first use so that importing this module needs no TRL."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class FtxSFTTrainer(SFTTrainer):
        """``SFTTrainer`` whose plain ``nll`` loss on non-Triton devices is the lean loss of
        :mod:`ftx.trainer`; every other case is TRL's."""

        def _lean_loss_applies(self, return_outputs: bool) -> bool:
            return (
                not return_outputs
                and self.args.loss_type == "nll"
                and self.compute_loss_func is None
                and self.label_smoother is None
                and not self.aux_loss_enabled
                and self.accelerator.device.type not in TRITON_DEVICES
            )

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if not self._lean_loss_applies(return_outputs):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            targets = next_token_targets(inputs)
            mask = targets != IGNORE_INDEX
            forward_inputs = {
                k: v for k, v in inputs.items() if k not in ("labels", "shift_labels")
            }
            head = self.accelerator.unwrap_model(model).get_output_embeddings()
            with head_on_positions(head, mask):
                logits = model(**forward_inputs, use_cache=False).logits
            picked = targets[mask]
            loss_sum = F.cross_entropy(logits.float(), picked, reduction="sum")
            count = mask.sum()
            denominator = count if num_items_in_batch is None else num_items_in_batch
            loss = loss_sum / torch.as_tensor(denominator).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * (self.accelerator.num_processes // self._tp_size)
            self._log_step_metrics(inputs, logits, picked, count)
            return loss

        def _get_grad_norm(self, model: Any, grad_norm: Any = None) -> Any:
            """The Trainer's total gradient norm of this step (it computes one every step),
            also kept as ``step_grad_norm`` for :class:`ftx.callbacks.FiniteGuard`, which
            would otherwise compute it again."""
            norm = super()._get_grad_norm(model, grad_norm=grad_norm)
            self.step_grad_norm = norm
            return norm

        def _log_step_metrics(self, inputs: Any, logits: Any, picked: Any, count: Any) -> None:
            """``mean_token_accuracy`` and the running ``num_tokens``, as TRL logs them."""
            mode = "train" if self.model.training else "eval"
            gather = self.accelerator.gather_for_metrics
            with torch.no_grad():
                correct = gather((logits.argmax(-1) == picked).sum()).sum()
                valid = gather(count).sum()
            self._metrics[mode]["mean_token_accuracy"].append(
                (correct / valid).item() if valid > 0 else 0.0
            )
            if mode == "train":
                if "attention_mask" in inputs:
                    local = inputs["attention_mask"].sum()
                else:
                    local = torch.tensor(inputs["input_ids"].numel(), device=logits.device)
                self._total_train_tokens += gather(local).sum().item() // self._tp_size
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return FtxSFTTrainer


def build_sft_trainer(
    *,
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    data_collator: Any,
    callbacks: list[Any],
    trainer_cls: type | None = None,
    **overrides: Any,
) -> Any:
    """``FtxSFTTrainer`` (or ``trainer_cls``, a subclass of it) over ftx's tokenised data with
    ``SFTConfig(**run.train_args)``; ``overrides`` win over ``run.train_args``. What the core
    default ``build_trainer`` returns.

    TRL's dataset preparation is skipped (ftx has tokenised and masked the rows already) and
    its defaults that ftx decides itself (activation checkpointing, bf16) come from
    ``run.train_args``. A method that only needs other arguments implements the
    ``training_arguments`` hook instead of calling this.
    """
    from trl import SFTConfig

    from ftx.config import training_arguments_kwargs

    args = SFTConfig(
        **training_arguments_kwargs(
            {**run.train_args, **overrides},
            use_cpu=run.device.kind == "cpu",
            output_dir=run.output_dir / "checkpoints",
            fixed=SFT_FIXED_ARGUMENTS,
        )
    )
    return (trainer_cls or trainer_class())(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
