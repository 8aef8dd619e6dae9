"""Every data mistake raises BadInput naming the file and the line/row; never another error."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftx.data import FORMATS, load_conversations, render, split_eval, tokenize_dataset
from ftx.errors import BadInput
from tests.data_fixtures import chat_tokenizer, tiny_dirs, vicuna_row, write_jsonl  # noqa: F401

GOOD = vicuna_row(("human", "q"), ("gpt", "a"))


def bad(path: Path, fmt: str = "auto") -> str:
    with pytest.raises(BadInput) as info:
        load_conversations(path, fmt)
    return str(info.value)


def test_malformed_json_names_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"conversations": []},\n  {"conversations": [}\n]')
    message = bad(path)
    assert str(path) in message and "line 3" in message and "not valid JSON" in message


def test_jsonl_line_that_does_not_parse(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n{oops\n")
    message = bad(path)
    assert f"{path}, line 3: not valid JSON" in message


def test_row_missing_required_key_names_row(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, {"id": "x", "convs": []}])
    message = bad(path)
    assert f"{path}, line 2" in message and '"conversations"' in message
    assert "looks like" in message  # the expected shape is shown


@pytest.mark.parametrize(
    ("fmt", "row", "needle"),
    [
        ("alpaca", {"instruction": "i"}, 'missing "output"'),
        ("openai", {"messages": [{"content": "x"}]}, 'no "role"'),
        ("prompt_completion", {"prompt": "p"}, 'missing "completion"'),
        ("text", {"body": "x"}, 'missing "text"'),
        ("vicuna", {"conversations": [{"value": "x"}]}, 'no "from"'),
        ("vicuna", {"conversations": [{"from": "human"}, {"from": "gpt", "value": "a"}]}, "value"),
    ],
)
def test_missing_keys_per_format(tmp_path, fmt, row, needle):
    message = bad(write_jsonl(tmp_path / "d.jsonl", [row]), fmt)
    assert "line 1" in message and needle in message


def test_unknown_role(tmp_path):
    row = vicuna_row(("human", "q"), ("robot", "a"))
    message = bad(write_jsonl(tmp_path / "d.jsonl", [GOOD, row]))
    assert "line 2" in message and "unknown role 'robot'" in message and "human" in message


def test_openai_tool_role_is_unknown(tmp_path):
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}]}
    assert "unknown role 'tool'" in bad(write_jsonl(tmp_path / "d.jsonl", [row]))


def test_conversations_not_a_list(tmp_path):
    message = bad(write_jsonl(tmp_path / "d.jsonl", [{"conversations": "hello"}]))
    assert "line 1" in message and "expected a list" in message


def test_two_assistant_turns_without_user_between(tmp_path):
    row = vicuna_row(("human", "q"), ("gpt", "a"), ("gpt", "b"))
    message = bad(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert "line 1" in message and "both assistant messages" in message


def test_conversation_ending_without_assistant(tmp_path):
    row = vicuna_row(("human", "q"), ("gpt", "a"), ("human", "q2"))
    message = bad(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert "ends with a user message" in message


def test_assistant_before_any_user_and_late_system(tmp_path):
    assert "no user message before" in bad(
        write_jsonl(tmp_path / "a.jsonl", [vicuna_row(("gpt", "a"))])
    )
    late = vicuna_row(("human", "q"), ("system", "s"), ("gpt", "a"))
    assert "may only come first" in bad(write_jsonl(tmp_path / "b.jsonl", [late]))


def test_empty_conversation_and_empty_text(tmp_path):
    assert "no messages" in bad(write_jsonl(tmp_path / "a.jsonl", [{"conversations": []}]))
    assert '"text" is empty' in bad(write_jsonl(tmp_path / "b.jsonl", [{"text": "  "}]))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("e.jsonl", ""),
        ("e.jsonl", "\n\n"),
        ("e.json", "[]"),
        ("e.json", ""),
        ("e.csv", "id,text\n"),
    ],
)
def test_empty_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    message = bad(path)
    assert str(path) in message and "no rows" in message


def test_missing_path_unsupported_type_and_empty_directory(tmp_path):
    assert "not found" in bad(tmp_path / "nope.jsonl")
    (tmp_path / "d.txt").write_text("x")
    assert "unsupported data file type" in bad(tmp_path / "d.txt")
    (tmp_path / "empty").mkdir()
    assert "no data files" in bad(tmp_path / "empty")


def test_not_utf8_and_broken_parquet(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "\xff\xfe"}\n')
    assert "not UTF-8" in bad(tmp_path / "b.jsonl")
    good = b'{"text": "ok"}\n'
    (tmp_path / "c.jsonl").write_bytes(good * 2 + b'{"text": "\xc3("}\n')  # read a line at a time
    message = bad(tmp_path / "c.jsonl")
    assert f"byte {2 * len(good) + 10}, line 3" in message and "not UTF-8" in message
    (tmp_path / "b.parquet").write_bytes(b"not parquet at all")
    assert "not a readable Parquet file" in bad(tmp_path / "b.parquet")


def test_a_byte_order_mark_is_not_part_of_the_first_row(tmp_path):
    from ftx.data import load_conversations

    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "a"}\n\n{"text": "b"}\n')
    assert [(c.text, c.source) for c in load_conversations(path)] == [
        ("a", "bom.jsonl:1"),
        ("b", "bom.jsonl:3"),
    ]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_jsonl_lines_end_as_universal_newlines_say(tmp_path, newline):
    """Windows and old Mac line endings number the lines as a text editor does; a line
    separator inside a JSON string (U+2028, valid unescaped JSON) does not split its row."""
    from ftx.data import load_conversations

    rows = [b'{"text": "a"}', b"", '{"text": "b\u2028c"}'.encode(), b'{"text": 1']
    path = tmp_path / "ends.jsonl"
    path.write_bytes(newline.join(rows) + newline)
    message = bad(path)
    assert "line 4: not valid JSON" in message
    path.write_bytes(newline.join(rows[:3]))
    got = [(c.text, c.source) for c in load_conversations(path)]
    assert got == [("a", "ends.jsonl:1"), ("b\u2028c", "ends.jsonl:3")]


def test_json_top_level_not_rows(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{"a": 1, "b": 2}')
    assert "expected a JSON list of rows" in bad(path)


def test_csv_bad_json_cell_and_extra_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('conversations\n"[{""from"": ""human"""\n')
    message = bad(path)
    assert "row 1" in message and "not valid JSON" in message
    extra = tmp_path / "e.csv"
    extra.write_text("text\nok\na,b\n")
    assert "row 2" in bad(extra)


def test_unknown_format_name_suggests(tmp_path):
    message = bad(write_jsonl(tmp_path / "d.jsonl", [GOOD]), "vicunna")
    assert "unknown data format 'vicunna'" in message and "did you mean 'vicuna'" in message


def test_undetectable_format(tmp_path):
    message = bad(write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}]))
    assert "line 1" in message and "cannot tell the data format" in message


def test_bad_max_length_template_train_on_and_ratio(chat_tokenizer, tmp_path):  # noqa: F811
    convs = load_conversations(write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD]))
    with pytest.raises(BadInput, match="max_length"):
        tokenize_dataset(convs, chat_tokenizer, max_length=0)
    with pytest.raises(BadInput, match="unknown chat template"):
        render(convs[0], chat_tokenizer, template="alpaca_v9")
    with pytest.raises(BadInput, match="train_on"):
        render(convs[0], chat_tokenizer, train_on="users")
    with pytest.raises(BadInput, match="eval ratio"):
        split_eval(convs, 1.5, seed=0)
    with pytest.raises(BadInput, match="no training rows"):
        split_eval(convs, 0.9, seed=0)


def test_template_that_refuses_a_conversation(chat_tokenizer, tmp_path):  # noqa: F811
    import copy

    tokenizer = copy.deepcopy(chat_tokenizer)
    tokenizer.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    row = vicuna_row(("system", "s"), ("human", "q"), ("gpt", "a"))
    (conv,) = load_conversations(write_jsonl(tmp_path / "d.jsonl", [row]))
    with pytest.raises(BadInput) as info:
        render(conv, tokenizer)
    assert "d.jsonl:1" in str(info.value) and "System role not supported" in str(info.value)


# -- property-based: random rows -----------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "conversations",
        "messages",
        "from",
        "value",
        "role",
        "content",
        "instruction",
        "input",
        "output",
        "prompt",
        "completion",
        "text",
        "system",
        "id",
        "type",
    ]
)
ROLES = st.sampled_from(["human", "gpt", "user", "assistant", "system", "tool", "x", ""])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8), ROLES
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
ROWS = st.one_of(st.dictionaries(KEYS, VALUES, max_size=5), VALUES)


def _check_load(tmp: Path, rows: list, fmt: str, tokenizer) -> None:
    path = write_jsonl(tmp / "random.jsonl", rows)
    try:
        convs = load_conversations(path, fmt)
    except BadInput as err:
        message = str(err)
        assert str(path) in message
        assert "line " in message
        return
    for conv in convs:  # what loads must also render
        render(conv, tokenizer)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROWS, min_size=1, max_size=3), fmt=st.sampled_from(["auto", *FORMATS]))
def test_random_rows_load_or_raise_bad_input(chat_tokenizer, rows, fmt):  # noqa: F811
    with tempfile.TemporaryDirectory() as tmp:
        _check_load(Path(tmp), rows, fmt, chat_tokenizer)


MUTATIONS = [
    lambda r: r.pop("conversations"),
    lambda r: r.update(conversations="text"),
    lambda r: r.update(conversations={"from": "human"}),
    lambda r: r["conversations"].append({"from": "gpt", "value": "again"}),
    lambda r: r["conversations"].append({"from": "human", "value": "dangling"}),
    lambda r: r["conversations"][0].update({"from": "narrator"}),
    lambda r: r["conversations"][1].update(value=None),
    lambda r: r["conversations"][1].update(value=7),
    lambda r: r["conversations"][0].pop("from"),
    lambda r: r["conversations"].insert(0, "not an object"),
    lambda r: r["conversations"].reverse(),
    lambda r: r["conversations"].clear(),
    lambda r: r["conversations"].insert(1, {"from": "system", "value": "late"}),
]


@settings(max_examples=60, deadline=None)
@given(
    mutation=st.sampled_from(MUTATIONS),
    prefix=st.integers(min_value=0, max_value=3),
    text=st.text(min_size=1, max_size=20),
)
def test_malformed_vicuna_row_always_names_its_line(mutation, prefix, text):
    row = vicuna_row(("human", text), ("gpt", text))
    mutation(row)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "m.jsonl", [GOOD] * prefix + [row])
        with pytest.raises(BadInput) as info:
            load_conversations(path, "vicuna")
    assert f"{path}, line {prefix + 1}:" in str(info.value)


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "a", "completion": ""},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]},
    ],
)
def test_an_empty_answer_is_refused_for_training_but_not_for_generation(tmp_path, row):
    from ftx.objectives.supervised import load_rows

    path = write_jsonl(tmp_path / "d.jsonl", [row])
    with pytest.raises(BadInput) as err:
        load_rows(str(path), "auto")
    assert "d.jsonl:1" in err.value.message and "empty assistant message" in err.value.message
    assert len(load_conversations(path)) == 1  # `ftx generate` fills the answer in


def test_a_null_value_is_called_null_not_missing(tmp_path):
    message = bad(write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": None}]))
    assert '"completion" is null' in message
    message = bad(write_jsonl(tmp_path / "e.jsonl", [{"prompt": "p"}]), "prompt_completion")
    assert 'missing "completion"' in message and "a prompt_completion row" in message
    message = bad(write_jsonl(tmp_path / "f.jsonl", [{"messages": None}]), "openai")
    assert "an openai row" in message
