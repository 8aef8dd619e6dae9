"""Slow tier: interrupt and resume a QLoRA run of the real SmolLM2; it ends where an
uninterrupted run of the same seed ends."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ftx.callbacks import StopOnSignal

pytestmark = pytest.mark.slow
STEPS = 6


def run_args(out):
    settings = (
        f"train.max_steps={STEPS}",
        "train.logging_steps=1",
        "train.save_steps=100",
        "train.eval_strategy=no",  # the resume is what is tested; evaluation has its own tests
    )
    settings += ("data.eval_limit=8",)
    return ["run", "--plugin", "qlora", "--output", str(out)] + [
        arg for setting in settings for arg in ("--set", setting)
    ]


def curve(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_qlora_resume_matches_uninterrupted(ftx_cli, tmp_path, monkeypatch):
    original = StopOnSignal.on_step_end

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3 and self.signal_name is None:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, args, state, control, **kwargs)

    broken, straight = tmp_path / "broken", tmp_path / "straight"
    monkeypatch.setattr(StopOnSignal, "on_step_end", on_step_end)
    r = ftx_cli(*run_args(broken))
    assert r.exit_code == 130, r.output
    assert not (broken / "model").exists()
    monkeypatch.undo()
    assert ftx_cli("run", "--resume", "--output", str(broken)).exit_code == 0
    assert ftx_cli(*run_args(straight)).exit_code == 0

    a, b = curve(straight), curve(broken)
    assert [r["step"] for r in b] == list(range(1, STEPS + 1))
    # Same seed, same process-independent arithmetic (ftx seeds before LoRA's initialisation):
    # the interrupted run's first steps are the straight run's, and after the resume (weights,
    # optimizer, scheduler and RNG restored) the curve continues as the straight one does.
    losses_a, losses_b = [r["loss"] for r in a], [r["loss"] for r in b]
    assert losses_b[:3] == losses_a[:3]
    assert losses_b == pytest.approx(losses_a, rel=1e-4)
    sa = json.loads((straight / "summary.json").read_text())
    sb = json.loads((broken / "summary.json").read_text())
    assert sb["status"] == "finished"
    assert sb["eval_after"]["score"] == sa["eval_after"]["score"]
