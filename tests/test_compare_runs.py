"""``ftx compare`` continued: a rerun skips finished cells and resumes an interrupted one; the
base model is scored once per compare (tiny random models, a few steps, in this process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftx import comparison
from ftx.artifacts import write_json
from ftx.comparison import plan_cells, run_argv, run_requests

STEPS = 6


def test_rerun_resumes_the_interrupted_cell_and_skips_finished_ones(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, ftx_signal_at_step, monkeypatch, tmp_path
):
    out = tmp_path / "cmp"
    sets = [
        f"data.eval={ftx_tiny_data['eval']}",
        "data.eval_max_new_tokens=4",
        f"train.max_steps={STEPS}",
        "train.logging_steps=1",
        "train.save_steps=100",
    ]
    grid = ["train.learning_rate=1e-3,2e-3"]
    flags = dict(model=str(ftx_tiny_model), data=str(ftx_tiny_data["train"]))
    argv = [
        "compare", "--plugins", "fft", "--no-forgetting", "--model", flags["model"],
        "--data", flags["data"], "--output", str(out), "--grid", grid[0],
        *[x for s in sets for x in ("--set", s)],
    ]  # fmt: skip

    # A compare stopped in its second cell: its spec written, the first cell finished, the
    # second interrupted at step 3 (both run here, in-process, as compare would run them).
    cells, spec = plan_cells(["fft"], sets, grid, forgetting=False, **flags)
    write_json(out / "compare.json", spec)
    first, second = run_requests(["fft"], out, sets, cells=cells, **flags)
    assert ftx_cli("run", *run_argv(first)).exit_code == 0
    ftx_signal_at_step(3, signal.SIGINT)
    r = ftx_cli("run", *run_argv(second))
    assert r.exit_code == 130, r.output
    monkeypatch.undo()
    done, broken = out / "fft" / "learning_rate=1e-3", out / "fft" / "learning_rate=2e-3"
    assert json.loads((broken / "summary.json").read_text())["status"] == "interrupted"
    finished_at = (done / "summary.json").stat().st_mtime_ns

    # Each cell's `ftx run` in this process, with the argv the child process would get
    # (test_use_commands.py::test_compare_reports_every_method runs real child processes).
    monkeypatch.setattr(comparison, "run_one", lambda req: ftx_cli("run", *run_argv(req)).exit_code)
    r = ftx_cli(*argv)
    assert r.exit_code == 0, r.output
    assert "1 of 2 cells already finished" in r.stderr
    assert (done / "summary.json").stat().st_mtime_ns == finished_at  # skipped
    resumed = json.loads((broken / "summary.json").read_text())
    assert resumed["status"] == "finished" and resumed["resumed_from"] == "checkpoint-3"
    rows = [json.loads(x) for x in (broken / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]  # training rows (validation rows too)
    assert steps == list(range(1, STEPS + 1))  # continued, not started again
    assert "learning_rate: 0.002" in (broken / "config.yaml").read_text()
    # The base model was scored once, by the first cell; the second reused that score.
    first_summary = json.loads((done / "summary.json").read_text())
    assert "eval_before_from" not in first_summary
    assert resumed["eval_before"] == first_summary["eval_before"]
    assert resumed["eval_before_from"] == str(out / "base-scores.json")
    assert len(json.loads((out / "base-scores.json").read_text())) == 1

    report = (out / "compare.md").read_text()
    assert "| fft | train.learning_rate=1e-3 | finished |" in report
    assert "| fft | train.learning_rate=2e-3 | finished |" in report
    assert "least forgetting: not measured" in report
    assert 'src="data:image/png;base64,' in (out / "compare.html").read_text()

    # The same compare again: nothing trains, the report is rebuilt from the directories.
    before = {p: p.stat().st_mtime_ns for p in out.glob("fft/*/summary.json")}
    (out / "compare.md").unlink()
    r = ftx_cli(*argv)
    assert r.exit_code == 0, r.output
    assert "2 of 2 cells already finished" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("fft/*/summary.json")} == before
    assert (out / "compare.md").read_text() == report


def _processes_naming(text: str) -> list[int]:
    """Pids of the live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_to_the_compare_checkpoints_its_running_cell(
    stop, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    """SIGTERM (a scheduler, ``timeout``) or a SIGINT sent to the compare's pid alone: the
    running cell is checkpointed and marked interrupted, the compare exits 130, and no
    ``ftx run`` is left training on its own (SIGTERM once killed the compare at once and
    orphaned its child; a SIGINT to the pid alone never reached the child)."""
    out = tmp_path / "cmp"
    argv = [
        sys.executable, "-m", "ftx.cli", "compare", "--plugins", "fft,sft", "--no-forgetting",
        "--model", str(ftx_tiny_model), "--data", str(ftx_tiny_data["train"]),
        "--output", str(out), "--set", "train.max_steps=2000", "--set", "train.logging_steps=1",
        "--set", "train.save_steps=100000",
    ]  # fmt: skip
    log = tmp_path / "compare.log"
    with log.open("w") as sink:
        compare = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    metrics = out / "fft" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and '"loss"' in metrics.read_text()):
        assert compare.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    compare.send_signal(stop)
    assert compare.wait(timeout=240) == 130, log.read_text()
    assert _processes_naming(str(out)) == [], "a cell's ftx run outlived the compare"
    summary = json.loads((out / "fft" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 2000, summary
    assert (out / "fft" / "checkpoints" / f"checkpoint-{summary['steps']}").is_dir()
    assert not (out / "sft").exists()  # the compare stopped; it did not go on to the next cell
    assert "run the same command again to resume it" in " ".join(log.read_text().split())
