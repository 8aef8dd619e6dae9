"""``ftx ui``'s new-run form, end to end on the tiny model: fields from the option schemas,
the CLI's own messages beside the field, the command shown, a real ``ftx run`` launched
through ``POST /new`` that finishes, then Stop (a checkpoint) and Resume, compare, plan, chat
and eval on the run."""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path

import pytest

from ftx.report import read_metrics
from tests.ui_helpers import client, post, wait_until

TRAIN = {
    "train.max_steps": "6",
    "train.logging_steps": "1",
    "train.per_device_train_batch_size": "4",
    "train.learning_rate": "0.005",
}


def form(model, files, name, /, **values):
    return {
        "plugin": "sft",
        "objective": "supervised",
        "model": str(model),
        "data": str(files["train"]),
        "output": name,
        "data.eval": str(files["eval"]),
        "method.layers": "last:1",
        **TRAIN,
        **values,
    }


def errors(page: str) -> dict[str, str]:
    found = re.findall(r'<span id="([^"]+)" class="field-error">([^<]+)</span>', page)
    form_error = re.search(r'<p id="form-error" class="error">([^<]+)</p>', page)
    found += [("form-error", form_error.group(1))] if form_error else []
    return {slot: html.unescape(text) for slot, text in found}


def test_the_form_is_built_from_the_method_and_objective_schemas(tmp_path):
    c = client(tmp_path / "runs")
    sft = c.get("/new?plugin=sft").text
    assert 'id="field-method-layers" name="method.layers"' in sft
    assert 'placeholder="auto"' in sft  # the option's default
    assert "decoder blocks: auto (top quarter)" in sft  # its help
    for common in ("field-model", "field-data", "field-output", "field-data-eval"):
        assert f'id="{common}"' in sft
    assert (
        'id="field-train-learning_rate" name="train.learning_rate" value="" placeholder="0.001"'
        in sft
    )
    qlora = c.get("/new?plugin=qlora&objective=dpo").text
    assert 'id="field-method-r"' in qlora and 'id="field-method-layers"' not in qlora
    assert 'id="field-objective-reference"' in qlora  # the objective's own options
    assert '<option value="4">4</option>' in qlora  # choices (method.bits)
    bad = c.get("/new?plugin=nosuch")
    assert bad.status_code == 400 and "unknown plugin &#39;nosuch&#39;" in bad.text


def test_bad_values_get_the_clis_message_beside_the_field(tmp_path, ftx_tiny_model, ftx_tiny_data):
    root = tmp_path / "runs"
    c = client(root)
    cases = [
        ({"method.layers": "lats:1"}, "error-method-layers", "is not last:N, first:N"),
        ({"train.max_steps": "abc"}, "error-train-max_steps", "train.max_steps"),
        ({"data.max_length": "2"}, "error-data-max_length", "out of range"),
        ({"data": str(tmp_path / "nope.jsonl")}, "error-data", "not found"),
        ({"model": str(tmp_path / "nomodel")}, "error-model", "nomodel"),
        ({"extra": "train.weight_decya=0.1"}, "error-extra", "did you mean 'weight_decay'"),
        ({"extra": "no-equals-sign"}, "error-extra", "--set 'no-equals-sign'"),
    ]
    for values, slot, words in cases:
        response = post(c, "/new", form(ftx_tiny_model, ftx_tiny_data, "bad", **values))
        assert response.status_code == 400, values
        found = errors(response.text)
        assert words in found.get(slot, ""), (values, found)
        assert 'value="bad"' in response.text  # what was typed is kept
    assert not root.exists() or not any(root.iterdir())  # nothing launched, nothing written


def test_the_command_shown_is_the_one_launched(tmp_path, ftx_tiny_model, ftx_tiny_data):
    root = tmp_path / "runs"
    c = client(root)
    values = form(ftx_tiny_model, ftx_tiny_data, "shown")
    preview = c.get("/new/command", params=values).text
    argv = shlex.split(preview)
    assert argv[:4] == ["ftx", "run", "--plugin", "sft"]
    assert argv[argv.index("--output") + 1] == str(root / "shown")
    assert "method.layers=last:1" in argv and "train.max_steps=6" in argv
    extra = c.get("/new/command", params={**values, "extra": "train.seed=7\n\nmodel.dtype=auto"})
    assert extra.text.endswith("--set train.seed=7 --set model.dtype=auto")
    page = c.get("/new").text
    assert '<pre id="command">ftx run --plugin qlora --output' in page
    outside = c.get("/new/command", params={**values, "output": "../x"})
    assert outside.status_code == 400
    # Nothing filled in: the page's default method, and a run name made from it.
    argv = shlex.split(c.get("/new/command").text)
    assert argv[:4] == ["ftx", "run", "--plugin", "qlora"]
    assert Path(argv[argv.index("--output") + 1]).name.startswith("qlora-")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, ftx_tiny_model, ftx_tiny_data):
    """A real tiny run started through ``POST /new``, followed until it finished."""
    root = tmp_path_factory.mktemp("ui") / "runs"
    c = client(root)
    response = post(c, "/new", form(ftx_tiny_model, ftx_tiny_data, "tiny"))
    assert response.status_code == 303, errors(response.text)
    assert response.headers["location"] == "/runs/tiny"
    status = wait_until(c, "tiny", lambda s: s != "running")
    log = (root / ".ui" / "tiny.log").read_text()
    assert status == "finished", log[-3000:]
    return c, root


def test_a_run_launched_from_the_form_finishes(finished_run):
    c, root = finished_run
    record = json.loads((root / ".ui" / "tiny.json").read_text())
    assert record["args"][:3] == ["run", "--plugin", "sft"]
    page = c.get("/runs/tiny").text
    assert re.search(r'id="heldout-after">exact [0-9.]+<', page)
    assert 'id="run-step">6 / 6<' in page
    assert 'id="chat-link"' in page and 'id="eval-link"' in page
    assert "method:\n  layers: last:1" in page  # the resolved config.yaml
    steps = [r["step"] for r in read_metrics(root / "tiny") if "loss" in r]  # training rows
    assert steps == [1, 2, 3, 4, 5, 6]
    listed = c.get("/runs").text
    assert '<tr class="run" data-run="tiny" data-status="finished">' in listed


def test_chat_streams_the_trained_models_reply(finished_run):
    from ftx.results import RunResult

    c, root = finished_run
    assert 'id="chat-form"' in c.get("/runs/tiny/chat").text
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    response = c.post(
        "/runs/tiny/chat",
        json={"messages": messages, "max_new_tokens": 12},
        headers={"X-Ftx-Csrf": c.cookies.get("ftx_csrf"), "Origin": "http://127.0.0.1"},
    )
    assert response.status_code == 200
    blocks = response.text.strip().split("\n\n")
    assert blocks[-1] == "event: done\ndata: {}"
    reply = "".join(json.loads(b.removeprefix("data: "))["text"] for b in blocks[:-1])
    # the same greedy reply as ftx chat's function, through the Python API
    assert reply.strip() == RunResult(root / "tiny").chat("What is 2 + 2?", max_new_tokens=12)


def test_eval_prints_what_ftx_eval_prints(finished_run, ftx_tiny_data, ftx_cli):
    c, root = finished_run
    page = post(c, "/runs/tiny/eval", {"data": str(ftx_tiny_data["eval"]), "metric": "loss"})
    assert page.status_code == 200
    shown = re.search(r'<pre id="eval-result">([^<]*)</pre>', page.text).group(1)
    result = json.loads(shown.replace("&#34;", '"').replace("&quot;", '"'))
    cli = ftx_cli("eval", root / "tiny", "--data", ftx_tiny_data["eval"], "--metric", "loss")
    assert result == json.loads(cli.stdout.strip().splitlines()[-1])
    missing = post(c, "/runs/tiny/eval", {"data": "", "metric": "exact"})
    assert missing.status_code == 400 and "needs --data" in missing.text


def test_compare_and_plan_show_the_clis_numbers(finished_run, ftx_tiny_model):
    from ftx.compare_report import cell_row
    from ftx.planner import plan

    c, root = finished_run
    page = c.get("/compare?run=tiny").text
    assert '<tr class="compare-row" data-run="tiny">' in page
    row = cell_row({"name": "tiny"}, root / "tiny")
    assert f"{row['trainable']:,}" in page
    curves = json.loads(re.search(r'id="compare-data">([^<]*)<', page).group(1))
    assert [p[0] for p in curves["tiny"]] == [1, 2, 3, 4, 5, 6]
    planned = c.get("/plan", params={"model": str(ftx_tiny_model), "gpu_mem": "1GB"}).text
    found = re.findall(r'class="plan-bar (under|over|unknown)" data-method="(\w+)"', planned)
    expected = plan(str(ftx_tiny_model), gpu_mem=2**30)
    kinds = {m["name"]: "over" if m["peak_bytes"] else "unknown" for m in expected["methods"]}
    kinds |= {m["name"]: "under" for m in expected["methods"] if m["fits"]}
    bars = {method: kind for kind, method in found}
    assert bars == kinds
    assert "under" in bars.values()
    tiny_gpu = c.get("/plan", params={"model": str(ftx_tiny_model), "gpu_mem": "1KB"}).text
    assert 'class="plan-bar under"' not in tiny_gpu and 'class="plan-bar over"' in tiny_gpu
    assert c.get("/plan", params={"gpu_mem": "lots"}).status_code == 400


def test_stop_saves_a_checkpoint_and_resume_continues(tmp_path, ftx_tiny_model, ftx_tiny_data):
    root = tmp_path / "runs"
    c = client(root)
    values = form(ftx_tiny_model, ftx_tiny_data, "long", **{"train.max_steps": "400"})
    values["train.save_steps"] = "1000"
    assert post(c, "/new", values).status_code == 303
    wait_until(c, "long", lambda s: len(read_metrics(root / "long")) >= 2 or s != "running")
    stopped = post(c, "/runs/long/stop")
    assert stopped.status_code == 303 and "error" not in stopped.headers["location"]
    assert wait_until(c, "long", lambda s: s != "running") == "interrupted"
    step = json.loads((root / "long" / "summary.json").read_text())["steps"]
    assert 2 <= step < 400
    assert (root / "long" / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file()
    assert 'id="resume"' in c.get("/runs/long").text
    assert post(c, "/runs/long/resume").status_code == 303
    assert c.get("/runs/long").text.count('id="stop"') == 1  # running while it starts
    wait_until(c, "long", lambda s: read_metrics(root / "long")[-1]["step"] > step + 1)
    assert post(c, "/runs/long/stop").status_code == 303
    assert wait_until(c, "long", lambda s: s != "running") == "interrupted"
    later = json.loads((root / "long" / "summary.json").read_text())
    assert later["steps"] > step and later.get("resumed_from") == f"checkpoint-{step}"
    log = (root / ".ui" / "long.log").read_text()
    assert log.count("ftx run --resume --output") >= 1  # the CLI's own resume hint, twice
