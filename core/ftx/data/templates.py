"""Chat templates: turn messages into text, and find which characters are the assistant's output.

A `Template` renders ``messages -> text`` (optionally ending with the generation prompt, e.g.
``<|im_start|>assistant\\n``). `template_for(tokenizer, name)` picks one:

* ``"auto"``: the tokenizer's own chat template when it has one, else ``vicuna_v1.1``;
* ``"chat_template"``: the tokenizer's chat template (`BadInput` if it has none);
* ``"vicuna_v1.1"``: exactly what FastChat renders for the seed's Vicuna models (system prompt
  "A chat between a curious user ...", ``USER: ... ASSISTANT: ...</s>``, sep ``" "``, sep2
  ``"</s>"``; a conversation's own system message replaces the default one). Under ``"auto"``
  with a tokenizer whose eos is not ``</s>``, sep2 is that eos instead (``vicuna_v1.1+eos``), so
  the model learns to emit a real end-of-sequence token;
* ``"chatml"``: ``<|im_start|>{role}\\n{content}<|im_end|>\\n``, no default system prompt.

`assistant_spans` finds the trained character spans by *prefix rendering*: for every assistant
message i, the render of ``messages[:i]`` with the generation prompt and the render of
``messages[:i+1]`` are prefixes of the full render, so the assistant's output is exactly the
text between the end of the generation prompt and the end of that turn's end-of-turn marker.
Whatever a template puts after the end-of-turn marker (ChatML's newline) is not trained. When a
template rewrites history (prefix renders are not prefixes), the spans fall back to locating each
assistant message's content in order, plus the end-of-turn marker that follows it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ftx.errors import BadInput

TEMPLATES = ("auto", "chat_template", "vicuna_v1.1", "chatml")
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

Span = tuple[int, int]


@dataclass(frozen=True)
class Template:
    """How to render a conversation.

    Attributes:
        name: ``chat_template``, ``vicuna_v1.1``, ``vicuna_v1.1+eos`` or ``chatml``.
        render: ``(messages, add_generation_prompt) -> text``.
        end_of_turn: the text that closes an assistant turn and is trained with it; None means
            "the first special token after the content" (used for tokenizer chat templates).
        prefix_ids: token ids put before the rendered text (the bos a base tokenizer adds by
            default, as FastChat's training does); empty for tokenizer chat templates, which
            write their own bos if they want one.
        special_tokens: special-token strings of the tokenizer (to find end-of-turn markers).
        render_many: ``[messages, ...] -> [text, ...]``, what `render` gives each without the
            generation prompt, in one call (a tokenizer's chat template: one
            ``apply_chat_template`` call per batch costs less than one per conversation);
            None when `render` is as cheap.
    """

    name: str
    render: Callable[[list[dict], bool], str]
    end_of_turn: str | None
    prefix_ids: tuple[int, ...] = ()
    special_tokens: tuple[str, ...] = field(default=(), repr=False)
    render_many: Callable[[list[list[dict]]], list[str]] | None = field(default=None, repr=False)


def template_for(tokenizer: Any, name: str = "auto") -> Template:
    """The `Template` called `name` (see module docstring) for `tokenizer`.

    Raises `BadInput` for an unknown name, or ``chat_template`` on a tokenizer without one.
    """
    specials = special_token_strings(tokenizer)
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if name == "auto":
        name = "chat_template" if has_chat else "vicuna_v1.1"
        eos = getattr(tokenizer, "eos_token", None)
        if name == "vicuna_v1.1" and eos and eos != "</s>":
            return _vicuna(eos, "vicuna_v1.1+eos", default_prefix_ids(tokenizer), specials)
    if name == "chat_template":
        if not has_chat:
            raise BadInput(
                "the tokenizer has no chat template",
                hint="pass a fallback template: --set data.template=vicuna_v1.1 (or chatml)",
            )
        render, render_many = _tokenizer_renderers(tokenizer)
        return Template("chat_template", render, None, (), specials, render_many)
    if name == "vicuna_v1.1":
        return _vicuna("</s>", name, default_prefix_ids(tokenizer), specials)
    if name == "chatml":
        return Template(name, _render_chatml, "<|im_end|>", default_prefix_ids(tokenizer), specials)
    raise BadInput(f"unknown chat template {name!r}; expected one of: {', '.join(TEMPLATES)}")


def special_token_strings(tokenizer: Any) -> tuple[str, ...]:
    """Every special-token string of `tokenizer` (named specials and added special tokens)."""
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    tokens.update(str(tok) for tok in decoder.values() if getattr(tok, "special", False))
    return tuple(sorted((t for t in tokens if t), key=len, reverse=True))


def default_prefix_ids(tokenizer: Any) -> tuple[int, ...]:
    """The ids `tokenizer` puts before any text by default (typically its bos), or ()."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return tuple(full[:start])
    return ()


def assistant_spans(messages: list[dict], template: Template) -> tuple[str, list[Span]]:
    """Render `messages`; return the text and the character spans of the assistant output.

    Each span runs from the end of the generation prompt to the end of the turn's end-of-turn
    marker (both included), so it holds exactly what a model must generate for that turn.
    """
    full = template.render(messages, False)
    spans: list[Span] = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = template.render(messages[:index], True)
        through = template.render(messages[: index + 1], False)
        if not (full.startswith(through) and through.startswith(before)):
            return full, _searched_spans(full, messages, template)
        content = message["content"]
        at = full.find(content, len(before), len(through))
        if at < 0:
            return full, _searched_spans(full, messages, template)
        end = turn_end(full, at + len(content), len(through), template)
        spans.append((len(before), end))
    return full, spans


def generation_prompt(messages: list[dict], template: Template) -> str:
    """The text of `messages` followed by the prompt that opens an assistant turn."""
    return template.render(messages, True)


def end_of_turn_text(template: Template) -> str | None:
    """The text that ends an assistant turn under `template` (to stop generation on)."""
    if template.end_of_turn is not None:
        return template.end_of_turn
    probe = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    text = template.render(probe, False)
    start = text.rfind("y") + 1
    hit = _first_special(text, start, len(text), template.special_tokens)
    return text[hit[0] : hit[1]] if hit else None


def turn_end(full: str, content_end: int, limit: int, template: Template) -> int:
    """End of the trained text after an assistant message's content (see module docstring)."""
    if template.end_of_turn is not None:
        at = full.find(template.end_of_turn, content_end, max(limit, content_end))
        if at >= 0:
            return at + len(template.end_of_turn)
    else:
        hit = _first_special(full, content_end, limit, template.special_tokens)
        if hit is not None:
            return hit[1]
    return content_end + len(full[content_end:limit].rstrip())


def _first_special(text: str, start: int, limit: int, specials: tuple[str, ...]) -> Span | None:
    """The first special token wholly inside ``text[start:limit]`` (at one position, the first
    of ``specials`` there, the longest as they are sorted), as a span; None when there is none."""
    if not specials:
        return None
    hit = _specials_pattern(specials).search(text, start, limit)
    return None if hit is None else hit.span()


@functools.lru_cache(maxsize=16)
def _specials_pattern(specials: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, specials)))


def _searched_spans(full: str, messages: list[dict], template: Template) -> list[Span]:
    """Spans for templates that rewrite history: each assistant content, found in order."""
    spans: list[Span] = []
    cursor = 0
    for number, message in enumerate(messages, start=1):
        if message["role"] != "assistant":
            continue
        at = full.find(message["content"], cursor)
        if at < 0:
            raise BadInput(
                f"the chat template does not render assistant message {number} verbatim, so "
                "its tokens cannot be located",
                hint="pass a fallback template: --set data.template=chatml (or vicuna_v1.1)",
            )
        end = turn_end(full, at + len(message["content"]), len(full), template)
        spans.append((at, end))
        cursor = end
    return spans


def _tokenizer_renderers(
    tokenizer: Any,
) -> tuple[Callable[[list[dict], bool], str], Callable[[list[list[dict]]], list[str]]]:
    def render(messages: list[dict], add_generation_prompt: bool) -> str:
        if not messages and not add_generation_prompt:
            return ""
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def render_many(conversations: list[list[dict]]) -> list[str]:
        if not all(conversations):  # an empty one: `render`'s case, and transformers refuses it
            return [render(messages, False) for messages in conversations]
        return tokenizer.apply_chat_template(conversations, tokenize=False)

    direct = _direct_renderer(tokenizer, render)
    if direct is None:
        return render, render_many

    def render_direct(messages: list[dict], add_generation_prompt: bool) -> str:
        if messages and not all(map(_plain_message, messages)):
            return render(messages, add_generation_prompt)
        return direct(messages, add_generation_prompt)

    def render_many_direct(conversations: list[list[dict]]) -> list[str]:
        return [render_direct(messages, False) for messages in conversations]

    return render_direct, render_many_direct


PLAIN_KEYS = frozenset({"role", "content"})
PROBE = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Two\nlines"},
    {"role": "assistant", "content": " spaced "},
)


def _plain_message(message: Any) -> bool:
    """A message transformers would pass to the template unchanged: a dict of ``role`` and
    ``content`` strings (ftx's readers make no other kind)."""
    return (
        type(message) is dict
        and message.keys() <= PLAIN_KEYS
        and type(message.get("content")) is str
        and type(message.get("role")) is str
    )


def _direct_renderer(
    tokenizer: Any, reference: Callable[[list[dict], bool], str]
) -> Callable[[list[dict], bool], str] | None:
    """The tokenizer's compiled chat template called as ``apply_chat_template`` calls it
    (``messages``, ``tools=None``, ``documents=None``, ``add_generation_prompt``, the special
    tokens by name), without its per-call copies and checks of every message, which cost as much
    as the template itself on short rows (BENCHMARKS.md §11). Only for plain messages
    (`_plain_message`: then transformers' normalisation changes nothing); None when
    transformers' compiler is not where it was, or when the renders of `PROBE` (each prefix,
    with and without the generation prompt, with and without the system message) differ from
    `reference`'s: then every render goes through ``apply_chat_template``."""
    try:
        from transformers.utils import chat_template_utils as jinja

        compiled = jinja._compile_jinja_template(tokenizer.get_chat_template())
        specials = jinja._plain_template_data(dict(tokenizer.special_tokens_map))
    except Exception:
        return None

    def direct(messages: list[dict], add_generation_prompt: bool) -> str:
        if not messages and not add_generation_prompt:
            return ""
        return compiled.render(
            messages=messages,
            tools=None,
            documents=None,
            add_generation_prompt=add_generation_prompt,
            **specials,
        )

    probes = [
        list(PROBE[start:end]) for start in (0, 1) for end in range(start + 1, len(PROBE) + 1)
    ]
    same = [
        _agrees(direct, reference, messages, prompt) for messages in probes for prompt in (0, 1)
    ]
    return direct if False not in same and True in same else None


def _agrees(
    direct: Callable[[list[dict], bool], str],
    reference: Callable[[list[dict], bool], str],
    messages: list[dict],
    prompt: int,
) -> bool | None:
    """Whether `direct` renders `messages` as `reference` does; None for a probe the template
    itself refuses (a template without a system role)."""
    try:
        expected = reference([dict(m) for m in messages], bool(prompt))
    except Exception:
        return None
    try:
        return direct([dict(m) for m in messages], bool(prompt)) == expected
    except Exception:
        return False


def _vicuna(
    sep2: str, name: str, prefix_ids: tuple[int, ...], specials: tuple[str, ...]
) -> Template:
    roles = {"user": "USER", "assistant": "ASSISTANT"}
    seps = {"user": " ", "assistant": sep2}

    def render(messages: list[dict], add_generation_prompt: bool) -> str:
        system = VICUNA_SYSTEM
        if messages and messages[0]["role"] == "system":
            system, messages = messages[0]["content"], messages[1:]
        parts = [system, " "]
        for message in messages:
            role = message["role"]
            parts += [roles[role], ": ", message["content"], seps[role]]
        if add_generation_prompt:
            parts.append("ASSISTANT:")
        return "".join(parts)

    return Template(name, render, sep2, prefix_ids, specials)


def _render_chatml(messages: list[dict], add_generation_prompt: bool) -> str:
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)
