"""Assistant spans from one render per conversation, for templates whose turns have a fixed frame.

`ftx.data.templates.assistant_spans` renders every prefix of a conversation (1 + 2k renders for k
assistant turns): exact for any template, and the cost that dominates tokenising large chat
datasets with a Jinja chat template. Most templates frame an assistant turn the same way every
time: the generation prompt ``G`` (``<|im_start|>assistant\\n``), the content verbatim, then a
closing ``E`` (``<|im_end|>\\n``). For those, the spans follow from the full render alone: each
assistant content is found in order right after ``G``, and the turn ends where the closing's
end-of-turn marker does.

:func:`frame_of` learns ``G`` and ``E`` from probe conversations and returns None for templates
without such a frame (then the prefix method is used). :func:`spans_by_frame` returns None for a
conversation whose render does not show the frame (a template that rewrites history, trims
content, …), and the caller falls back to the prefix method for that conversation. Callers also
check the two methods agree on the first rows of a dataset (:func:`agrees_on`) before trusting
this one for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftx.data.templates import Span, Template, assistant_spans, turn_end

_USER = "ftx-probe-user-7d1f"
_ANSWER = "ftx-probe-answer-3c9a"


@dataclass(frozen=True)
class Frame:
    """What a template writes around an assistant message: ``opening`` (the generation prompt)
    before its content and ``closing`` after it."""

    opening: str
    closing: str


def frame_of(template: Template) -> Frame | None:
    """The template's assistant frame, or None when probe renders do not show a fixed one."""
    try:
        asked = [{"role": "user", "content": _USER}]
        prompt = template.render(asked, True)
        plain = template.render(asked, False)
        answered = template.render([*asked, {"role": "assistant", "content": _ANSWER}], False)
    except Exception:  # a template that cannot render probes gets no shortcut
        return None
    if not prompt.startswith(plain) or not answered.startswith(prompt + _ANSWER):
        return None
    opening = prompt[len(plain) :]
    closing = answered[len(prompt) + len(_ANSWER) :]
    if not opening or not closing:
        return None
    return Frame(opening, closing)


def spans_by_frame(
    messages: list[dict], template: Template, frame: Frame, rendered: str | None = None
) -> tuple[str, list[Span]] | None:
    """The render of ``messages`` (``rendered`` when given: the template's render of them) and
    its assistant spans, as `assistant_spans` would return them, or None when this render does
    not show ``frame`` around every assistant content."""
    full = template.render(messages, False) if rendered is None else rendered
    spans: list[Span] = []
    cursor = 0
    for message in messages:
        if message["role"] != "assistant":
            continue
        content = message["content"]
        at = full.find(frame.opening + content, cursor)
        if at < 0:
            return None
        start = at + len(frame.opening)
        content_end = start + len(content)
        if not full.startswith(frame.closing, content_end):
            return None
        end = turn_end(full, content_end, content_end + len(frame.closing), template)
        spans.append((start, end))
        cursor = end
    return full, spans


def agrees_on(conversations: list[list[dict]], template: Template, frame: Frame) -> bool:
    """True when `spans_by_frame` and the prefix method give the same text and spans for every
    one of ``conversations`` (a frame that declines a conversation does not disagree)."""
    for messages in conversations:
        fast = spans_by_frame(messages, template, frame)
        if fast is not None and fast != assistant_spans(messages, template):
            return False
    return True
