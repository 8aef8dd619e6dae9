"""The ``supervised`` objective: next-token loss on the assistant turns of conversations.

Rows are any conversation format of :mod:`ftx.data` (Vicuna/FastChat, OpenAI messages, Alpaca,
prompt/completion, text), rendered with the chat template (or a fallback template) and
tokenised with labels = -100 on every token that is not trained (``data.train_on``). The
trainer is ftx's ``SFTTrainer`` (:mod:`ftx.trainer`: TRL's, with a lean loss off CUDA) with
``SFTConfig``; batches are padded or padding-free (``data.packing``). Held-out metric: exact
match of the generated last assistant turn (``exact``), JSON equality (``json``) or the
held-out loss (``loss``). Reference-free. Importing this module imports no torch.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.context import ObjectiveTraits

TRAITS = ObjectiveTraits(metrics=("exact", "json", "loss"), data="conversations")


@hookimpl
def objective_traits() -> ObjectiveTraits:
    return TRAITS


@hookimpl
def arguments_class() -> tuple[type, dict[str, Any]]:
    from trl import SFTConfig

    from ftx.trainer import SFT_FIXED_ARGUMENTS

    return SFTConfig, SFT_FIXED_ARGUMENTS


@hookimpl
def load_rows(path: str, fmt: str) -> list[Any]:
    from ftx.data import load_conversations
    from ftx.data.conversation import require_answers

    return require_answers(load_conversations(path, fmt))


@hookimpl
def tokenize_rows(rows: list[Any], tokenizer: Any, data: dict[str, Any]) -> Any:
    from ftx.data import tokenize_dataset

    return tokenize_dataset(
        rows,
        tokenizer,
        max_length=data["max_length"],
        template=data["template"],
        train_on=data["train_on"],
        num_proc=data.get("num_proc", "auto"),
    )


@hookimpl
def data_collator(run: Any, tokenizer: Any) -> Any:
    from ftx.data import PackingCollator, resolve_packing

    packing = resolve_packing(
        run.config["data"]["packing"],
        attn_implementation=run.attn_implementation,
        batch_size=int(run.train_args.get("per_device_train_batch_size", 1)),
        device=run.device.kind,
    )
    run.report(packing="padding-free" if packing else "padded")
    return PackingCollator(tokenizer.pad_token_id, padding_free=packing)


@hookimpl
def build_trainer(
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    data_collator: Any,
    callbacks: list[Any],
) -> Any:
    from ftx.defaults import make_sft_trainer

    return make_sft_trainer(
        run, model, tokenizer, train_dataset, eval_dataset, data_collator, callbacks
    )


@hookimpl
def score_heldout(run: Any, model: Any, tokenizer: Any, rows: list[Any]) -> dict[str, Any]:
    from ftx.evaluate import score_for_run

    return score_for_run(run, model, tokenizer, rows)
