"""Tokenise a whole data set: labels, truncation to ``max_length``, and the numbers behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftx.data.conversation import Conversation
from ftx.data.fast_spans import Frame, agrees_on, frame_of
from ftx.data.masking import IGNORE_INDEX, encode, mark_trained
from ftx.data.templates import Template, template_for
from ftx.errors import BadInput

MAX_LISTED = 20  # dropped rows named in the stats
FRAME_CHECKED_ROWS = 32  # rows on which the one-render spans must equal the prefix method's


@dataclass
class TokenizedData:
    """The trainer's input and what happened on the way.

    Attributes:
        examples: ``[{"input_ids": [...], "labels": [...]}, ...]``, one per kept row, in order.
        stats: ``rows`` (conversations in), ``kept`` (examples out), ``truncated`` (rows longer
            than ``max_length``, cut to it), ``dropped`` (rows with no trained token left after
            truncation, left out), ``dropped_sources`` (``file:line`` of the first 20 of them),
            ``tokens`` and ``trained_tokens`` (over kept examples, after truncation), ``lengths``
            (every row's length in tokens before truncation), ``max_length``, ``template``.
    """

    examples: list[dict]
    stats: dict[str, Any] = field(default_factory=dict)


def tokenize_dataset(
    convs: list[Conversation],
    tokenizer: Any,
    *,
    max_length: int,
    template: str | Template = "auto",
    train_on: str = "assistant",
) -> TokenizedData:
    """Render, tokenise and label every conversation (see `ftx.data.masking`), truncating each
    to its first `max_length` tokens and dropping rows left with no trained token.

    Raises `BadInput` for ``max_length < 1``, an unknown template or `train_on`, or a
    conversation the model's chat template refuses (naming its ``file:line``).
    """
    if max_length < 1:
        raise BadInput(f"max_length must be a positive number of tokens, got {max_length}")
    tmpl = template if isinstance(template, Template) else template_for(tokenizer, template)
    frame = _checked_frame(convs, tmpl) if train_on == "assistant" else None
    marked = [mark_trained(c, tokenizer, tmpl, train_on, frame) for c in convs]
    encoded = encode(marked, tokenizer)
    examples: list[dict] = []
    lengths: list[int] = []
    truncated = 0
    dropped: list[str] = []
    tokens = trained = 0
    for conv, (ids, labels) in zip(convs, encoded, strict=True):
        lengths.append(len(ids))
        if len(ids) > max_length:
            truncated += 1
            ids, labels = ids[:max_length], labels[:max_length]
        n_trained = sum(1 for label in labels if label != IGNORE_INDEX)
        if n_trained == 0:
            dropped.append(conv.source)
            continue
        tokens += len(ids)
        trained += n_trained
        examples.append({"input_ids": ids, "labels": labels})
    stats = {
        "rows": len(convs),
        "kept": len(examples),
        "truncated": truncated,
        "dropped": len(dropped),
        "dropped_sources": dropped[:MAX_LISTED],
        "tokens": tokens,
        "trained_tokens": trained,
        "lengths": lengths,
        "max_length": max_length,
        "template": tmpl.name,
    }
    return TokenizedData(examples=examples, stats=stats)


def _checked_frame(convs: list[Conversation], template: Template) -> Frame | None:
    """The template's frame when the one-render spans equal the prefix method's on the first
    rows (`ftx.data.fast_spans`), else None (every row then takes the prefix method)."""
    frame = frame_of(template)
    if frame is None:
        return None
    sample = [c.messages for c in convs if not c.is_text][:FRAME_CHECKED_ROWS]
    try:
        return frame if agrees_on(sample, template, frame) else None
    except Exception:  # a refused row is reported by the prefix method, by row
        return None
