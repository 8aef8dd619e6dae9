"""Token-level label masks: only assistant output (and its end-of-turn token) is trained."""

from __future__ import annotations

import copy

import pytest

from ftx.data import (
    IGNORE_INDEX,
    Conversation,
    end_of_turn_text,
    load_conversations,
    prompt_for_generation,
    render,
    template_for,
    tokenize_dataset,
)
from ftx.data.templates import VICUNA_SYSTEM
from tests.data_fixtures import (  # noqa: F401
    NoOffsets,
    base_tokenizer,
    chat_tokenizer,
    smol_tokenizer,
    tiny_dirs,
    trained_runs,
    write_jsonl,
)

# One file per format; each row's assistant texts, in order.
FORMAT_ROWS = {
    "vicuna": (
        {
            "conversations": [
                {"from": "system", "value": "you are terse"},
                {"from": "human", "value": "what is the answer?"},
                {"from": "gpt", "value": "the answer is 42"},
                {"from": "human", "value": "and json?"},
                {"from": "gpt", "value": '{"name": "value", "ok": true}'},
            ]
        },
        ["the answer is 42", '{"name": "value", "ok": true}'],
    ),
    "openai": (
        {
            "messages": [
                {"role": "system", "content": "be kind"},
                {"role": "user", "content": "hello world"},
                {"role": "assistant", "content": "hello user"},
                {"role": "user", "content": "again"},
                {"role": "user", "content": "please"},
                {"role": "assistant", "content": "the quick brown fox"},
            ]
        },
        ["hello user", "the quick brown fox"],
    ),
    "alpaca": (
        {"instruction": "reverse", "input": "a b c", "output": "c b a", "system": "sys text"},
        ["c b a"],
    ),
    "prompt_completion": (
        {"prompt": "translate: order", "completion": "item price"},
        ["item price"],
    ),
}
TOKENIZERS = ["chat_tokenizer", "base_tokenizer", "smol_tokenizer"]
# (tokenizer, template) -> (text before each answer that is trained, end-of-turn marker)
EXPECTED_WRAP = {
    ("chat_tokenizer", "auto"): ("", "<|im_end|>"),
    ("smol_tokenizer", "auto"): ("", "<|im_end|>"),
    ("base_tokenizer", "auto"): (" ", "</s>"),
    ("chat_tokenizer", "vicuna_v1.1"): (" ", "</s>"),
    ("base_tokenizer", "vicuna_v1.1"): (" ", "</s>"),
    ("chat_tokenizer", "chatml"): ("", "<|im_end|>"),
    ("base_tokenizer", "chatml"): ("", "<|im_end|>"),
}


def _conv(tmp_path, fmt: str) -> Conversation:
    row, _ = FORMAT_ROWS[fmt]
    (conv,) = load_conversations(write_jsonl(tmp_path / f"{fmt}.jsonl", [row]))
    return conv


@pytest.mark.parametrize(("tok_name", "template"), list(EXPECTED_WRAP))
@pytest.mark.parametrize("fmt", list(FORMAT_ROWS))
def test_only_assistant_output_is_trained(request, tmp_path, fmt, tok_name, template):
    tokenizer = request.getfixturevalue(tok_name)
    conv = _conv(tmp_path, fmt)
    ids, labels = render(conv, tokenizer, template)
    lead, eot = EXPECTED_WRAP[(tok_name, template)]
    answers = FORMAT_ROWS[fmt][1]
    assert trained_runs(tokenizer, ids, labels) == [lead + a + eot for a in answers]
    # Everything else is present in the input but masked: system and user text.
    text = tokenizer.decode(ids, clean_up_tokenization_spaces=False)
    for message in conv.messages:
        assert message["content"] in text


def test_vicuna_v11_renders_exactly_like_fastchat(base_tokenizer, tmp_path):  # noqa: F811
    conv = Conversation(
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "what?"},
            {"role": "assistant", "content": "this"},
        ]
    )
    ids, _ = render(conv, base_tokenizer, "vicuna_v1.1")
    expected = f"{VICUNA_SYSTEM} USER: hello ASSISTANT: hi</s>USER: what? ASSISTANT: this</s>"
    assert base_tokenizer.decode(ids, clean_up_tokenization_spaces=False) == expected
    prompt, reference = prompt_for_generation(conv, base_tokenizer, "vicuna_v1.1")
    assert base_tokenizer.decode(prompt).endswith("USER: what? ASSISTANT:")
    assert reference == "this"


def test_default_system_prompt_injected_by_template_is_masked(smol_tokenizer):  # noqa: F811
    conv = Conversation(
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    )
    ids, labels = render(conv, smol_tokenizer)
    text = smol_tokenizer.decode(ids)
    assert "You are a helpful AI assistant named SmolLM" in text
    assert trained_runs(smol_tokenizer, ids, labels) == ["hello<|im_end|>"]
    assert not text.endswith("<|im_end|>")  # the newline after it is there, and not trained
    assert labels[-1] == IGNORE_INDEX


def test_pad_equals_eos_does_not_mask_end_of_turn(chat_tokenizer):  # noqa: F811
    assert chat_tokenizer.pad_token_id == chat_tokenizer.eos_token_id
    conv = Conversation(
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    )
    ids, labels = render(conv, chat_tokenizer)
    eos = chat_tokenizer.eos_token_id
    trained_eos = [
        i for i, (t, lab) in enumerate(zip(ids, labels, strict=True)) if t == eos and lab == eos
    ]
    assert len(trained_eos) == 1  # the assistant's, not the user's/system's


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_train_on_all_trains_every_token(request, tmp_path, tok_name):
    tokenizer = request.getfixturevalue(tok_name)
    ids, labels = render(_conv(tmp_path, "vicuna"), tokenizer, train_on="all")
    assert labels[len(labels) - len(ids) :] == ids[len(ids) - len(labels) :]
    prefix = len(template_for(tokenizer).prefix_ids)
    assert labels[prefix:] == ids[prefix:]


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_text_rows_train_everything_plus_eos(request, tmp_path, tok_name):
    tokenizer = request.getfixturevalue(tok_name)
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "the quick brown fox"}])
    (conv,) = load_conversations(path)
    ids, labels = render(conv, tokenizer)
    assert labels == ids
    assert tokenizer.decode(ids) == "the quick brown fox" + tokenizer.eos_token
    with pytest.raises(Exception, match="no assistant turn"):
        prompt_for_generation(conv, tokenizer)


@pytest.mark.parametrize(("tok_name", "template"), list(EXPECTED_WRAP))
def test_prompt_for_generation_is_the_prefix_training_saw(request, tmp_path, tok_name, template):
    tokenizer = request.getfixturevalue(tok_name)
    conv = _conv(tmp_path, "openai")
    ids, labels = render(conv, tokenizer, template)
    prompt, reference = prompt_for_generation(conv, tokenizer, template)
    assert reference == "the quick brown fox"
    last_trained_start = max(
        i for i in range(len(labels)) if labels[i] != IGNORE_INDEX and labels[i - 1] == IGNORE_INDEX
    )
    assert prompt == ids[:last_trained_start]


def test_end_of_turn_text(chat_tokenizer, base_tokenizer):  # noqa: F811
    assert end_of_turn_text(template_for(chat_tokenizer)) == "<|im_end|>"
    assert end_of_turn_text(template_for(base_tokenizer)) == "</s>"
    assert end_of_turn_text(template_for(base_tokenizer, "chatml")) == "<|im_end|>"


def test_template_that_rewrites_history_falls_back_to_search(chat_tokenizer):  # noqa: F811
    tokenizer = copy.deepcopy(chat_tokenizer)
    # Like Qwen3: the generation prompt opens an empty "think" block that history never shows.
    tokenizer.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
        "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\n<think></think>' }}{% endif %}"
    )
    conv = Conversation(
        messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "second"},
        ]
    )
    ids, labels = render(conv, tokenizer)
    assert trained_runs(tokenizer, ids, labels) == ["first answer<|im_end|>", "second<|im_end|>"]


def test_no_offsets_tokenizer_gives_the_same_labels(chat_tokenizer, tmp_path):  # noqa: F811
    conv = _conv(tmp_path, "vicuna")
    assert render(conv, NoOffsets(chat_tokenizer)) == render(conv, chat_tokenizer)


# -- tokenize_dataset: truncation and dropping ---------------------------------------------------


def _qa(question: str, answer: str) -> Conversation:
    return Conversation(
        messages=[{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        source=f"mem:{question[:5]}",
    )


def test_truncation_and_dropped_counts(chat_tokenizer):  # noqa: F811
    short = _qa("hi", "ok")
    cut = _qa("hi", "the quick brown fox jumps over the lazy dog " * 8)  # answer cut
    gone = _qa("the quick brown fox jumps over the lazy dog " * 8, "ok")  # prompt fills it all
    max_length = 40
    full = [render(c, chat_tokenizer) for c in (short, cut, gone)]
    assert len(full[0][0]) <= max_length < len(full[1][0]) and max_length < len(full[2][0])
    data = tokenize_dataset([short, cut, gone], chat_tokenizer, max_length=max_length)
    stats = data.stats
    assert stats["rows"] == 3 and stats["kept"] == 2
    assert stats["truncated"] == 2 and stats["dropped"] == 1
    assert stats["dropped_sources"] == [gone.source]
    assert stats["lengths"] == [len(ids) for ids, _ in full]
    assert [e["input_ids"] for e in data.examples] == [full[0][0], full[1][0][:max_length]]
    assert [e["labels"] for e in data.examples] == [full[0][1], full[1][1][:max_length]]
    assert stats["tokens"] == len(full[0][0]) + max_length
    trained = sum(lab != IGNORE_INDEX for e in data.examples for lab in e["labels"])
    assert stats["trained_tokens"] == trained


def test_tokenize_dataset_matches_render(chat_tokenizer, tmp_path):  # noqa: F811
    convs = [_conv(tmp_path, fmt) for fmt in FORMAT_ROWS]
    data = tokenize_dataset(convs, chat_tokenizer, max_length=512, train_on="assistant")
    for conv, example in zip(convs, data.examples, strict=True):
        ids, labels = render(conv, chat_tokenizer)
        assert example == {"input_ids": ids, "labels": labels}
    assert data.stats["template"] == "chat_template"


@pytest.mark.slow
def test_smollm2_demo_data_masks_exactly_the_answers():
    """The real demo tokenizer (pad == eos == <|im_end|>, injected system prompt)."""
    from ftx.data import demo_data_paths
    from ftx.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(None))
    convs = load_conversations(demo_data_paths()[1])
    data = tokenize_dataset(convs, tokenizer, max_length=512)
    assert data.stats["kept"] == len(convs) and data.stats["truncated"] == 0
    for conv, example in zip(convs, data.examples, strict=True):
        ids, labels = example["input_ids"], example["labels"]
        answer = conv.messages[-1]["content"]
        assert trained_runs(tokenizer, ids, labels) == [answer + "<|im_end|>"]
        prompt, reference = prompt_for_generation(conv, tokenizer)
        assert reference == answer and prompt == ids[: len(prompt)]
        assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")
        assert labels[len(prompt)] != IGNORE_INDEX
