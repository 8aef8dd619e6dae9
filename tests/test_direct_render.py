"""Chat templates rendered straight through their compiled Jinja template
(`ftx.data.templates._direct_renderer`) give exactly ``apply_chat_template``'s text, with and
without the generation prompt, for every template of tests/test_fast_spans.py plus ones that read
the special tokens, refuse a system message or raise on a row; rows that are not plain
role/content strings, and a template the probe finds different, go through
``apply_chat_template``."""

from __future__ import annotations

import copy

import pytest

from ftx.data.templates import template_for
from tests.data_fixtures import chat_tokenizer, tiny_dirs  # noqa: F401
from tests.test_fast_spans import TEMPLATES, _conversations

EXTRA = {
    "reads_specials": "{{ bos_token }}{% for m in messages %}{{ m['role'] + ': ' + m['content']"
    " + eos_token }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
    "no_system": "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
}


def _tokenizer(chat_tokenizer, source):  # noqa: F811
    tokenizer = copy.deepcopy(chat_tokenizer)
    if source is not None:
        tokenizer.chat_template = source
    return tokenizer


def _count_calls(tokenizer, monkeypatch):
    """Count the tokenizer's ``apply_chat_template`` calls; return the list and the original."""
    calls = []
    original = type(tokenizer).apply_chat_template
    monkeypatch.setattr(
        type(tokenizer),
        "apply_chat_template",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )
    return calls, original


@pytest.mark.parametrize("name", sorted(TEMPLATES) + sorted(EXTRA))
def test_direct_render_equals_apply_chat_template(chat_tokenizer, name, monkeypatch):  # noqa: F811
    tokenizer = _tokenizer(chat_tokenizer, {**TEMPLATES, **EXTRA}[name])
    calls, original = _count_calls(tokenizer, monkeypatch)
    template = template_for(tokenizer)
    probed = len(calls)
    conversations = _conversations(7, 60)
    if name == "no_system":
        conversations = [[m for m in c if m["role"] != "system"] for c in conversations]
    for messages in conversations:
        for prompt in (False, True):
            for end in range(1, len(messages) + 1):
                expected = original(
                    tokenizer, messages[:end], tokenize=False, add_generation_prompt=prompt
                )
                assert template.render(messages[:end], prompt) == expected
        assert template.render_many([messages]) == [original(tokenizer, messages, tokenize=False)]
    assert len(calls) == probed  # every render above went the direct way


def test_a_refused_row_raises_the_templates_error(chat_tokenizer):  # noqa: F811
    from jinja2.exceptions import TemplateError

    template = template_for(_tokenizer(chat_tokenizer, EXTRA["no_system"]))
    with pytest.raises(TemplateError, match="System role not supported"):
        template.render([{"role": "system", "content": "x"}], False)


def test_other_messages_go_through_apply_chat_template(chat_tokenizer, monkeypatch):  # noqa: F811
    tokenizer = _tokenizer(chat_tokenizer, None)
    template = template_for(tokenizer)
    calls, original = _count_calls(tokenizer, monkeypatch)
    odd = [{"role": "user", "content": "hi", "name": "ann"}]
    assert template.render(odd, True) == original(
        tokenizer, odd, tokenize=False, add_generation_prompt=True
    )
    assert calls


def test_a_template_that_renders_differently_is_not_called_directly(chat_tokenizer, monkeypatch):  # noqa: F811
    """If transformers ever passes the template something ftx does not (here: a variable only
    apply_chat_template sets), the probe sees the difference and every render goes through it."""
    tokenizer = _tokenizer(
        chat_tokenizer, "{{ extra }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    original = type(tokenizer).apply_chat_template
    monkeypatch.setattr(
        type(tokenizer),
        "apply_chat_template",
        lambda self, *a, **k: original(self, *a, **{**k, "extra": "X"}),
    )
    template = template_for(tokenizer)
    assert template.render([{"role": "user", "content": "hi"}], False) == "Xhi"
