"""Reading files and normalising every format to conversations."""

from __future__ import annotations

import csv
import json

import pytest

from ftx.data import FORMATS, Conversation, demo_data_paths, load_conversations, split_eval
from ftx.data.formats import detect_format, load_with_formats
from ftx.data.readers import Row
from tests.data_fixtures import vicuna_row, write_jsonl

USER_ASSISTANT = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
]


def test_formats_tuple():
    assert FORMATS == ("vicuna", "openai", "alpaca", "prompt_completion", "text")


def test_vicuna_fastchat_row(tmp_path):
    path = write_jsonl(
        tmp_path / "v.jsonl",
        [
            vicuna_row(
                ("system", "be brief"),
                ("human", "q1"),
                ("gpt", "a1"),
                ("human", "q2"),
                ("gpt", "a2"),
                row_id="abc",
            )
        ],
    )
    (conv,) = load_conversations(path)
    assert conv == Conversation(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a2"},
        ],
        id="abc",
        source="v.jsonl:1",
    )


@pytest.mark.parametrize(
    ("user", "assistant"),
    [
        ("user", "assistant"),
        ("human", "chatgpt"),
        ("Human", "bing"),
        ("user", "bard"),
        ("user", "model"),
    ],
)
def test_sharegpt_role_variants(tmp_path, user, assistant):
    path = write_jsonl(tmp_path / "s.jsonl", [vicuna_row((user, "q"), (assistant, "a"))])
    (conv,) = load_conversations(path)
    assert [m["role"] for m in conv.messages] == ["user", "assistant"]


def test_vicuna_turns_with_role_content_keys(tmp_path):
    row = {"conversations": USER_ASSISTANT}
    (conv,) = load_conversations(write_jsonl(tmp_path / "rc.jsonl", [row]))
    assert conv.messages == USER_ASSISTANT
    assert conv.id is None


def test_openai_messages_with_developer_and_content_parts(tmp_path):
    row = {
        "messages": [
            {"role": "developer", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": "c"},
        ]
    }
    (conv,) = load_conversations(write_jsonl(tmp_path / "o.jsonl", [row]))
    assert conv.messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "c"},
    ]


def test_alpaca_with_and_without_input_and_system(tmp_path):
    rows = [
        {"instruction": "do", "input": "this", "output": "done", "system": "sys"},
        {"instruction": "do", "input": "", "output": "done"},
        {"instruction": "do", "output": "done"},
    ]
    convs = load_conversations(write_jsonl(tmp_path / "a.jsonl", rows))
    assert convs[0].messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "do\n\nthis"},
        {"role": "assistant", "content": "done"},
    ]
    for conv in convs[1:]:
        assert conv.messages == [
            {"role": "user", "content": "do"},
            {"role": "assistant", "content": "done"},
        ]


def test_prompt_completion_strings_and_message_lists(tmp_path):
    rows = [
        {"prompt": "p", "completion": "c"},
        {
            "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "p"}],
            "completion": [{"role": "assistant", "content": "c"}],
        },
    ]
    first, second = load_conversations(write_jsonl(tmp_path / "pc.jsonl", rows))
    assert first.messages == [
        {"role": "user", "content": "p"},
        {"role": "assistant", "content": "c"},
    ]
    assert second.messages[0] == {"role": "system", "content": "s"}
    assert second.messages[1:] == first.messages


def test_text_rows(tmp_path):
    (conv,) = load_conversations(write_jsonl(tmp_path / "t.jsonl", [{"text": "raw words"}]))
    assert conv.is_text and conv.text == "raw words" and conv.messages == []


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        (vicuna_row(("human", "q"), ("gpt", "a")), "vicuna"),
        ({"messages": USER_ASSISTANT}, "openai"),
        ({"instruction": "i", "output": "o"}, "alpaca"),
        ({"prompt": "p", "completion": "c"}, "prompt_completion"),
        ({"text": "t"}, "text"),
    ],
)
def test_detect_format(tmp_path, row, fmt):
    assert detect_format(Row(tmp_path / "f.jsonl", "line 1", row)) == fmt


def test_explicit_format_overrides_detection(tmp_path):
    # Has "text" and "prompt": auto picks prompt_completion, --format text trains on the text.
    path = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "p", "completion": "c", "text": "t"}])
    assert not load_conversations(path)[0].is_text
    assert load_conversations(path, "text")[0].text == "t"


# -- file types ------------------------------------------------------------------------------

ROWS = [
    vicuna_row(("human", "q1"), ("gpt", "a1"), row_id="1"),
    vicuna_row(("human", "q2"), ("gpt", "a2"), row_id="2"),
]


def _answers(convs: list[Conversation]) -> list[str]:
    return [c.messages[-1]["content"] for c in convs]


def test_json_list(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(ROWS))
    convs = load_conversations(path)
    assert _answers(convs) == ["a1", "a2"]
    assert [c.source for c in convs] == ["d.json:1", "d.json:2"]


def test_json_object_with_data_key(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"version": 1, "data": ROWS}))
    assert _answers(load_conversations(path)) == ["a1", "a2"]


def test_json_single_row_object(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ROWS[0]))
    assert _answers(load_conversations(path)) == ["a1"]


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n")
    assert [c.source for c in load_conversations(path)] == ["d.jsonl:1", "d.jsonl:3"]


def test_csv_with_json_cells_and_plain_columns(tmp_path):
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "conversations"])
        for row in ROWS:
            writer.writerow([row["id"], json.dumps(row["conversations"])])
    assert _answers(load_conversations(path)) == ["a1", "a2"]
    alpaca = tmp_path / "a.csv"
    alpaca.write_text('instruction,input,output\n"say, hi",,hello\n')
    (conv,) = load_conversations(alpaca)
    assert conv.messages[0] == {"role": "user", "content": "say, hi"}


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    convs = load_conversations(path)
    assert _answers(convs) == ["a1", "a2"]
    assert convs[1].source == "d.parquet:2"


def test_directory_reads_supported_files_sorted(tmp_path):
    folder = tmp_path / "dir"
    folder.mkdir()
    write_jsonl(folder / "b.jsonl", [ROWS[1]])
    write_jsonl(folder / "a.jsonl", [{"messages": USER_ASSISTANT}])  # another format
    (folder / "README.md").write_text("not data")
    convs, formats = load_with_formats(folder)
    assert _answers(convs) == ["hello", "a2"]
    assert list(formats.values()) == ["openai", "vicuna"]


def test_demo_files_load():
    train, heldout = demo_data_paths()
    train_convs, held_convs = load_conversations(train), load_conversations(heldout)
    assert len(train_convs) == 480 and len(held_convs) == 80
    asked = {c.messages[0]["content"] for c in train_convs}
    assert not asked & {c.messages[0]["content"] for c in held_convs}


def test_demo_files_are_what_the_script_generates():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_demo_data.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_split_eval_is_deterministic_and_disjoint():
    items = list(range(100))
    train, held = split_eval(items, 0.1, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert sorted(train + held) == items
    assert train == sorted(train) and held == sorted(held)  # original order kept
    assert split_eval(items, 0.1, seed=3) == (train, held)
    assert split_eval(items, 0.1, seed=4) != (train, held)
    assert split_eval(items, 0.0, seed=3) == (items, [])
