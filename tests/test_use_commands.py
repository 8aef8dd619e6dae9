"""generate / eval / chat / export / compare on tiny finished runs."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ftx_tiny_model, ftx_tiny_data):
    """A finished qlora run and a finished fft run on the tiny model."""
    from click.testing import CliRunner

    from ftx.cli import cli

    root = tmp_path_factory.mktemp("use")
    runs = {}
    for plugin in ("qlora", "fft"):
        out = root / plugin
        args = [
            "run",
            "--plugin",
            plugin,
            "--model",
            str(ftx_tiny_model),
            "--data",
            str(ftx_tiny_data["train"]),
            "--output",
            str(out),
            "--set",
            "train.max_steps=3",
        ]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        runs[plugin] = out
    return runs


def test_eval_prints_one_json_object(ftx_cli, finished, ftx_tiny_data):
    r = ftx_cli("eval", finished["qlora"], "--data", ftx_tiny_data["eval"], "--max-new-tokens", "4")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["metric"] == "exact" and result["n"] == 6 and 0 <= result["score"] <= 1
    assert result["model"].endswith("model") and result["data"] == str(ftx_tiny_data["eval"])
    assert "ftx eval" in r.stderr  # the table goes to stderr


def test_eval_loss_and_adapter_directory(ftx_cli, finished, ftx_tiny_data):
    r = ftx_cli(
        "eval", finished["qlora"] / "adapter", "--data", ftx_tiny_data["eval"], "--metric", "loss"
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["perplexity"] > 1 and result["tokens"] > 0 and result["metric"] == "loss"


def test_eval_json_metric(ftx_cli, finished, tmp_path):
    data = tmp_path / "json.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": '{"a": 1}'},
            ]
        }
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = ftx_cli(
        "eval", finished["fft"], "--data", data, "--metric", "json", "--max-new-tokens", "4"
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["metric"] == "json"


def test_json_and_exact_matching_rules():
    from ftx.evaluate import exact_match, json_match

    assert exact_match("  2xL-LATTE \n", "2xL-LATTE")
    assert not exact_match("2xL-LATTE TOGO", "2xL-LATTE")
    assert json_match('{"b": 2, "a": 1}', '{"a": 1, "b": 2}')
    assert not json_match("{not json", '{"a": 1}')


def test_generate_writes_rows(ftx_cli, finished, ftx_tiny_data, tmp_path):
    out = tmp_path / "gen.jsonl"
    r = ftx_cli(
        "generate",
        finished["fft"],
        "--data",
        ftx_tiny_data["eval"],
        "--out",
        out,
        "--max-new-tokens",
        "4",
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 6
    assert set(rows[0]) == {"id", "prompt", "output", "reference"}
    assert rows[0]["id"] == "tiny-0" and rows[0]["prompt"].endswith("assistant\n")


def test_generate_refuses_to_overwrite_out_unless_asked(ftx_cli, finished, ftx_tiny_data, tmp_path):
    out = tmp_path / "kept.jsonl"
    out.write_text("earlier results\n")
    args = ["generate", finished["fft"], "--data", ftx_tiny_data["eval"], "--out", out]
    r = ftx_cli(*args, "--max-new-tokens", "2")
    assert r.exit_code == 2 and "already exists" in r.stderr and "--overwrite" in r.stderr
    assert out.read_text() == "earlier results\n"
    r = ftx_cli(*args, "--max-new-tokens", "2", "--overwrite")
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 6


def test_chat_streams_replies(ftx_cli, finished):
    r = ftx_cli("chat", finished["fft"], "--max-new-tokens", "3", input="hello\n/reset\nhi\n")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("bot> ") == 2


def test_a_failure_in_generation_ends_the_reply_and_is_raised(finished):
    """Generation runs in a thread: its error must reach the caller (ftx chat, the UI's
    stream) instead of leaving it waiting for pieces that never come."""
    import threading

    from ftx.chat import stream_reply
    from ftx.inference import load_for_inference

    loaded = load_for_inference(finished["fft"])

    def broken_generate(**kwargs):
        raise RuntimeError("out of memory, say")

    loaded.model.generate = broken_generate
    outcome = []

    def consume():
        try:
            list(stream_reply(loaded, [{"role": "user", "content": "hi"}], max_new_tokens=3))
        except RuntimeError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "the reply waited for a generation that had failed"
    assert outcome == ["out of memory, say"]


@pytest.mark.parametrize(
    ("fmt", "dtype"), [("full", "bf16"), ("merged", "fp32"), ("adapter", "fp16")]
)
def test_export_formats(ftx_cli, finished, fmt, dtype):
    run = finished["qlora"]
    r = ftx_cli("export", run, "--format", fmt, "--dtype", dtype)
    assert r.exit_code == 0, r.output
    target = run / f"export-{fmt}-{dtype}"
    if fmt == "adapter":
        assert (target / "adapter_config.json").is_file()
        from safetensors import safe_open

        with safe_open(str(target / "adapter_model.safetensors"), "pt") as fh:
            assert all(str(fh.get_tensor(k).dtype) == "torch.float16" for k in fh.keys())  # noqa: SIM118
    else:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(target))
        expected = torch.bfloat16 if dtype == "bf16" else torch.float32
        assert next(model.parameters()).dtype == expected
    # Never clobbered without asking.
    again = ftx_cli("export", run, "--format", fmt, "--dtype", dtype)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_bad_inputs(ftx_cli, finished, tmp_path, ftx_tiny_data):
    assert ftx_cli("eval", tmp_path / "nope", "--data", ftx_tiny_data["eval"]).exit_code == 2
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "summary.json").write_text('{"status": "interrupted"}')
    r = ftx_cli("eval", unfinished, "--data", ftx_tiny_data["eval"])
    assert r.exit_code == 2 and "interrupted" in r.stderr
    text = tmp_path / "text.jsonl"
    text.write_text('{"text": "just prose"}\n')
    r = ftx_cli("eval", finished["fft"], "--data", text)
    assert r.exit_code == 2 and "no assistant reference" in r.stderr
    r = ftx_cli("export", finished["fft"], "--format", "merged")
    assert r.exit_code == 2 and "no adapter" in r.stderr


def test_generate_samples_when_asked(ftx_cli, finished, ftx_tiny_data, tmp_path):
    out = tmp_path / "sampled.jsonl"
    args = ["generate", finished["fft"], "--data", ftx_tiny_data["eval"], "--out", out]
    r = ftx_cli(*args, "--sample", "--temperature", "0.8", "--top-p", "0.5", "--limit", "2")
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("command", "options", "needle"),
    [
        ("generate", ["--max-new-tokens", "0"], "--max-new-tokens 0: must be at least 1"),
        ("eval", ["--max-new-tokens", "-5"], "--max-new-tokens -5: must be at least 1"),
        ("generate", ["--sample", "--temperature", "0"], "--temperature 0.0: must be above 0"),
        ("generate", ["--sample", "--top-p", "2"], "--top-p 2.0: must be above 0 and at most 1"),
        ("generate", ["--limit", "0"], "--limit 0: expected a whole number ≥ 1"),
        ("eval", ["--limit", "-1"], "--limit -1: expected a whole number ≥ 1"),
    ],
)
def test_generation_settings_are_checked_before_loading(
    ftx_cli, finished, ftx_tiny_data, no_model_loading, command, options, needle
):
    r = ftx_cli(command, finished["fft"], "--data", ftx_tiny_data["eval"], *options)
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.output, r.output


def test_chat_and_retention_refuse_settings_that_cannot_work(ftx_cli, finished, no_model_loading):
    r = ftx_cli("chat", finished["fft"], "--max-new-tokens", "0", input="hi\n")
    assert r.exit_code == 2 and "--max-new-tokens 0" in r.stderr
    r = ftx_cli("eval", finished["fft"], "--metric", "retention", "--limit", "2")
    assert r.exit_code == 2 and "--limit does not apply to --metric retention" in r.stderr


def test_export_never_writes_over_the_run(ftx_cli, finished, tmp_path):
    import shutil

    run = tmp_path / "runs" / "q"
    shutil.copytree(finished["qlora"], run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for out, needle in [
        (run, "holds the run"),
        (run.parent, "holds the run"),
        (run / "model", "inside the run's own model"),
        (run / "checkpoints" / "x", "inside the run's own checkpoints"),
        (run / "summary.json", "inside the run's own summary.json"),
    ]:
        r = ftx_cli("export", run, "--format", "full", "--out", out, "--overwrite")
        assert r.exit_code == 2 and needle in r.stderr, (out, r.output)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_api_export_and_chat_check_their_arguments(finished, tmp_path):
    from ftx import BadInput, RunResult

    run = RunResult(finished["qlora"])
    written = run.export("gguf", quant="q8_0", out=tmp_path / "tiny.gguf")
    assert written == tmp_path / "tiny.gguf" and written.read_bytes()[:4] == b"GGUF"
    assert (tmp_path / "Modelfile").is_file()
    with pytest.raises(BadInput, match="format 'bogus': expected one of full, merged, adapter"):
        run.export("bogus")
    with pytest.raises(BadInput, match="dtype 'fp8'"):
        run.export("full", dtype="fp8")
    with pytest.raises(BadInput, match="--quant applies to --format gguf only"):
        run.export("full", quant="q8_0")
    with pytest.raises(BadInput, match="not NoneType"):
        run.chat(None)
    with pytest.raises(BadInput, match="must be at least 1"):
        run.chat("hi", max_new_tokens=0)


def test_compare_reports_every_method(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "cmp"
    r = ftx_cli(
        "compare",
        "--plugins",
        "fft,sft",
        "--no-forgetting",
        "--model",
        ftx_tiny_model,
        "--data",
        ftx_tiny_data["train"],
        "--output",
        out,
        "--set",
        "train.max_steps=3",
        "--set",
        f"data.eval={ftx_tiny_data['eval']}",
        "--set",
        "data.eval_max_new_tokens=4",
        "--set",
        "fft:method.layers=last:1",
    )
    # method.layers is an sft option: fft rejects it before anything runs.
    assert r.exit_code == 2 and "method.layers" in r.stderr and not out.exists()
    r = ftx_cli(
        "compare",
        "--plugins",
        "fft,sft",
        "--model",
        ftx_tiny_model,
        "--data",
        ftx_tiny_data["train"],
        "--output",
        out,
        "--set",
        "train.max_steps=3",
        "--set",
        f"data.eval={ftx_tiny_data['eval']}",
        "--set",
        "data.eval_max_new_tokens=4",
        "--set",
        "method.layers=last:1",  # unscoped: goes to sft, the one plugin that declares it
    )
    assert r.exit_code == 0, r.output
    assert "last:1" in (out / "sft" / "config.yaml").read_text()
    report = (out / "compare.md").read_text()
    assert "| fft | — | finished |" in report and "| sft | — | finished |" in report
    assert (out / "compare.png").stat().st_size > 1000 and (out / "compare.html").is_file()
    assert (out / "fft" / "summary.json").is_file() and (out / "sft" / "model").is_dir()
    # Forgetting is on in compare by default: every run measured it against the same base.
    for plugin in ("fft", "sft"):
        forgetting = json.loads((out / plugin / "summary.json").read_text())["forgetting"]
        assert forgetting["drift_nats"] > 0 and forgetting["drift_tokens"] > 0, forgetting
        assert forgetting["questions"] > 200
    assert "least forgetting (" in report


def test_loading_for_inference_leaves_grad_mode_alone(finished):
    """A model loaded for inference (ftx eval/generate in-process, a notebook) must not turn
    autograd off for everything that runs after it."""
    import torch

    from ftx.inference import generate, load_for_inference

    loaded = load_for_inference(finished["fft"])
    generate(loaded.model, loaded.tokenizer, [[1, 5, 9]], max_new_tokens=2)
    assert torch.is_grad_enabled()
