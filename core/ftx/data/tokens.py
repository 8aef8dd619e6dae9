"""Tokenise a whole data set: labels, truncation to ``max_length``, and the numbers behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftx.data.columns import MAX_LISTED as MAX_LISTED  # dropped rows named in the stats
from ftx.data.columns import ColumnBuilder
from ftx.data.conversation import Conversation
from ftx.data.encoding import CHUNK_TEXTS, cores, encode_chunks
from ftx.data.fast_spans import Frame, agrees_on, frame_of
from ftx.data.masking import TrainedSpans, mark_trained
from ftx.data.render_workers import marked_chunks, worker_count
from ftx.data.templates import Template, template_for
from ftx.errors import BadInput

CHUNK_ROWS = CHUNK_TEXTS  # rows rendered, encoded and stored at a time
FRAME_CHECKED_ROWS = 32  # rows on which the one-render spans must equal the prefix method's


class TokenizedData:
    """The trainer's input and what happened on the way.

    Attributes:
        examples: ``[{"input_ids": [...], "labels": [...]}, ...]``, one per kept row, in order
            (made from `table` on first access when built from it).
        table: the same examples as a ``pyarrow.Table`` (``input_ids``, ``labels``: the types
            ``datasets.Dataset.from_list`` gives them, see `ftx.data.columns`), or None when
            built from `examples`; the token cache stores it as it is, with no Python list.
        spilled: the Arrow file `table` is memory-mapped from when it was written there as it
            was built (`ftx.data.columns.spill_to`: the token cache's miss), else None.
        stats: ``rows`` (conversations in), ``kept`` (examples out), ``truncated`` (rows longer
            than ``max_length``, cut to it), ``dropped`` (rows with no trained token left after
            truncation, left out), ``dropped_sources`` (``file:line`` of the first 20 of them),
            ``tokens`` and ``trained_tokens`` (over kept examples, after truncation), ``lengths``
            (every row's length in tokens before truncation), ``max_length``, ``template``.
    """

    def __init__(
        self,
        examples: list[dict] | None = None,
        stats: dict[str, Any] | None = None,
        *,
        table: Any = None,
        spilled: Path | None = None,
    ) -> None:
        if (examples is None) == (table is None):
            raise ValueError("TokenizedData takes examples or table, not both")
        self._examples = examples
        self.table = table
        self.spilled = spilled
        self.stats = stats if stats is not None else {}

    @property
    def examples(self) -> list[dict]:
        if self._examples is None:
            self._examples = self.table.to_pylist()
        return self._examples


def tokenize_dataset(
    convs: list[Conversation],
    tokenizer: Any,
    *,
    max_length: int,
    template: str | Template = "auto",
    train_on: str = "assistant",
    num_proc: int | str = "auto",
) -> TokenizedData:
    """Render, tokenise and label every conversation (see `ftx.data.masking`), truncating each
    to its first `max_length` tokens and dropping rows left with no trained token.

    Rows go through in chunks of `CHUNK_ROWS` (render, encode, truncate, store as Arrow; the
    next chunk renders while this one encodes, `ftx.data.encoding.encode_chunks`), so neither
    every rendered text nor a Python list per row is ever held; the result has
    `TokenizedData.table` and makes `examples` when asked. Chunks render in ``num_proc``
    worker processes (`ftx.data.render_workers.worker_count`: ``"auto"`` = none below 4
    cores, half the cores from 4 up on large data sets; 1 = in this process).

    Raises `BadInput` for ``max_length < 1``, an unknown template or `train_on`, or a
    conversation the model's chat template refuses (naming its ``file:line``).
    """
    if max_length < 1:
        raise BadInput(f"max_length must be a positive number of tokens, got {max_length}")
    tmpl = template if isinstance(template, Template) else template_for(tokenizer, template)
    frame = _checked_frame(convs, tmpl) if train_on == "assistant" else None
    chunks = [convs[start : start + CHUNK_ROWS] for start in range(0, len(convs), CHUNK_ROWS)]

    def mark(chunk: list[Conversation]) -> list[TrainedSpans]:
        texts = _rendered(chunk, tmpl, frame)
        return [
            mark_trained(c, tokenizer, tmpl, train_on, frame, text)
            for c, text in zip(chunk, texts, strict=True)
        ]

    workers = worker_count(num_proc, len(chunks), cores())
    marked = marked_chunks(chunks, mark, workers)
    columns = ColumnBuilder(max_length)
    encoded = encode_chunks(marked, tokenizer, overlap=len(chunks) > 1)
    for chunk, flat in zip(chunks, encoded, strict=True):
        columns.add(flat, [c.source for c in chunk])
    stats = {**columns.stats(), "max_length": max_length, "template": tmpl.name}
    return TokenizedData(table=columns.table(), stats=stats, spilled=columns.spilled)


def _rendered(chunk: list[Conversation], template: Template, frame: Frame | None) -> list:
    """Each conversation's render in one `Template.render_many` call, when the frame shortcut
    will read spans off it; None for a row to render on its own (a text row, no shortcut, no
    batch renderer, or a batch the template refuses: then each row's own render names the row
    it refuses)."""
    chats = [c.messages for c in chunk if not c.is_text]
    if frame is None or template.render_many is None or not chats:
        return [None] * len(chunk)
    try:
        texts = iter(template.render_many(chats))
    except Exception:
        return [None] * len(chunk)
    return [None if c.is_text else next(texts) for c in chunk]


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
