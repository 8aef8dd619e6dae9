"""The one-render spans (`ftx.data.fast_spans`) equal the prefix method's, or step aside.

For a range of chat templates — framed ones (ChatML, SmolLM2's injected system prompt, Gemma,
Llama 3) and ones without a fixed frame (a Qwen3-style think block, Mistral's empty generation
prompt, a template that trims content, one that drops old answers, one that closes the last turn
differently) — and for seeded random conversations with awkward contents, `spans_by_frame`
returns either exactly what `assistant_spans` returns or None.
"""

from __future__ import annotations

import copy
import random

import pytest

from ftx.data import Conversation, tokenize_dataset
from ftx.data.fast_spans import frame_of, spans_by_frame
from ftx.data.templates import assistant_spans, template_for
from tests.data_fixtures import SMOLLM2_TEMPLATE, chat_tokenizer, tiny_dirs  # noqa: F401

LOOP = "{% for m in messages %}"
TEMPLATES = {
    "chatml": None,  # the tiny tokenizer's own
    "smollm2": SMOLLM2_TEMPLATE,
    "gemma": LOOP + "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role'])"
    " + '\n' + m['content'] + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}",
    "llama3_trim": LOOP + "{{ '<|im_start|>' + m['role'] + '\n\n' + m['content'] | trim + "
    "'<|im_end|>' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n\n' }}{% endif %}",
    "qwen3_think": LOOP + "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n<think></think>' }}{% endif %}",
    "mistral": LOOP + "{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
    "{% else %}{{ m['content'] + '<|im_end|>' }}{% endif %}{% endfor %}",
    "drops_old_answers": LOOP + "{% if m['role'] != 'assistant' or loop.last %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "last_closes_differently": LOOP + "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] }}"
    "{% if loop.last %}{{ '<|im_end|>' }}{% else %}{{ '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
}
FRAMED = {"chatml", "smollm2", "gemma", "llama3_trim", "drops_old_answers"}
CONTENTS = [
    "2xM-LATTE",
    "",
    "  padded  ",
    "line\nbreak\n",
    "same",
    "<|im_end|> inside",
    "assistant",
    "ü ñ 字",
]


def _conversations(seed: int, count: int, contents: list[str] = CONTENTS) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": rng.choice(contents)})
        for _ in range(rng.randint(1, 3)):
            messages += [
                {"role": "user", "content": rng.choice(contents)},
                {"role": "assistant", "content": rng.choice(contents)},
            ]
        out.append(messages)
    return out


def _template(chat_tokenizer, name):  # noqa: F811
    tokenizer = copy.deepcopy(chat_tokenizer)
    if TEMPLATES[name] is not None:
        tokenizer.chat_template = TEMPLATES[name]
    return tokenizer, template_for(tokenizer)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_one_render_spans_equal_the_prefix_method_or_step_aside(chat_tokenizer, name):  # noqa: F811
    _, template = _template(chat_tokenizer, name)
    frame = frame_of(template)
    assert (frame is not None) == (name in FRAMED)
    if frame is None:
        return
    used = 0
    for messages in _conversations(seed=len(name), count=300):
        fast = spans_by_frame(messages, template, frame)
        if fast is not None:
            used += 1
            assert fast == assistant_spans(messages, template), messages
    assert used > 0  # the shortcut is taken, not only declined


def test_chatml_takes_the_shortcut_for_plain_conversations(chat_tokenizer):  # noqa: F811
    _, template = _template(chat_tokenizer, "chatml")
    frame = frame_of(template)
    messages = [
        {"role": "user", "content": "two teas"},
        {"role": "assistant", "content": "2xM-TEA"},
        {"role": "user", "content": "and a latte"},
        {"role": "assistant", "content": "1xM-LATTE"},
    ]
    assert spans_by_frame(messages, template, frame) == assistant_spans(messages, template)


@pytest.mark.parametrize("name", ["smollm2", "llama3_trim", "last_closes_differently"])
def test_tokenize_dataset_labels_do_not_depend_on_the_shortcut(
    chat_tokenizer,  # noqa: F811
    monkeypatch,
    name,
):
    tokenizer, _ = _template(chat_tokenizer, name)
    # Contents a trimming template renders verbatim: padded ones are refused by both methods.
    verbatim = [c for c in CONTENTS if c == c.strip()]
    convs = [Conversation(messages=m) for m in _conversations(7, 120, verbatim)]
    with_shortcut = tokenize_dataset(convs, tokenizer, max_length=256)
    monkeypatch.setattr("ftx.data.tokens.frame_of", lambda template: None)
    without = tokenize_dataset(convs, tokenizer, max_length=256)
    assert with_shortcut.examples == without.examples
    assert with_shortcut.stats == without.stats


@pytest.mark.parametrize("name", ["smollm2", "gemma", "qwen3_think"])
def test_encode_gives_the_tokenizers_ids_and_labels_by_overlap(chat_tokenizer, name):  # noqa: F811
    """The batched encoder (Rust backend, one vectorised labelling per chunk) against the
    contract stated per token: ids as ``tokenizer(text)`` gives them, a label where the token's
    characters overlap a trained span."""
    from ftx.data.masking import IGNORE_INDEX, encode, mark_trained

    tokenizer, template = _template(chat_tokenizer, name)
    convs = [Conversation(messages=m) for m in _conversations(3, 200)]
    marked = [mark_trained(c, tokenizer, template, "assistant") for c in convs]
    for p, (ids, labels) in zip(marked, encode(marked, tokenizer), strict=True):
        enc = tokenizer(p.text, add_special_tokens=False, return_offsets_mapping=True)
        assert ids == list(p.prefix_ids) + enc["input_ids"]
        expected = [IGNORE_INDEX] * len(p.prefix_ids)
        for tid, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            overlaps = any(s < max(end, start + 1) and e > start for s, e in p.spans)
            expected.append(tid if overlaps else IGNORE_INDEX)
        assert labels == expected
