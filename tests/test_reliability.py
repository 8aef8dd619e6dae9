"""Interrupt and resume, non-finite loss, out of memory, atomic artifacts, safe loading."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from ftx.testing.commands import run_argv

STEPS = 8


def args(model, data, out, *extra):
    train = {"max_steps": STEPS, "logging_steps": 1, "learning_rate": 5e-3, "save_steps": 100}
    train["per_device_train_batch_size"] = 4
    return [*run_argv("fft", model=model, data=data["train"], output=out, train=train), *extra]


def weights(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path)).state_dict()


@pytest.fixture
def interrupt_at_step_3(ftx_signal_at_step):
    """Deliver a real SIGINT to this process right after step 3 finishes."""
    ftx_signal_at_step(3, signal.SIGINT)


def test_interrupt_then_resume_matches_uninterrupted_run(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, interrupt_at_step_3, monkeypatch
):
    straight = tmp_path / "straight"
    broken = tmp_path / "broken"
    r = ftx_cli(*args(ftx_tiny_model, ftx_tiny_data, broken))
    assert r.exit_code == 130, r.output
    assert "ftx run --resume --output" in r.stderr
    summary = json.loads((broken / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == 3
    assert (broken / "checkpoints" / "checkpoint-3" / "trainer_state.json").is_file()
    assert not (broken / "model").exists()

    monkeypatch.undo()  # no more interruptions
    r = ftx_cli("run", "--resume", "--output", str(broken))
    assert r.exit_code == 0, r.output
    assert f"resuming from checkpoint-3 ({broken})" in " ".join(r.output.split())
    r = ftx_cli(*args(ftx_tiny_model, ftx_tiny_data, straight))
    assert r.exit_code == 0, r.output

    steps = [json.loads(x)["step"] for x in (broken / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # no step missing or repeated
    a, b = weights(straight / "model"), weights(broken / "model")
    import torch

    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    final = json.loads((broken / "summary.json").read_text())
    assert final["status"] == "finished" and final["steps"] == STEPS
    # Tokens are the whole run's (they once counted the resumed part only).
    whole = json.loads((straight / "summary.json").read_text())["tokens"]
    assert final["tokens"] == whole > summary["tokens"] > 0


def test_resume_refusals(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path):
    done = tmp_path / "done"
    assert ftx_cli(*args(ftx_tiny_model, ftx_tiny_data, done)).exit_code == 0
    r = ftx_cli("run", "--resume", "--output", str(done))
    assert r.exit_code == 2 and "already finished" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ftx_cli("run", "--resume", "--output", str(empty))
    assert r.exit_code == 2 and "not an ftx run directory" in r.stderr
    r = ftx_cli("run", "--resume", "--output", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "nope does not exist" in r.stderr


def test_resume_refuses_changed_data(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, interrupt_at_step_3
):
    data = tmp_path / "train.jsonl"
    data.write_text(ftx_tiny_data["train"].read_text())
    run = tmp_path / "run"
    r = ftx_cli(*args(ftx_tiny_model, {"train": data}, run))
    assert r.exit_code == 130
    data.write_text(data.read_text().replace("red", "rose"))
    r = ftx_cli("run", "--resume", "--output", str(run))
    assert r.exit_code == 2 and "data changed" in r.stderr and "--force" in r.stderr


def test_non_finite_loss_stops_with_a_clear_message(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    run = tmp_path / "nan"
    r = ftx_cli(
        *args(
            ftx_tiny_model,
            ftx_tiny_data,
            run,
            "--set",
            "train.learning_rate=1e12",
            "--set",
            "train.max_grad_norm=0",
            "--set",
            "train.save_steps=1",
        )
    )
    assert r.exit_code == 1, r.output
    assert "non-finite loss" in r.stderr and "step" in r.stderr and "learning rate" in r.stderr
    assert "Traceback" not in r.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and not (run / "model").exists()
    # Only good checkpoints are kept: every saved one has finite weights.
    import torch
    from safetensors.torch import load_file

    for ckpt in (run / "checkpoints").glob("checkpoint-*"):
        tensors = load_file(str(ckpt / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in tensors.values()), ckpt.name


OOM_PLUGIN = """
from ftx import hookimpl

@hookimpl
def build_trainer(run, model):
    raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
"""


def test_out_of_memory_gets_advice(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch):
    from tests.fake_dists import make_dist

    monkeypatch.syspath_prepend(
        str(make_dist(tmp_path / "site", "ftx-oom", "oom", "oom_mod", OOM_PLUGIN))
    )
    run = tmp_path / "run"
    r = ftx_cli(
        "run",
        "--plugin",
        "oom",
        "--model",
        str(ftx_tiny_model),
        "--data",
        str(ftx_tiny_data["train"]),
        "--output",
        str(run),
    )
    assert r.exit_code == 1 and "out of memory" in r.stderr
    assert "per_device_train_batch_size=4" in r.stderr and "--plugin qlora" in r.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"


def test_killed_export_leaves_no_artifact(ftx_tiny_model, tmp_path):
    target = tmp_path / "model"
    script = textwrap.dedent(f"""
        import os, signal
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from ftx.saving import save_full_model
        model = AutoModelForCausalLM.from_pretrained({str(ftx_tiny_model)!r})
        tok = AutoTokenizer.from_pretrained({str(ftx_tiny_model)!r})
        real = model.save_pretrained
        def dying(path, **kw):
            real(path, **kw)
            os.kill(os.getpid(), signal.SIGKILL)   # killed after writing, before the rename
        model.save_pretrained = dying
        save_full_model(model, tok, {str(target)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert leftovers and all(name.startswith(".tmp-model-") for name in leftovers)


def test_half_written_checkpoint_is_never_the_newest(tmp_path):
    from ftx.runner import newest_checkpoint

    folder = tmp_path / "checkpoints"
    (folder / "checkpoint-4").mkdir(parents=True)
    (folder / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    (folder / "checkpoint-8").mkdir()
    (folder / "checkpoint-8" / "model.safetensors").write_text("partial")
    (folder / "checkpoint-12").mkdir()
    (folder / "checkpoint-12" / "trainer_state.json").write_text('{"global_st')
    assert newest_checkpoint(folder).name == "checkpoint-4"


def test_pickle_weights_refused_unless_allowed(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    shutil.copytree(ftx_tiny_model, pickled)
    weights = pickled / "model.safetensors"
    torch.save(load_file(str(weights)), pickled / "pytorch_model.bin")
    weights.unlink()
    r = ftx_cli(
        "run",
        "--plugin",
        "fft",
        "--model",
        str(pickled),
        "--data",
        str(ftx_tiny_data["train"]),
        "--output",
        str(tmp_path / "run"),
    )
    assert r.exit_code == 2 and "allow_pickle" in r.stderr
    r = ftx_cli(
        "run",
        "--plugin",
        "fft",
        "--model",
        str(pickled),
        "--data",
        str(ftx_tiny_data["train"]),
        "--output",
        str(tmp_path / "run"),
        "--set",
        "model.allow_pickle=true",
        "--set",
        "train.max_steps=2",
    )
    assert r.exit_code == 0, r.output
    assert "warning: model.allow_pickle is on" in r.stderr


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), None])
def test_finite_guard_checks_every_gradient_in_one_pass(poison):
    """One non-finite entry in any gradient stops training and zeroes every gradient; finite
    gradients pass untouched."""
    import torch
    from transformers import TrainerControl, TrainerState

    from ftx.callbacks import FiniteGuard

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    if poison is not None:
        model[1].weight.grad[1, 2] = poison
    guard, control, state = FiniteGuard(), TrainerControl(), TrainerState(global_step=6)
    guard.on_pre_optimizer_step(None, state, control, model=model)
    if poison is None:
        assert guard.bad_step is None and not control.should_training_stop
        assert all(bool((p.grad == 1).all()) for p in model.parameters())
    else:
        assert guard.bad_step == 7 and control.should_training_stop
        assert all(bool((p.grad == 0).all()) for p in model.parameters())


def test_finite_guard_reads_the_trainers_norm_once():
    """With read_norm_from, the guard judges by the norm the trainer computed for the step (and
    takes it, so a stale norm is never reused); without one it computes the norm itself."""
    from types import SimpleNamespace

    import torch
    from transformers import TrainerControl, TrainerState

    from ftx.callbacks import FiniteGuard

    model = torch.nn.Linear(3, 2)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    trainer = SimpleNamespace(step_grad_norm=torch.tensor(2.0))
    guard, control = FiniteGuard(), TrainerControl()
    guard.read_norm_from(trainer)
    guard.on_pre_optimizer_step(None, TrainerState(global_step=1), control, model=model)
    assert guard.bad_step is None and not hasattr(trainer, "step_grad_norm")
    trainer.step_grad_norm = float("inf")  # what the trainer saw; the guard believes it
    guard.on_pre_optimizer_step(None, TrainerState(global_step=2), control, model=model)
    assert guard.bad_step == 3 and control.should_training_stop
    assert all(bool((p.grad == 0).all()) for p in model.parameters())


def test_resume_of_a_run_written_before_train_fp16_existed(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, interrupt_at_step_3, monkeypatch
):
    """A run interrupted under an older ftx (its config.yaml has no train.fp16, no
    activation_checkpointing_kwargs, no evaluation keys) resumes: those keys' values are what it
    trained with."""
    import yaml

    broken = tmp_path / "old"
    assert ftx_cli(*args(ftx_tiny_model, ftx_tiny_data, broken)).exit_code == 130
    saved = yaml.safe_load((broken / "config.yaml").read_text())
    saved["train"].pop("fp16")
    saved["train"].pop("activation_checkpointing_kwargs", None)
    for key in ("select_best", "early_stopping_patience", "early_stopping_min_delta"):
        saved["train"].pop(key)  # and nothing of evaluation during training
    for key in ("eval_metric_every", "eval_metric_rows", "eval_loss_rows", "eval_steps"):
        saved["train"].pop(key)
    (broken / "config.yaml").write_text(yaml.safe_dump(saved))
    monkeypatch.undo()
    refused = ftx_cli("run", "--resume", "--output", str(broken), "--set", "train.fp16=true")
    assert refused.exit_code == 2 and "train.fp16" in refused.output
    r = ftx_cli("run", "--resume", "--output", str(broken))
    assert r.exit_code == 0, r.output
