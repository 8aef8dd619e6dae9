"""One owner per run directory, --overwrite that never loses a run, SIGTERM like Ctrl-C in every
phase, resume that trains nothing twice and keeps what the interrupted run measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from ftx.runner.rundir import RunDirectory, RunLock, lock_path_for
from ftx.testing.commands import run_argv

STEPS = 4


def run_args(model, data, out, *extra, plugin="fft"):
    train = {"max_steps": STEPS, "logging_steps": 1, "save_steps": 2}
    train["per_device_train_batch_size"] = 4
    argv = run_argv(plugin, model=model, data=data["train"], output=out, train=train)
    return [*argv, *extra]


def with_eval(data, *extra):
    return ["--set", f"data.eval={data['eval']}", "--set", "data.eval_max_new_tokens=4", *extra]


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_a_directory_in_use_is_refused_naming_the_owner(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    out = tmp_path / "run"
    lock = RunLock(lock_path_for(out))
    lock.acquire(what=out)
    try:
        r = ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out))
    finally:
        lock.release()
    assert r.exit_code == 2, r.output
    assert f"in use by another ftx run (pid {os.getpid()})" in r.stderr
    assert "Traceback" not in r.output and not out.exists()


def test_two_runs_started_together_into_one_directory(ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "ftx.cli", *run_args(ftx_tiny_model, ftx_tiny_data, out)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "in use by another ftx run" in loser or "already exists" in loser
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # one run's log, not two interleaved


def test_default_names_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = Path("runs") / "fft-20260101-000000"
    first = RunDirectory(name, replace=False, resume=False, chosen_by_user=False)
    second = RunDirectory(name, replace=False, resume=False, chosen_by_user=False)
    first.claim()
    monkeypatch.delenv("FTX_RUN_LOCK", raising=False)  # as in another process
    second.claim()
    third = RunDirectory(name, replace=False, resume=False, chosen_by_user=False)
    first.release()
    monkeypatch.delenv("FTX_RUN_LOCK", raising=False)
    third.claim()  # the name is free of owners but taken on disk: next suffix
    try:
        assert {first.path.name, second.path.name, third.path.name} == {
            "fft-20260101-000000",
            "fft-20260101-000000-2",
            "fft-20260101-000000-3",
        }
    finally:
        second.release()
        third.release()


def test_a_dead_owner_releases_the_directory(tmp_path):
    out = tmp_path / "run"
    holder = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from ftx.runner.rundir import RunLock, lock_path_for
        lock = RunLock(lock_path_for(Path({str(out)!r})))
        lock.acquire(what=Path({str(out)!r}))
        print("held", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    from ftx.errors import BadInput

    with pytest.raises(BadInput, match=f"pid {proc.pid}"):
        RunLock(lock_path_for(out)).acquire(what=out)
    proc.kill()
    proc.wait()
    lock = RunLock(lock_path_for(out))
    lock.acquire(what=out)  # kill -9 freed it
    lock.release()


def test_bad_attention_with_overwrite_leaves_the_earlier_run_untouched(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    out = tmp_path / "run"
    assert ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out)).exit_code == 0
    before = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")}
    r = ftx_cli(
        *run_args(ftx_tiny_model, ftx_tiny_data, out),
        "--overwrite",
        "--set",
        "model.attn_implementation=flash_attention_2",
    )
    assert r.exit_code == 2 and "attn_implementation" in r.stderr
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert siblings(out) == []


def test_overwrite_then_failure_puts_the_earlier_run_back(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    out = tmp_path / "run"
    assert ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out)).exit_code == 0
    before = json.loads((out / "summary.json").read_text())
    r = ftx_cli(
        *run_args(ftx_tiny_model, ftx_tiny_data, out),
        "--overwrite",
        "--set",
        "train.learning_rate=1e12",
        "--set",
        "train.max_grad_norm=0",
    )
    assert r.exit_code == 1 and "non-finite" in r.stderr
    assert json.loads((out / "summary.json").read_text()) == before
    assert (out / "model").is_dir()
    [kept] = siblings(out)
    assert kept.startswith("run.failed-") and kept in r.stderr.replace("\n", "")
    failed = json.loads((tmp_path / kept / "summary.json").read_text())
    assert failed["status"] == "failed"


def test_overwrite_then_interrupt_keeps_both_and_resume_finishes_the_swap(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch, ftx_signal_at_step
):
    out = tmp_path / "run"
    assert ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out)).exit_code == 0
    ftx_signal_at_step(2, signal.SIGTERM)
    r = ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out), "--overwrite")
    assert r.exit_code == 130, r.output
    [previous] = siblings(out)
    assert previous.startswith("run.previous-") and previous in r.stderr.replace("\n", "")
    assert (tmp_path / previous / "model").is_dir()  # the finished run, whole
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    r = ftx_cli("run", "--resume", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert siblings(out) == [] and "replaced the earlier run" in r.stderr


def test_sigterm_while_scoring_the_base_model_records_interrupted(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch
):
    import ftx.runner.execution as execution

    def score_dir(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(execution, "score_dir", score_dir)
    out = tmp_path / "run"
    r = ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out), *with_eval(ftx_tiny_data))
    assert r.exit_code == 130, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGTERM"


def test_sigterm_during_export_then_resume_exports_without_training_again(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch
):
    import contextlib

    import ftx.artifacts

    real_atomic_dir = ftx.artifacts.atomic_dir

    @contextlib.contextmanager
    def atomic_dir(final, **kwargs):
        with real_atomic_dir(final, **kwargs) as tmp:
            (tmp / "half-written").write_text("x")
            if Path(final).name == "model":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            yield tmp

    monkeypatch.setattr(ftx.artifacts, "atomic_dir", atomic_dir)
    out = tmp_path / "run"
    r = ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out), *with_eval(ftx_tiny_data))
    assert r.exit_code == 130, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "eval_before" in summary
    assert not list(out.glob(".tmp-*")), "the interrupted export left a temporary behind"
    assert not (out / "model").exists()
    monkeypatch.undo()
    (out / ".tmp-model-killed").mkdir()  # what kill -9 would have left
    r = ftx_cli("run", "--resume", "--output", str(out))
    assert r.exit_code == 0, r.output
    final = json.loads((out / "summary.json").read_text())
    assert final["status"] == "finished" and final["steps"] == STEPS
    assert final["eval_before"] == summary["eval_before"] and "eval_after" in final
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == f"checkpoint-{STEPS}"
    assert not list(out.glob(".tmp-*")) and (out / "model" / "config.json").is_file()
    assert "before" in (out / "report.md").read_text()


def test_resume_refuses_changes_the_checkpoint_fixes(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch, ftx_signal_at_step
):
    ftx_signal_at_step(2, signal.SIGINT)
    out = tmp_path / "run"
    assert ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out)).exit_code == 130
    monkeypatch.undo()
    saved = (out / "config.yaml").read_text()
    r = ftx_cli("run", "--resume", "--output", str(out), "--set", "train.learning_rate=0.5")
    assert r.exit_code == 2 and "train.learning_rate" in r.stderr and "cannot change" in r.stderr
    r = ftx_cli("run", "--resume", "--output", str(out), "--plugin", "sft")
    assert r.exit_code == 2 and "made by plugin 'fft'" in r.stderr
    assert (out / "config.yaml").read_text() == saved
    r = ftx_cli("run", "--resume", "--output", str(out), "--set", "train.logging_steps=2")
    assert r.exit_code == 0, r.output
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["logging_steps"] == 2
