"""Held-out evaluation during training: the validation curve, the best checkpoint exported,
early stopping, the automatic budget, bad input and resume (fast tier, tiny random model)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from ftx.testing.commands import run_argv

# A held-out set that training makes worse: the task is "reverse the words", the held-out
# answer is always "I do not know". At a high constant learning rate its loss is lowest at
# the first evaluation and clearly higher at every later one, so the best checkpoint is known.
DIVERGING = {
    "learning_rate": 3e-2,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "per_device_train_batch_size": 4,
    "logging_steps": 1,
}


@pytest.fixture(scope="module")
def unlearnable_eval(tmp_path_factory, ftx_tiny_data):
    rows = [json.loads(x) for x in Path(ftx_tiny_data["eval"]).read_text().splitlines()]
    for row in rows:
        row["conversations"][-1]["value"] = "I do not know"
    path = tmp_path_factory.mktemp("held") / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def lines(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path)).state_dict()


def same(a, b):
    import torch

    return all(torch.equal(a[k], b[k]) for k in a)


def diverging_run(model, data, held_out, out, **train):
    return run_argv(
        "fft",
        model=model,
        data=data["train"],
        output=out,
        train={**DIVERGING, **train},
        sets=[f"data.eval={held_out}", "data.eval_max_new_tokens=8"],
    )


def test_validation_loss_at_eval_steps_and_model_is_the_best_checkpoint(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, unlearnable_eval, tmp_path
):
    out = tmp_path / "run"
    args = diverging_run(
        ftx_tiny_model, ftx_tiny_data, unlearnable_eval, out,
        max_steps=12, eval_steps=3, select_best="loss",
    )  # fmt: skip
    r = ftx_cli(*args)
    assert r.exit_code == 0, r.output
    evals = [row for row in lines(out) if "eval_loss" in row]
    assert [row["step"] for row in evals] == [3, 6, 9, 12]
    assert "eval  " in r.stderr  # the evaluation's progress line
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["evaluation"]["validation_loss"]
    assert [p["step"] for p in curve] == [3, 6, 9, 12]
    best = min(curve, key=lambda p: p["eval_loss"])
    assert best["step"] == 3  # the held-out answers get less likely as training goes on
    assert summary["best"]["step"] == 3 and summary["best"]["criterion"] == "eval_loss"
    assert summary["best"]["eval_loss"] == pytest.approx(best["eval_loss"])
    assert summary["status"] == "finished" and summary["steps"] == 12
    assert "stopped_early" not in summary  # a budget the user chose: no early stopping
    # model/ holds the best checkpoint's weights, not the last step's.
    exported = weights(out / "model")
    assert same(exported, weights(out / "checkpoints" / "checkpoint-3"))
    assert not same(exported, weights(out / "checkpoints" / "checkpoint-12"))
    report = (out / "report.md").read_text()
    assert "exported model: step 3" in report and "validation loss" in report


def test_early_stopping_ends_a_run_whose_held_out_loss_has_plateaued(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    """Held out: 8 of the training rows, which a tiny model fits quickly; 20 epochs planned."""
    out = tmp_path / "run"
    args = run_argv(
        "fft",
        model=ftx_tiny_model,
        data=ftx_tiny_data["train"],
        output=out,
        train={
            **DIVERGING,
            "num_train_epochs": 20,
            "eval_steps": 4,
            "select_best": "loss",
            "early_stopping_patience": 2,
            "early_stopping_min_delta": 0.01,
        },
        sets=[f"data.eval={ftx_tiny_data['train']}", "data.eval_limit=8"],
    )
    r = ftx_cli(*args)
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and (out / "model" / "config.json").is_file()
    stopped = summary["stopped_early"]
    assert stopped["step"] == summary["steps"] < summary["max_steps"] == 240
    curve = [p["eval_loss"] for p in summary["evaluation"]["validation_loss"]]
    best = min(curve)
    # Stopped exactly when the last two evaluations did not beat the best by the minimum.
    assert all(loss > best - 0.01 for loss in curve[-2:])
    # The exported step: the last whose loss beat the best before it by more than the minimum.
    assert best <= summary["best"]["eval_loss"] <= best + 0.01


def test_default_budget_is_three_epochs_stopped_early_on_the_task_metric(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, unlearnable_eval, tmp_path
):
    """No max_steps, no num_train_epochs: up to 3 epochs, evaluation every eighth of the run,
    the task metric scored at each (with its seconds), early stopping with patience 2."""
    out = tmp_path / "run"
    train = {k: v for k, v in DIVERGING.items() if k != "logging_steps"}
    r = ftx_cli(*diverging_run(ftx_tiny_model, ftx_tiny_data, unlearnable_eval, out, **train))
    assert r.exit_code == 0, r.output
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert saved["num_train_epochs"] == 3.0 and saved["early_stopping_patience"] == 2
    assert saved["select_best"] == "metric" and saved["eval_steps"] == 0.125
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_steps"] == 36 and summary["evaluation"]["every_steps"] == 5
    scored = [row for row in lines(out) if "eval_exact" in row]
    assert scored and all(
        row["eval_exact_n"] == 6 and row["eval_exact_seconds"] > 0 for row in scored
    )
    # exact stays 0 and the held-out loss only rises: stopped after two evaluations
    assert summary["stopped_early"]["step"] == 15 and summary["best"]["step"] == 5
    assert summary["best"]["criterion"] == "eval_select" and summary["best"]["eval_exact"] == 0


@pytest.fixture
def interrupt_at_step_8(ftx_signal_at_step):
    ftx_signal_at_step(8, signal.SIGINT)


def test_resume_keeps_the_best_checkpoint_and_the_patience_count(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, unlearnable_eval, tmp_path, interrupt_at_step_8,
    monkeypatch,
):  # fmt: skip
    """Interrupted after the second evaluation (one without improvement), resumed: it stops
    where the uninterrupted run stops (patience 3: at step 12, not 18) and exports step 3."""
    train = {"max_steps": 24, "eval_steps": 3, "select_best": "loss", "early_stopping_patience": 3}
    broken, straight = tmp_path / "broken", tmp_path / "straight"
    r = ftx_cli(*diverging_run(ftx_tiny_model, ftx_tiny_data, unlearnable_eval, broken, **train))
    assert r.exit_code == 130, r.output
    monkeypatch.undo()
    r = ftx_cli("run", "--resume", "--output", str(broken))
    assert r.exit_code == 0, r.output
    r = ftx_cli(*diverging_run(ftx_tiny_model, ftx_tiny_data, unlearnable_eval, straight, **train))
    assert r.exit_code == 0, r.output
    a = json.loads((straight / "summary.json").read_text())
    b = json.loads((broken / "summary.json").read_text())
    assert a["stopped_early"]["step"] == b["stopped_early"]["step"] == 12
    assert a["best"]["step"] == b["best"]["step"] == 3
    assert same(weights(straight / "model"), weights(broken / "model"))


@pytest.mark.parametrize(
    ("sets", "key", "hint"),
    [
        (["train.eval_steps=5"], "train.eval_steps", "data.eval"),
        (["train.select_best=loss"], "train.select_best", "data.eval_ratio"),
        (["data.eval_ratio=0.2", "train.early_stopping_patience=0"], "patience", ">= 1"),
        (
            ["data.eval_ratio=0.2", "train.select_best=last", "train.early_stopping_patience=2"],
            "train.early_stopping_patience",
            "select_best",
        ),
        (["data.eval_ratio=0.2", "train.select_best=best"], "train.select_best", ""),
        (
            ["data.eval_ratio=0.2", "train.select_best=metric", "train.eval_metric_every=2"],
            "train.eval_metric_every",
            "select_best",
        ),
        (
            ["data.eval_ratio=0.2", "train.select_best=loss", "train.save_strategy=no"],
            "train.select_best",
            "save_strategy",
        ),
        (["data.eval_ratio=0.2", "train.early_stoping_patience=2"], "did you mean", ""),
    ],
)
def test_bad_evaluation_settings_exit_2_before_loading(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, sets, key, hint
):
    out = tmp_path / "run"
    args = run_argv("fft", model=ftx_tiny_model, data=ftx_tiny_data["train"], output=out, sets=sets)
    r = ftx_cli(*args)
    assert r.exit_code == 2, r.output
    assert key in r.stderr and hint in r.stderr
    assert "Traceback" not in r.output and not out.exists()


def test_select_best_metric_needs_a_task_metric():
    from ftx.config.evaluation import resolve_evaluation
    from ftx.context import ObjectiveTraits
    from ftx.errors import BadInput

    data = {"eval": None, "eval_ratio": 0.1, "path": "x.jsonl", "eval_metric": "loss"}
    only_loss = ObjectiveTraits(metrics=("loss",))
    with pytest.raises(BadInput, match=r"train\.select_best=metric") as err:
        resolve_evaluation({"select_best": "metric"}, {"select_best": "metric"}, data, only_loss)
    assert "select_best=loss" in err.value.hint
    # auto under such an objective selects by the loss
    evaluation, args = resolve_evaluation({}, {}, data, only_loss)
    assert evaluation.criterion == "eval_loss" and args["metric_for_best_model"] == "eval_select"
