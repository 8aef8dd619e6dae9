"""Conversations -> token ids and labels, with the loss on the assistant's output only.

Contract of `render` (and of `ftx.data.tokens.tokenize_dataset`, which batches it):

* ``labels[i] == input_ids[i]`` for every token of assistant output: the content of each
  assistant message, any text the template puts between the generation prompt and the content
  (Vicuna's space after ``ASSISTANT:``), and the turn's end-of-turn token (``<|im_end|>``,
  ``</s>``);
* ``labels[i] == -100`` everywhere else: system and user messages, template scaffolding such as
  ``<|im_start|>assistant\\n``, a default system prompt the template injects, the newline a
  template writes after the end-of-turn token, a bos put in front;
* ``train_on="all"`` trains every token of the rendered text; a ``text`` row trains all of its
  text plus eos whatever `train_on` says.

Labels are built by ftx from character spans (`ftx.data.templates.assistant_spans`) mapped to
tokens through the fast tokenizer's offsets: a token is trained when its characters overlap a
trained span. The whole text is tokenised at once, so ``input_ids`` are exactly the ids the
tokenizer gives for the rendered text. Masks never depend on the pad id (SmolLM2's pad is its
end-of-turn token). Tokenizers without offsets (slow ones) are handled by tokenising the trained
and untrained pieces separately and concatenating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftx.data.conversation import Conversation
from ftx.data.fast_spans import Frame, spans_by_frame
from ftx.data.templates import Span, Template, assistant_spans, default_prefix_ids, template_for
from ftx.errors import BadInput

IGNORE_INDEX = -100
TRAIN_ON = ("assistant", "all")


@dataclass(frozen=True)
class TrainedSpans:
    """What to tokenise for one conversation: the rendered text, the character spans of it that
    are trained, and the ids put before it (a bos, or none)."""

    text: str
    spans: list[Span]
    prefix_ids: tuple[int, ...]


def render(
    conv: Conversation,
    tokenizer: Any,
    template: str | Template = "auto",
    train_on: str = "assistant",
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one conversation (see the module docstring for the contract).

    Raises `BadInput` for an unknown template or `train_on`, or when the model's chat template
    refuses the conversation.
    """
    tmpl = template if isinstance(template, Template) else template_for(tokenizer, template)
    return encode([mark_trained(conv, tokenizer, tmpl, train_on)], tokenizer)[0]


def prompt_for_generation(
    conv: Conversation, tokenizer: Any, template: str | Template = "auto"
) -> tuple[list[int], str]:
    """The ids of everything before the last assistant message plus the generation prompt, and
    that last assistant message's content (the reference answer).

    The prompt text is exactly the text `render` puts before the last assistant turn's trained
    span, so generation sees what training saw (the ids match too unless the tokenizer merges
    characters across that boundary; the tests check they match for the built-in templates).
    Raises `BadInput` for a ``text`` row, which has no assistant turn.
    """
    if conv.is_text:
        raise BadInput(
            f"{conv.source}: a text row has no assistant turn to generate",
            hint="generate/eval need conversations (vicuna, openai, alpaca, prompt_completion)",
        )
    tmpl = template if isinstance(template, Template) else template_for(tokenizer, template)
    last = max(i for i, m in enumerate(conv.messages) if m["role"] == "assistant")
    prompt = _render(conv, tmpl, conv.messages[:last], True)
    ids = list(tmpl.prefix_ids) + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return ids, conv.messages[last]["content"]


def mark_trained(
    conv: Conversation,
    tokenizer: Any,
    template: Template,
    train_on: str,
    frame: Frame | None = None,
) -> TrainedSpans:
    """Render `conv` with `template` and mark the character spans that are trained. With the
    template's ``frame`` (`ftx.data.fast_spans`), one render finds the spans when it can."""
    if train_on not in TRAIN_ON:
        raise BadInput(f"unknown train_on {train_on!r}; expected one of: {', '.join(TRAIN_ON)}")
    if conv.is_text:
        text = conv.text + (getattr(tokenizer, "eos_token", None) or "")
        return TrainedSpans(text, [(0, len(text))], default_prefix_ids(tokenizer))
    if train_on == "all":
        text = _render(conv, template, conv.messages, False)
        return TrainedSpans(text, [(0, len(text))], template.prefix_ids)
    if frame is not None:
        try:
            found = spans_by_frame(conv.messages, template, frame)
        except Exception:  # the prefix method below reports the template's error
            found = None
        if found is not None:
            return TrainedSpans(found[0], found[1], template.prefix_ids)
    try:
        text, spans = assistant_spans(conv.messages, template)
    except BadInput as err:
        raise BadInput(f"{conv.source}: {err.message}", hint=err.hint) from None
    except _template_error() as err:
        raise _template_refused(conv, err) from None
    return TrainedSpans(text, spans, template.prefix_ids)


def encode(marked: list[TrainedSpans], tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """Tokenise marked texts (batched) and label them; returns ``[(input_ids, labels), ...]``.

    A fast tokenizer encodes a chunk of texts in one call (its own threads), straight through
    its Rust backend when transformers would add nothing to that call (no truncation, padding
    or split special tokens set on it); the labels of the whole chunk come from one vectorised
    overlap test of token offsets against the trained spans.
    """
    if not marked:
        return []
    if not getattr(tokenizer, "is_fast", False):
        return [_encode_pieces(p, tokenizer) for p in marked]
    backend = _plain_backend(tokenizer)
    out = []
    for start in range(0, len(marked), 1024):
        chunk = marked[start : start + 1024]
        texts = [p.text for p in chunk]
        if backend is not None:
            encodings = backend.encode_batch(texts, add_special_tokens=False)
            ids_offsets = [(e.ids, e.offsets) for e in encodings]
        else:
            enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
            ids_offsets = list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))
        for p, (ids, labels) in zip(chunk, _label_chunk(ids_offsets, chunk), strict=True):
            out.append((list(p.prefix_ids) + ids, [IGNORE_INDEX] * len(p.prefix_ids) + labels))
    return out


def _plain_backend(tokenizer: Any) -> Any:
    """The fast tokenizer's Rust backend when calling it directly gives what ``tokenizer(texts,
    add_special_tokens=False)`` gives, else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return None
    if backend.encode_special_tokens != bool(getattr(tokenizer, "split_special_tokens", False)):
        return None
    return backend


def _label_chunk(
    ids_offsets: list[tuple[list[int], list]], marked: list[TrainedSpans]
) -> list[tuple[list[int], list[int]]]:
    """``(ids, labels)`` per text: a token is trained when its characters overlap a trained span
    (a zero-width token counts as one character wide). All texts of the chunk are laid end to
    end so that one sorted search labels every token."""
    import numpy as np

    lengths = [len(ids) for ids, _ in ids_offsets]
    bases = np.cumsum([0] + [len(p.text) + 1 for p in marked[:-1]], dtype=np.int64)
    offsets = np.fromiter(
        (c for _, offs in ids_offsets for pair in offs for c in pair),
        dtype=np.int64,
        count=2 * sum(lengths),
    ).reshape(-1, 2)
    shift = np.repeat(bases, lengths)
    starts = offsets[:, 0] + shift
    ends = np.maximum(offsets[:, 1] + shift, starts + 1)
    span_bounds = [
        (b + s, b + e) for b, p in zip(bases.tolist(), marked, strict=True) for s, e in p.spans
    ]
    spans = np.asarray(span_bounds, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(spans[:, 1], starts, side="right")  # first span ending after start
    inside = first < len(spans)
    trained = np.zeros(len(starts), dtype=bool)
    trained[inside] = spans[first[inside], 0] < ends[inside]
    flat_ids = np.fromiter((i for ids, _ in ids_offsets for i in ids), np.int64, sum(lengths))
    labels = np.where(trained, flat_ids, IGNORE_INDEX)
    cuts = np.cumsum(lengths)[:-1]
    return [
        (ids, row.tolist())
        for (ids, _), row in zip(ids_offsets, np.split(labels, cuts), strict=True)
    ]


def _encode_pieces(p: TrainedSpans, tokenizer: Any) -> tuple[list[int], list[int]]:
    ids, labels = list(p.prefix_ids), [IGNORE_INDEX] * len(p.prefix_ids)
    cursor = 0
    for start, end in [*p.spans, (len(p.text), len(p.text))]:
        for piece, trained in ((p.text[cursor:start], False), (p.text[start:end], True)):
            if piece:
                piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += piece_ids
                labels += piece_ids if trained else [IGNORE_INDEX] * len(piece_ids)
        cursor = end
    return ids, labels


def _render(conv: Conversation, template: Template, messages: list[dict], gen: bool) -> str:
    try:
        return template.render(messages, gen)
    except _template_error() as err:
        raise _template_refused(conv, err) from None


def _template_error() -> type[Exception]:
    """What a model's Jinja chat template raises when it refuses a conversation."""
    from jinja2.exceptions import TemplateError

    return TemplateError


def _template_refused(conv: Conversation, err: Exception) -> BadInput:
    return BadInput(
        f"{conv.source}: the model's chat template refused this conversation ({err})",
        hint="fix the row, or pass a fallback template: --set data.template=chatml",
    )
