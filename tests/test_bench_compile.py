"""bench/compile.py's arithmetic on a run directory written by hand: the steady step, the
start-up cost and the projections (the bench itself compiles SmolLM2: ``python
bench/compile.py``)."""

from __future__ import annotations

import json

import pytest

from tests.bench_scripts import BENCH, load_bench_script


@pytest.fixture
def compile_bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/common.py
    return load_bench_script("compile")


def write_run(folder, times, train_s):
    folder.mkdir()
    rows = [{"step": i + 1, "loss": 1.0, "time": t} for i, t in enumerate(times)]
    rows.insert(2, {"step": 2, "eval_loss": 0.5, "time": times[1] + 0.5})  # not a training row
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    summary = {"steps": len(times), "train_time_s": train_s}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_steady_step_startup_and_projections(compile_bench, tmp_path):
    # a 60 s recompile after the first step, then 2 s per step
    compiled = write_run(tmp_path / "compiled", [100, 160, 162, 164, 166, 168], train_s=150)
    found = compile_bench.timing(compiled)
    assert found["steady_step_s"] == 2.0 and found["slow_steps"] == 1
    assert found["startup_s"] == 150 - 6 * 2
    assert found["projected_s"] == {"60": 138 + 60 * 2, "600": 138 + 600 * 2}
    eager = write_run(tmp_path / "eager", [10, 13, 16, 19, 22, 25], train_s=19)
    row = compile_bench.table_row("sft", {"eager": compile_bench.timing(eager), "compiled": found})
    assert row[0] == "sft" and row[1] == 3.0 and row[2] == 2.0
    assert row[5] == pytest.approx(258 / 181, abs=1e-3)  # 60 steps: compiled / eager
    assert row[6] == pytest.approx(1338 / 1801, abs=1e-3)  # 600 steps: compiling pays


def test_a_failed_run_is_reported_not_divided(compile_bench):
    row = compile_bench.table_row(
        "qlora", {"eager": {"steady_step_s": 2.9}, "compiled": {"failed": 1, "log_tail": ["x"]}}
    )
    assert row[:3] == ["qlora", 2.9, "failed: x"]
