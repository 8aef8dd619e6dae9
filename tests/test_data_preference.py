"""Preference data: every shape detected and normalised, bad input named, ftx's tokenisation
into TRL's columns, ``ftx data check`` on pairs and KTO rows, and the preference demo."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftx.commands.data_check import data as data_group
from ftx.data import (
    IGNORE_INDEX,
    PAIR_COLUMNS,
    add_kl_completions,
    data_check_report,
    demo_preference_paths,
    detect_preference_format,
    load_conversations,
    load_labelled_completions,
    load_preference_pairs,
    render,
    tokenize_labelled,
    tokenize_pairs,
)
from ftx.data.readers import read_rows
from ftx.errors import BadInput
from tests.data_fixtures import (  # noqa: F401
    base_tokenizer,
    chat_tokenizer,
    smol_tokenizer,
    tiny_dirs,
    write_jsonl,
)

ROOT = Path(__file__).resolve().parent.parent
USER = {"role": "user", "content": "two lattes"}
GOOD = {"role": "assistant", "content": "2xM-LATTE"}
BAD = {"role": "assistant", "content": "3xM-LATTE"}


def pair_row(**extra) -> dict:
    return {"id": 7, "prompt": [USER], "chosen": [GOOD], "rejected": [BAD], **extra}


def load_one(tmp_path: Path, row: dict, fmt: str = "auto", name: str = "p.jsonl"):
    return load_preference_pairs(write_jsonl(tmp_path / name, [row]), fmt)[0]


# --- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        (pair_row(), "preference"),
        ({"prompt": "two lattes", "chosen": "2xM-LATTE", "rejected": "3xM-LATTE"}, "preference"),
        (
            {
                "prompt": [USER],
                "chosen": {"role": "assistant", "content": "2xM-LATTE"},
                "rejected": BAD,
            },
            "preference",
        ),
        ({"chosen": [USER, GOOD], "rejected": [USER, BAD]}, "preference_implicit"),
        (
            {
                "conversations": [{"from": "human", "value": "two lattes"}],
                "chosen": {"from": "gpt", "value": "2xM-LATTE"},
                "rejected": {"from": "gpt", "value": "3xM-LATTE"},
            },
            "sharegpt_preference",
        ),
        ({"messages": [USER], "chosen": [GOOD], "rejected": [BAD]}, "sharegpt_preference"),
    ],
)
def test_every_pair_shape_normalises_to_the_same_pair(tmp_path, row, fmt):
    pair = load_one(tmp_path, row)
    assert detect_preference_format(read_rows(tmp_path / "p.jsonl")[0]) == fmt
    assert pair.prompt == [USER]
    assert pair.chosen == [GOOD] and pair.rejected == [BAD]
    assert pair.source == "p.jsonl:1" and not pair.identical
    assert load_one(tmp_path, row, fmt) == pair  # the override gives the same


def test_sharegpt_system_and_multi_turn_implicit_prompt(tmp_path):
    pair = load_one(
        tmp_path,
        {
            "system": "be brief",
            "conversations": [
                {"from": "human", "value": "hi"},
                {"from": "gpt", "value": "hello"},
                {"from": "human", "value": "two lattes"},
            ],
            "chosen": [{"from": "gpt", "value": "2xM-LATTE"}],
            "rejected": {"role": "assistant", "content": "3xM-LATTE"},
        },
    )
    assert [m["role"] for m in pair.prompt] == ["system", "user", "assistant", "user"]
    assert pair.prompt[0]["content"] == "be brief"
    history = [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]
    history += [{"role": "assistant", "content": "hello"}, USER]
    pair = load_one(tmp_path, {"chosen": [*history, GOOD], "rejected": [*history, BAD]})
    assert pair.prompt == history and pair.chosen == [GOOD]


def test_kto_rows_and_unpaired_pairs(tmp_path):
    rows = [
        {"prompt": "two lattes", "completion": "2xM-LATTE", "label": True},
        {"prompt": [USER], "completion": [BAD], "label": False, "id": "x"},
    ]
    loaded = load_labelled_completions(write_jsonl(tmp_path / "k.jsonl", rows))
    assert [r.label for r in loaded] == [True, False]
    assert loaded[0].prompt == [USER] and loaded[1].completion == [BAD] and loaded[1].id == "x"
    unpaired = load_labelled_completions(write_jsonl(tmp_path / "p.jsonl", [pair_row()]))
    assert [(r.completion, r.label) for r in unpaired] == [([GOOD], True), ([BAD], False)]


def test_csv_parquet_json_and_directories(tmp_path):
    path = tmp_path / "p.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["prompt", "chosen", "rejected"])
        writer.writeheader()
        writer.writerow({"prompt": "two lattes", "chosen": "2xM-LATTE", "rejected": "3xM-LATTE"})
        writer.writerow(
            {"prompt": json.dumps([USER]), "chosen": json.dumps([GOOD]), "rejected": "[oops"}
        )
    pairs = load_preference_pairs(path)
    assert pairs[0].chosen == [GOOD] and pairs[1].prompt == [USER]
    assert pairs[1].rejected == [{"role": "assistant", "content": "[oops"}]  # text stays text
    kto = tmp_path / "k.csv"
    kto.write_text("prompt,completion,label\nq,a,true\nq,b,False\n")
    assert [r.label for r in load_labelled_completions(kto)] == [True, False]

    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "dir"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([pair_row(id="a")]), folder / "a.parquet")
    (folder / "b.json").write_text(json.dumps({"data": [pair_row(id="b")]}))
    pairs = load_preference_pairs(folder)
    assert [p.id for p in pairs] == ["a", "b"] and pairs[0].chosen == [GOOD]


# --- bad input ------------------------------------------------------------------------------


def bad(tmp_path: Path, rows: list, loader=load_preference_pairs, fmt: str = "auto") -> BadInput:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(BadInput) as info:
        loader(path, fmt)
    return info.value


def test_missing_rejected_names_the_row(tmp_path):
    err = bad(tmp_path, [pair_row(), {"prompt": "q", "chosen": "a"}])
    assert err.message == f'{tmp_path / "bad.jsonl"}, line 2: missing "rejected"'
    assert "prompt" in err.hint and "rejected" in err.hint


def test_identical_in_every_row_is_an_error_in_some_rows_a_statistic(tmp_path, chat_tokenizer):  # noqa: F811
    same = {"prompt": "q", "chosen": "a", "rejected": "a"}
    err = bad(tmp_path, [same, same])
    assert "chosen equals rejected in every one of the 2 pairs" in err.message
    assert "rejected must be a worse answer" in err.hint
    pairs = load_preference_pairs(write_jsonl(tmp_path / "ok.jsonl", [same, pair_row()]))
    assert [p.identical for p in pairs] == [True, False]
    stats = tokenize_pairs(pairs, chat_tokenizer, max_length=64).stats
    assert stats["identical"] == 1 and stats["identical_sources"] == ["ok.jsonl:1"]


@pytest.mark.parametrize("label", ["yes", 1, "true", None])
def test_kto_label_must_be_a_boolean(tmp_path, label):
    err = bad(
        tmp_path,
        [
            {"prompt": "q", "completion": "a", "label": True},
            {"prompt": "q", "completion": "b", "label": label},
        ],
        load_labelled_completions,
    )
    assert err.message.startswith(f"{tmp_path / 'bad.jsonl'}, line 2: ")
    if label is None:
        assert err.message.endswith('"label" is null')
    else:
        assert f'"label" is {label!r}, expected true or false' in err.message
        assert "JSON boolean" in err.hint


def test_csv_label_must_read_true_or_false(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text("prompt,completion,label\nq,a,true\nq,b,yes\n")
    with pytest.raises(BadInput, match=r"k.csv, row 2: \"label\" is 'yes', expected true or"):
        load_labelled_completions(path)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"prompt": "q", "chosen": "  ", "rejected": "b"}, 'the "chosen" answer is empty'),
        (
            {"prompt": "q", "chosen": "a", "rejected": [GOOD, BAD]},
            '"rejected" must be one assistant',
        ),
        ({"prompt": "q", "chosen": [USER], "rejected": "b"}, "roles: user"),
        ({"chosen": "a", "rejected": "b"}, "must be conversations"),
        (
            {"chosen": [USER, GOOD], "rejected": [{**USER, "content": "x"}, BAD]},
            "differ from message 1",
        ),
        ({"prompt": [GOOD], "chosen": "a", "rejected": "b"}, "no user message before it"),
        ({"prompt": [USER, GOOD], "chosen": "a", "rejected": "b"}, "both assistant messages"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, '"prompt" is a number (3)'),
        (
            {"prompt": [{"role": "robot", "content": "x"}], "chosen": "a", "rejected": "b"},
            "unknown role 'robot'",
        ),
    ],
)
def test_bad_pair_rows(tmp_path, row, problem):
    first = pair_row() if "prompt" in row else {"chosen": [USER, GOOD], "rejected": [USER, BAD]}
    err = bad(tmp_path, [first, row])
    assert err.message.startswith(f"{tmp_path / 'bad.jsonl'}, line 2: ")
    assert problem in err.message


def test_supervised_data_where_pairs_are_expected(tmp_path):
    vicuna = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    err = bad(tmp_path, [vicuna])
    assert "line 1: this looks like supervised data (vicuna format)" in err.message
    assert err.hint.startswith("use --objective supervised")
    err = bad(tmp_path, [{"prompt": "q", "completion": "a"}], load_labelled_completions)
    assert "supervised data (prompt_completion format)" in err.message
    err = bad(tmp_path, [{"question": "q"}])
    assert "cannot tell the preference data format from the keys ('question')" in err.message
    with pytest.raises(BadInput, match="is supervised data, not preference data"):
        load_preference_pairs(tmp_path / "bad.jsonl", "vicuna")
    with pytest.raises(BadInput, match="did you mean 'preference'"):
        load_preference_pairs(tmp_path / "bad.jsonl", "preferences")


def test_kto_data_where_pairs_are_expected(tmp_path):
    err = bad(tmp_path, [{"prompt": "q", "completion": "a", "label": True}])
    assert "this looks like KTO data" in err.message and "--objective kto" in err.hint
    with pytest.raises(BadInput, match="unpaired labelled completions"):
        load_preference_pairs(tmp_path / "bad.jsonl", "kto")


def test_preference_data_where_conversations_are_expected(tmp_path):
    for row in (
        pair_row(),
        {"chosen": [USER, GOOD], "rejected": [USER, BAD]},
        {"conversations": [{"from": "human", "value": "q"}], "chosen": GOOD, "rejected": BAD},
    ):
        path = write_jsonl(tmp_path / "p.jsonl", [row])
        with pytest.raises(BadInput) as info:
            load_conversations(path)
        assert "line 1: this looks like preference data" in info.value.message
        assert "use --objective dpo" in info.value.hint
    path = write_jsonl(tmp_path / "k.jsonl", [{"prompt": "q", "completion": "a", "label": False}])
    with pytest.raises(BadInput, match="this looks like KTO data") as info:
        load_conversations(path)
    assert "--objective kto" in info.value.hint
    # A supervised data set with a label column of its own stays supervised data.
    path = write_jsonl(tmp_path / "s.jsonl", [{"prompt": "q", "completion": "a", "label": "x"}])
    assert load_conversations(path)[0].messages[-1] == {"role": "assistant", "content": "a"}


# --- tokenisation ---------------------------------------------------------------------------


def two_pairs(tmp_path: Path):
    return load_preference_pairs(
        write_jsonl(
            tmp_path / "p.jsonl",
            [pair_row(), {"prompt": "the quick brown fox", "chosen": "a b c", "rejected": "d"}],
        )
    )


@pytest.mark.parametrize("which", ["chat", "smol", "base"])
def test_pair_ids_are_the_supervised_render(request, tmp_path, which):
    tokenizer = request.getfixturevalue(f"{which}_tokenizer")
    pairs = two_pairs(tmp_path)
    data = tokenize_pairs(pairs, tokenizer, max_length=512)
    assert data.stats["kept"] == 2 and data.stats["truncated"] == 0
    for pair, ex in zip(pairs, data.examples, strict=True):
        assert set(ex) == set(PAIR_COLUMNS["dpo"])
        for side in ("chosen", "rejected"):
            ids, labels = render(pair.conversation(side), tokenizer)
            whole = ex["prompt_ids"] + ex[f"{side}_ids"]
            assert ids[: len(whole)] == whole  # exactly the supervised ids, in order
            trained = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
            assert ex[f"{side}_ids"] == trained  # the answer = what SFT trains for that turn
    prompt = tokenizer.decode(data.examples[0]["prompt_ids"])
    chosen = tokenizer.decode(data.examples[0]["chosen_ids"])
    if which == "base":  # vicuna_v1.1+eos fallback: no chat template
        assert prompt.endswith("USER: two lattes ASSISTANT:") and chosen.endswith("LATTE</s>")
    else:
        assert prompt.endswith("<|im_start|>assistant\n")
        assert chosen == "2xM-LATTE<|im_end|>"  # not the newline ChatML writes after it


def test_cpo_columns(chat_tokenizer, tmp_path):  # noqa: F811
    pairs = two_pairs(tmp_path)
    dpo = tokenize_pairs(pairs, chat_tokenizer, max_length=512).examples[0]
    cpo = tokenize_pairs(pairs, chat_tokenizer, max_length=512, columns="cpo").examples[0]
    assert tuple(cpo) == PAIR_COLUMNS["cpo"]
    prompt = dpo["prompt_ids"]
    assert cpo["prompt_input_ids"] == prompt and cpo["prompt_attention_mask"] == [1] * len(prompt)
    for side in ("chosen", "rejected"):
        assert cpo[f"{side}_input_ids"] == prompt + dpo[f"{side}_ids"]
        assert cpo[f"{side}_labels"] == [IGNORE_INDEX] * len(prompt) + dpo[f"{side}_ids"]
        assert cpo[f"{side}_attention_mask"] == [1] * len(cpo[f"{side}_input_ids"])
    with pytest.raises(BadInput, match="unknown columns 'orpo'"):
        tokenize_pairs(pairs, chat_tokenizer, max_length=512, columns="orpo")


def test_truncation_modes(chat_tokenizer, tmp_path):  # noqa: F811
    pairs = two_pairs(tmp_path)[1:]  # one pair: a short prompt, answers of 3 words and 1
    full = tokenize_pairs(pairs, chat_tokenizer, max_length=512)
    prompt, chosen, rejected = (full.examples[0][k] for k in PAIR_COLUMNS["dpo"])
    limit = len(prompt) + len(rejected)  # the shorter answer fits, the longer does not
    assert len(chosen) > len(rejected)

    end = tokenize_pairs(pairs, chat_tokenizer, max_length=limit)
    ex = end.examples[0]
    assert end.stats["truncated"] == 1 and end.stats["dropped"] == 0
    assert ex["chosen_ids"] == chosen and ex["rejected_ids"] == rejected  # answers intact
    assert ex["prompt_ids"] == prompt[len(chosen) - len(rejected) :]  # the prompt's end kept
    assert len(ex["prompt_ids"]) + len(ex["chosen_ids"]) == limit

    start = tokenize_pairs(pairs, chat_tokenizer, max_length=limit, truncation_mode="keep_start")
    ex = start.examples[0]
    assert ex["prompt_ids"] == prompt and ex["rejected_ids"] == rejected
    assert ex["chosen_ids"] == chosen[: len(rejected)]  # the answer's end cut

    short = tokenize_pairs(
        pairs, chat_tokenizer, max_length=len(prompt), truncation_mode="keep_start"
    )
    assert short.stats["dropped"] == 1 and short.stats["dropped_sources"] == ["p.jsonl:2"]
    tiny = tokenize_pairs(pairs, chat_tokenizer, max_length=4)  # keep_end never drops
    assert tiny.stats["kept"] == 1
    for ex in tiny.examples:
        assert ex["prompt_ids"] and ex["chosen_ids"] and ex["rejected_ids"]
        assert len(ex["prompt_ids"]) + max(len(ex["chosen_ids"]), len(ex["rejected_ids"])) <= 4
    assert full.stats["prompt_lengths"] == tiny.stats["prompt_lengths"]  # before truncation
    with pytest.raises(BadInput, match="at least 2 tokens"):
        tokenize_pairs(pairs, chat_tokenizer, max_length=1)
    with pytest.raises(BadInput, match="unknown truncation_mode 'left'"):
        tokenize_pairs(pairs, chat_tokenizer, max_length=64, truncation_mode="left")


def test_labelled_columns_and_kl_completions(chat_tokenizer, tmp_path):  # noqa: F811
    rows = load_labelled_completions(write_jsonl(tmp_path / "p.jsonl", [pair_row()] * 3))
    data = tokenize_labelled(rows, chat_tokenizer, max_length=512)
    assert [tuple(ex) for ex in data.examples] == [("prompt_ids", "completion_ids", "label")] * 6
    assert [ex["label"] for ex in data.examples] == [True, False] * 3
    assert data.stats["desirable"] == 3 and data.stats["undesirable"] == 3
    pairs = tokenize_pairs(
        load_preference_pairs(tmp_path / "p.jsonl"), chat_tokenizer, max_length=512
    )
    assert data.examples[0]["completion_ids"] == pairs.examples[0]["chosen_ids"]
    with_kl = add_kl_completions(data.examples, batch_size=4)
    kl = [ex["KL_completion_ids"] for ex in with_kl]
    completions = [ex["completion_ids"] for ex in data.examples]
    assert kl[:4] == [completions[3], *completions[:3]]  # rotated within each batch
    assert kl[4:] == [completions[5], completions[4]]
    assert "KL_completion_ids" not in data.examples[0]  # copies, the input is unchanged


# --- ftx data check -------------------------------------------------------------------------


def test_data_check_report_on_pairs_and_kto(chat_tokenizer, tmp_path):  # noqa: F811
    rows = [pair_row(), {"prompt": "q", "chosen": "same", "rejected": "same"}]
    report = data_check_report(
        write_jsonl(tmp_path / "p.jsonl", rows), chat_tokenizer, max_length=16
    )
    assert report["kind"] == "preference pairs" and report["format"] == "preference"
    assert report["rows"] == 2 and report["identical"] == 1 and report["identical_pct"] == 50.0
    assert set(report["tokens"]) == {"prompt", "chosen", "rejected"}
    assert report["truncated"] >= 1 and report["dropped"] == 0
    json.dumps(report)
    kto = [{"prompt": "q", "completion": "a", "label": lab} for lab in (True, True, False)]
    report = data_check_report(
        write_jsonl(tmp_path / "k.jsonl", kto), chat_tokenizer, max_length=64
    )
    assert report["kind"] == "labelled completions" and report["format"] == "kto"
    assert report["labels"] == {"desirable": 2, "undesirable": 1, "desirable_pct": 66.67}
    assert set(report["tokens"]) == {"prompt", "completion"}


def test_data_check_cli_on_the_preference_demo(tiny_dirs):  # noqa: F811
    train, _ = demo_preference_paths()
    runner = CliRunner()
    result = runner.invoke(data_group, ["check", str(train), "--model", str(tiny_dirs["chat"])])
    assert result.exit_code == 0, result.output
    assert "preference pairs" in result.output and "identical chosen/rejected" in result.output
    kto, _ = demo_preference_paths(unpaired=True)
    args = ["check", str(kto), "--model", str(tiny_dirs["chat"]), "--json", "--max-length", "64"]
    result = runner.invoke(data_group, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 960 and report["labels"]["desirable"] == 480
    assert report["max_length"] == 64


def test_data_check_cli_bad_preference_file_exits_2_before_loading_a_model(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [pair_row(), {"prompt": "q", "chosen": "a"}])
    result = CliRunner().invoke(data_group, ["check", str(path), "--model", str(tmp_path / "no")])
    assert result.exit_code == 2 and 'line 2: missing "rejected"' in result.stderr
    result = CliRunner().invoke(data_group, ["check", str(path), "--format", "prefrence"])
    assert result.exit_code == 2 and "did you mean 'preference'" in result.stderr


# --- the demo -------------------------------------------------------------------------------


def test_demo_files_load_and_match_the_supervised_demo():
    train, heldout = demo_preference_paths()
    pairs, held = load_preference_pairs(train), load_preference_pairs(heldout)
    assert len(pairs) == 480 and len(held) == 80
    assert not any(p.identical for p in pairs + held)
    from ftx.data import demo_data_paths

    sup_train, sup_heldout = (load_conversations(p) for p in demo_data_paths())
    assert [p.prompt[0]["content"] for p in held] == [c.messages[0]["content"] for c in sup_heldout]
    assert [p.chosen[0]["content"] for p in pairs] == [c.messages[1]["content"] for c in sup_train]
    kto, kto_heldout = demo_preference_paths(unpaired=True)
    assert kto_heldout == heldout and len(load_labelled_completions(kto)) == 960


def test_demo_generator_reproduces_the_files_byte_for_byte(tmp_path):
    script = ROOT / "scripts" / "make_preference_demo.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True
    )
    train, heldout = demo_preference_paths()
    kto, _ = demo_preference_paths(unpaired=True)
    for path in (train, heldout, kto):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_importing_the_data_layer_imports_no_torch():
    code = "import sys, ftx.data, ftx.data.preference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
