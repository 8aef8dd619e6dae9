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
from ftx.data.encoding import IGNORE_INDEX as IGNORE_INDEX  # the labels' "not trained"
from ftx.data.encoding import encode_flat, split_rows
from ftx.data.fast_spans import Frame, spans_by_frame
from ftx.data.templates import Span, Template, assistant_spans, default_prefix_ids, template_for
from ftx.errors import BadInput

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
    rendered: str | None = None,
) -> TrainedSpans:
    """Render `conv` with `template` and mark the character spans that are trained. With the
    template's ``frame`` (`ftx.data.fast_spans`), one render finds the spans when it can
    (``rendered``, when given, is that render, made beforehand)."""
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
            found = spans_by_frame(conv.messages, template, frame, rendered)
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
    """Tokenise marked texts (batched) and label them; returns ``[(input_ids, labels), ...]``
    as Python lists (`ftx.data.encoding.encode_flat` gives them as arrays)."""
    return split_rows(encode_flat(marked, tokenizer))


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
