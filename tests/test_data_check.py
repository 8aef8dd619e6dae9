"""``ftx data check`` and the report behind it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ftx.commands.data_check import data
from ftx.data import DEFAULT_MAX_LENGTH, data_check_report, demo_data_paths
from tests.data_fixtures import chat_tokenizer, tiny_dirs, vicuna_row, write_jsonl  # noqa: F401


def test_report_numbers(chat_tokenizer, tmp_path):  # noqa: F811
    rows = [
        vicuna_row(("human", "hi"), ("gpt", "ok")),
        vicuna_row(("human", "q"), ("gpt", "a"), ("human", "q"), ("gpt", "the quick brown fox")),
        vicuna_row(("human", "the quick brown fox jumps over the lazy dog " * 10), ("gpt", "x")),
    ]
    report = data_check_report(
        write_jsonl(tmp_path / "d.jsonl", rows), chat_tokenizer, max_length=48
    )
    assert report["format"] == "vicuna" and report["template"] == "chat_template"
    assert report["rows"] == 3
    assert report["turns"] == {"mean": 1.33, "max": 2}
    assert report["tokens"]["max"] > 48 >= report["tokens"]["p50"]
    assert report["truncated"] == 1 and report["truncated_pct"] == 33.33
    assert report["dropped"] == 1
    assert 0 < report["trained_pct"] < 100
    json.dumps(report)  # JSON-ready


def test_cli_table_and_json_on_demo_data(tiny_dirs):  # noqa: F811
    train, _ = demo_data_paths()
    runner = CliRunner()
    result = runner.invoke(data, ["check", str(train), "--model", str(tiny_dirs["chat"])])
    assert result.exit_code == 0, result.output
    assert "vicuna" in result.output and "tokens trained" in result.output
    result = runner.invoke(
        data,
        ["check", str(train), "--model", str(tiny_dirs["base"]), "--max-length", "256", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "vicuna" and report["template"] == "vicuna_v1.1"
    assert report["max_length"] == 256 and report["rows"] == 480
    assert set(report["tokens"]) >= {"p50", "p95", "max"}


def test_cli_bad_file_exits_2_before_loading_a_model(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"conversations": [{"from": "human", "value": "q"}]}\n{broken\n')
    # The model does not exist: the data error must come first, without loading anything.
    result = CliRunner().invoke(data, ["check", str(path), "--model", str(tmp_path / "no-model")])
    assert result.exit_code == 2
    assert "error:" in result.stderr and f"{path}, line 2: not valid JSON" in result.stderr
    assert result.stdout == ""


def test_cli_unknown_format_exits_2(tiny_dirs):  # noqa: F811
    train, _ = demo_data_paths()
    result = CliRunner().invoke(data, ["check", str(train), "--format", "sharegpt4"])
    assert result.exit_code == 2 and "unknown data format" in result.stderr


def test_default_max_length():
    assert DEFAULT_MAX_LENGTH == 512


def test_data_modules_import_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys, ftx.data, ftx.commands.data_check\n"
        "heavy = ('torch', 'transformers', 'datasets', 'pyarrow')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_max_length_below_runs_minimum_exits_2(tmp_path):
    # The same floor as `ftx run`'s data.max_length, checked before any model or row is read.
    result = CliRunner().invoke(
        data, ["check", str(tmp_path / "absent.jsonl"), "--max-length", "3"]
    )
    assert (
        result.exit_code == 2 and "--max-length: 3 is out of range (valid: >= 8)" in result.stderr
    )


def test_cli_json_reports_an_error_as_json(tmp_path):
    path = tmp_path / "numbers.json"
    path.write_text("[1, 2, 3]")
    result = CliRunner().invoke(data, ["check", str(path), "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["error"] == f"{path}, row 1: expected a JSON object (a row), got a number (1)"
    assert "rows need one of" in report["hint"]
