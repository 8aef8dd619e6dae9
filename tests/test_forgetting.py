"""Forgetting (retention and drift) on tiny models: an untouched model keeps everything, a model
trained hard on one task moves both the right way; the run wiring, ``ftx eval --metric
retention|drift`` and their bad input (exit 2 before any model loads)."""

from __future__ import annotations

import json

import pytest

from ftx.forgetting.questions import answer_matches, load_questions, normalise

KEYS = {
    "retention",
    "retention_kept",
    "retention_base_correct",
    "questions",
    "drift_nats",
    "drift_tokens",
    "seconds",
}
TAUGHT = 16  # shipped questions the tiny "base" model is taught to answer


def _run(model, data, out, *extra):
    """A short fft run of ``model`` on ``data`` into ``out`` (must succeed)."""
    r = _cli(
        "run", "--plugin", "fft", "--model", model, "--data", data, "--output", out,
        "--set", "train.logging_steps=5", "--set", "train.warmup_steps=0",
        "--set", "train.save_steps=1000", "--set", "data.max_length=96", *extra,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def _cli(*args):
    """The ftx CLI in-process (``ftx_cli`` for module-scoped fixtures)."""
    from click.testing import CliRunner

    from ftx.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private ftx cache for the base answers of this module's models."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("ftx-cache")
        mp.setenv("FTX_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def knowing_base(tmp_path_factory, ftx_tiny_model, cache):
    """A tiny model taught the answers of shipped questions with one- or two-character answers
    (a random model answers none, and retention needs a base that knows something)."""
    root = tmp_path_factory.mktemp("forgetting")
    taught = [q for q in load_questions() if len(q.answers[0]) <= 2 and q.lang == "en"][:TAUGHT]
    data = root / "taught.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": q.question},
                              {"role": "assistant", "content": q.answers[0]}]}
            ) + "\n"
            for q in taught
        )
    )  # fmt: skip

    run = _run(
        ftx_tiny_model, data, root / "base",
        "--set", "train.max_steps=60", "--set", "train.learning_rate=1e-2",
        "--set", "train.lr_scheduler_type=constant",
        "--set", f"train.per_device_train_batch_size={TAUGHT}",
    )  # fmt: skip
    return run / "model"


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory, knowing_base, ftx_tiny_data, cache):
    """The knowing base trained hard on the tiny task through the Python API, forgetting
    measured by the run (``data.eval_forgetting``, the key the CLI takes)."""
    import io

    from rich.console import Console

    import ftx

    result = ftx.run(
        "fft",
        model=knowing_base,
        data={"path": ftx_tiny_data["train"], "eval_forgetting": True, "max_length": 96},
        train={"max_steps": 40, "learning_rate": 5e-3, "warmup_steps": 0, "save_steps": 1000},
        output=tmp_path_factory.mktemp("hard") / "run",
        console=Console(file=io.StringIO()),
    )
    assert result.status == "finished"
    return result


def test_checker_reads_the_first_sentence_leniently_and_no_further():
    assert answer_matches("Paris.", ["Paris"])
    assert answer_matches("  paris is the capital", ["Paris"])
    assert answer_matches("The capital of Germany is Berlin.", ["Berlin"])
    assert answer_matches("13 + 2 = 15", ["15"])
    assert answer_matches("The Moon", ["Moon"])
    assert answer_matches("東京です。", ["東京"])
    assert answer_matches("日本の首都は東京です。", ["東京"])
    assert answer_matches("１２", ["12"])  # full-width digits
    assert answer_matches("Mexico City", ["Mexico City", "Mexico"])
    assert not answer_matches("The capital of India is Mumbai.", ["Delhi"])
    assert not answer_matches("The answer is 8. An insect has 6 legs", ["6"])
    assert not answer_matches("3 is larger than 7", ["7"])
    assert not answer_matches("1. 6 pens", ["1"])
    assert not answer_matches("120", ["12"])
    assert not answer_matches("", ["Paris"])
    assert normalise("  Hello,   WORLD! ") == "hello world"


def test_retention_is_a_share_of_what_the_base_got_right():
    from ftx.forgetting.retention import retention_score

    score = retention_score([True, True, False, True], [True, False, True, True])
    assert score == {
        "retention": 2 / 3,
        "retention_kept": 2,
        "retention_base_correct": 3,
        "questions": 4,
    }  # the tuned model's third answer, which the base got wrong, does not count
    assert retention_score([False, False], [True, True])["retention"] is None


def test_question_set_is_large_varied_and_well_formed():
    questions = load_questions()
    assert len(questions) >= 200
    assert len({q.id for q in questions}) == len(questions)
    assert {"arithmetic", "fact", "instruction", "language"} <= {q.kind for q in questions}
    assert sum(q.lang == "ja" for q in questions) >= 10
    for q in questions:  # every reference answer passes its own checker
        assert q.question and q.answers and answer_matches(q.answers[0], q.answers), q


def test_untouched_model_keeps_everything(knowing_base, cache):
    from ftx.forgetting.measure import measure_forgetting
    from ftx.inference import load_for_inference

    record = measure_forgetting(load_for_inference(knowing_base), knowing_base)
    assert set(record) == KEYS
    assert record["retention_base_correct"] >= 4  # the taught answers, at least some
    assert record["retention"] == 1.0
    assert record["retention_kept"] == record["retention_base_correct"]
    assert record["questions"] == len(load_questions())
    assert record["drift_nats"] == 0.0 and record["drift_tokens"] > 500
    assert list((cache / "forgetting").glob("base-*.json"))  # the base is scored once


def test_training_hard_on_one_task_forgets(hard_run):
    summary = json.loads((hard_run.output / "summary.json").read_text())
    record = summary["forgetting"]
    assert set(record) == KEYS and hard_run.forgetting == record
    assert record["drift_nats"] > 0.05  # trained hard: clearly not the base any more
    assert 0.0 <= record["retention"] < 1.0  # it lost some of what the base answered
    assert record["retention_kept"] < record["retention_base_correct"]
    assert "- forgetting: retention" in (hard_run.output / "report.md").read_text()


def test_eval_metrics_match_the_run(ftx_cli, hard_run):
    record = hard_run.forgetting
    r = ftx_cli("eval", hard_run.output, "--metric", "retention")
    assert r.exit_code == 0, r.output
    retention = json.loads(r.stdout)
    assert retention["metric"] == "retention" and retention["score"] == record["retention"]
    assert retention["n"] == record["retention_base_correct"]
    base = hard_run.summary["model"]
    r = ftx_cli("eval", hard_run.model_dir, "--metric", "drift", "--base", base)
    assert r.exit_code == 0, r.output
    drift = json.loads(r.stdout)
    assert drift["score"] == pytest.approx(record["drift_nats"], rel=1e-4)
    assert hard_run.eval(metric="drift")["score"] == pytest.approx(drift["score"], rel=1e-4)


def test_adapter_drift_disables_the_adapter_for_the_base(ftx_cli, knowing_base, tmp_path):
    """An adapter directory is measured against its base by disabling the adapter (one model
    in memory); its run's merged model/ against the base loaded alongside: the same drift."""
    run = tmp_path / "qlora"
    r = ftx_cli(
        "run", "--plugin", "qlora", "--model", knowing_base, "--data", knowing_base.parent.parent
        / "taught.jsonl", "--output", run, "--set", "train.max_steps=6",
        "--set", "train.learning_rate=1e-2", "--set", "train.save_steps=1000",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    drifts = []
    for target in (run / "adapter", run):
        r = ftx_cli("eval", target, "--metric", "drift")
        assert r.exit_code == 0, r.output
        drifts.append(json.loads(r.stdout)["score"])
    assert drifts[0] > 0 and drifts[0] == pytest.approx(drifts[1], rel=1e-3, abs=1e-6)


@pytest.fixture
def no_loading(monkeypatch):
    """Any model load fails the test: bad input must be refused before one."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad input was refused")

    monkeypatch.setattr("ftx.inference.load_for_inference", refuse)


def test_bad_eval_input_exits_2_before_loading(ftx_cli, ftx_tiny_model, tmp_path, no_loading):
    cases = [
        (["--metric", "forgetting"], "Invalid value for '--metric'"),
        (["--metric", "retention"], "--base"),
        (["--metric", "drift", "--base", tmp_path / "missing"], "missing"),
        (["--metric", "retention", "--data", tmp_path / "x.jsonl"], "--data does not apply"),
        (["--metric", "exact"], "needs --data"),
        (["--metric", "loss", "--base", ftx_tiny_model, "--data", "x"], "--base applies"),
    ]
    for args, needle in cases:
        r = ftx_cli("eval", ftx_tiny_model, *args)
        assert r.exit_code == 2, (args, r.output)
        assert needle in r.output and "Traceback" not in r.output, (args, r.output)


def test_bad_setting_exits_2_before_anything(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "run"
    r = ftx_cli(
        "run", "--plugin", "fft", "--model", ftx_tiny_model, "--data", ftx_tiny_data["train"],
        "--output", out, "--set", "data.eval_forgetting=sometimes",
    )  # fmt: skip
    assert r.exit_code == 2 and "data.eval_forgetting" in r.stderr and not out.exists()


SMOLLM2_FLOOR = 90
"""SmolLM2-135M-Instruct answered 109 of the 326 questions right when the set was written (2
CPU cores, fp32, greedy): the floor leaves room for other CPUs' rounding, not for a broken
checker or prompt rendering. Asserted on the slow tier's demo compare (tests/test_slow_demo.py),
which scores the base on these questions anyway."""
