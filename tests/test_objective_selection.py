"""Choosing the objective: --objective, kinds that say which flag takes them, the default
objective's task score beside another objective's metric (data.task_eval)."""

from __future__ import annotations

import json

from ftx.testing.commands import run_argv


def tiny_run(model, data, out, *sets):
    train = {"max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1}
    return run_argv("fft", model=model, data=data["train"], output=out, train=train, sets=sets)


def test_a_plugin_of_the_other_kind_names_the_flag_that_takes_it(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    out = tmp_path / "run"
    r = ftx_cli("run", "--plugin", "supervised", "--output", str(out))
    assert r.exit_code == 2 and "use --objective supervised" in r.stderr and not out.exists()
    r = ftx_cli("run", "--plugin", "fft", "--objective", "qlora", "--output", str(out))
    assert r.exit_code == 2 and "use --plugin qlora" in r.stderr and not out.exists()
    r = ftx_cli("run", "--plugin", "fft", "--objective", "nosuch", "--output", str(out))
    assert r.exit_code == 2 and "unknown objective 'nosuch'" in r.stderr
    assert "supervised" in r.stderr and "`ftx plugins` lists" in r.stderr and not out.exists()


def test_task_eval_scores_the_default_objectives_metric_before_and_after(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    out = tmp_path / "run"
    sets = [f"data.task_eval={ftx_tiny_data['eval']}", "data.eval_max_new_tokens=2"]
    r = ftx_cli(*tiny_run(ftx_tiny_model, ftx_tiny_data, out, *sets), "--objective", "supervised")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["objective"] == "supervised" and summary["hooks"]["build_trainer"] == "supervised"
    )
    for key in ("task_eval_before", "task_eval_after"):
        assert summary[key]["metric"] == "exact" and summary[key]["n"] == 6
    saved = (out / "config.yaml").read_text()
    assert "objective:\n  name: supervised" in saved


def test_resume_refuses_another_objective(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, ftx_signal_at_step
):
    out = tmp_path / "run"
    ftx_signal_at_step(1)
    argv = tiny_run(ftx_tiny_model, ftx_tiny_data, out, "train.save_steps=1")
    assert ftx_cli(*argv).exit_code == 130
    r = ftx_cli("run", "--resume", "--output", str(out), "--objective", "dpo")
    assert r.exit_code == 2 and "made under objective 'supervised'" in r.stderr
