"""Preference objectives (ftx-preference: dpo, orpo, simpo, kto) on every built-in method,
through the real ``ftx run`` on a tiny random model (fast tier): the method × objective matrix,
the reference policy's cost, ``--model RUN_DIR``, ``ftx compare --objective`` and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from ftx.testing.commands import run_argv

METHODS = ("fft", "sft", "qlora", "ia3")
OBJECTIVES = ("supervised", "dpo", "orpo", "simpo", "kto")
PREFERENCE = ("dpo", "orpo", "simpo", "kto")
METHOD_SETS = {"sft": ["method.layers=last:1"], "qlora": ["method.r=4"]}
TRAIN = {
    "max_steps": 2,
    "per_device_train_batch_size": 4,  # KTO needs at least 2
    "learning_rate": 5e-3,
    "warmup_steps": 0,
    "logging_steps": 1,
}


@pytest.fixture(scope="module")
def pref_data(tmp_path_factory) -> dict[str, Path]:
    """Tiny preference data of the tiny models' task: ``pairs`` (train), ``eval`` (held-out
    pairs), ``kto`` (the training pairs as labelled completions)."""
    from ftx.testing.tiny import write_tiny_preference_dataset as write

    root = tmp_path_factory.mktemp("pref-data")
    return {
        "pairs": write(root / "pairs.jsonl", rows=16, seed=0),
        "eval": write(root / "eval.jsonl", rows=4, seed=1),
        "kto": write(root / "kto.jsonl", rows=16, seed=0, labelled=True),
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_cli(args: list[str]):
    from click.testing import CliRunner

    from ftx.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def ftx_run(method, objective, model, data, out, *sets, train=None):
    args = run_argv(method, model=model, data=data, output=out, train=train or TRAIN, sets=sets)
    return run_cli([*args, "--objective", objective])


def state_dict(path) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def frozen(method: str, name: str) -> bool:
    """Whether ``method`` must leave parameter ``name`` of the exported model as the base had it
    (sft: every block but the last of the tiny model's two; qlora: all but the LoRA targets, the
    blocks' linear layers; ia3: all but its targets k_proj, v_proj, down_proj; fft: none)."""
    if method == "sft":
        return ".layers.1." not in name
    if method == "qlora":
        return "_proj" not in name
    if method == "ia3":
        return not any(t in name for t in ("k_proj", "v_proj", "down_proj"))
    return False


@pytest.fixture(scope="module")
def base_weights(ftx_tiny_model) -> dict:
    return state_dict(ftx_tiny_model)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_under_every_objective(
    method, objective, tmp_path, ftx_tiny_model, ftx_tiny_data, pref_data, base_weights
):
    """A few steps of each pair: finished, a model/ plain transformers loads, only what the
    method trains changed, held-out scores before and after (pairwise for preference)."""
    if objective == "supervised":
        data, sets = ftx_tiny_data["train"], [f"data.eval={ftx_tiny_data['eval']}"]
        sets.append("data.eval_max_new_tokens=8")
    else:
        data = pref_data["kto"] if objective == "kto" else pref_data["pairs"]
        sets = [f"data.eval={pref_data['eval']}"]
    sets += METHOD_SETS.get(method, [])
    out = tmp_path / "run"
    result = ftx_run(method, objective, ftx_tiny_model, data, out, *sets)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["objective"] == objective
    assert summary["steps"] == TRAIN["max_steps"]
    metric = "exact" if objective == "supervised" else "pairwise"
    for key in ("eval_before", "eval_after"):
        assert summary[key]["metric"] == metric and summary[key]["n"] > 0
    if objective != "supervised":
        assert summary["hooks"]["build_trainer"] == objective
        adapter = method in ("qlora", "ia3")
        expected = {"dpo": "policy", "kto": "policy"}.get(objective)
        reference = summary["reference"]
        if expected is None:
            assert reference == "none"
        else:
            assert reference == ("adapters disabled" if adapter else "copy"), reference
    after = state_dict(out / "model")  # plain transformers loads it
    assert after.keys() == base_weights.keys()
    changed = [n for n, t in base_weights.items() if not t.equal(after[n])]
    assert changed, "nothing trained"
    assert not [n for n in changed if frozen(method, n)], f"{method} changed frozen weights"


@pytest.fixture
def built_trainers(monkeypatch):
    """Every trainer the preference objectives build in this test, kept for inspection."""
    from ftx_preference import shared

    made, real = [], shared.trainer_class

    def recording(path):
        cls = real(path)

        class Recorded(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(self)

        return Recorded

    monkeypatch.setattr(shared, "trainer_class", recording)
    return made


@pytest.mark.parametrize("method", ["qlora", "ia3"])
def test_adapter_methods_reference_costs_no_second_copy(
    method, tmp_path, ftx_tiny_model, pref_data, built_trainers
):
    """DPO on an adapter method: no reference model, no ``ref`` adapter left (TRL's copy of
    the adapter is deleted), not one parameter more than the run counted before training."""
    out = tmp_path / "run"
    result = ftx_run(method, "dpo", ftx_tiny_model, pref_data["pairs"], out, "data.eval=null")
    assert result.exit_code == 0, result.output
    (trainer,) = built_trainers
    assert trainer.ref_model is None
    assert list(trainer.model.peft_config) == ["default"]
    summary = json.loads((out / "summary.json").read_text())
    params = sum(p.numel() for p in trainer.model.parameters())
    # Packed 4-bit weights count double in the summary (their logical size).
    assert params == summary["total_params"] or method == "qlora"
    assert summary["reference"] == "adapters disabled"


@pytest.mark.parametrize(("choice", "expected"), [("copy", "copy"), ("precompute", "precomputed")])
def test_full_weight_methods_reference_copy_or_precompute(
    choice, expected, tmp_path, ftx_tiny_model, pref_data, built_trainers
):
    """fft under DPO: ``objective.reference=copy`` holds a frozen copy of the starting model
    (as many parameters again), ``precompute`` none, its log-probabilities in the data."""
    out = tmp_path / "run"
    sets = ["data.eval=null", f"objective.reference={choice}"]
    result = ftx_run("fft", "dpo", ftx_tiny_model, pref_data["pairs"], out, *sets)
    assert result.exit_code == 0, result.output
    (trainer,) = built_trainers
    assert json.loads((out / "summary.json").read_text())["reference"] == expected
    if expected == "copy":
        copy = sum(p.numel() for p in trainer.ref_model.parameters())
        assert copy == sum(p.numel() for p in trainer.model.parameters())
        assert not any(p.requires_grad for p in trainer.ref_model.parameters())
    else:
        assert trainer.ref_model is None
        assert "ref_chosen_logps" in trainer.train_dataset.column_names


def test_reference_auto_chooses_by_memory(monkeypatch):
    """``auto``: a copy when its weights fit a quarter of the free memory, else precompute."""
    import torch

    from ftx.context import DeviceInfo
    from ftx_preference import shared
    from ftx_preference.dpo import objective

    class Run:
        objective_options: ClassVar[dict] = {"reference": "auto"}
        device = DeviceInfo("cpu", False, 0, "CPU")
        model_path = None

    model = torch.nn.Linear(1000, 1000)  # 4 MB of fp32 weights
    monkeypatch.setattr(shared, "free_memory", lambda device: 10 * 2**20)
    assert shared.choose_reference(objective.recipe, Run(), model)[0] == "precomputed"
    monkeypatch.setattr(shared, "free_memory", lambda device: 20 * 2**20)
    monkeypatch.setattr(
        "transformers.AutoModelForCausalLM.from_pretrained", lambda *a, **k: torch.nn.Linear(1, 1)
    )
    monkeypatch.setattr("ftx.loading.from_pretrained_kwargs", lambda run: {})
    assert shared.choose_reference(objective.recipe, Run(), model)[0] == "copy"


def test_dpo_from_a_finished_run_records_the_parent(tmp_path, ftx_tiny_model, pref_data):
    """``--model RUN_DIR`` takes the run's model/ (the reference too) and the summary names the
    parent run."""
    import shutil

    parent = tmp_path / "parent"
    shutil.copytree(ftx_tiny_model, parent / "model")
    (parent / "summary.json").write_text(json.dumps({"status": "finished"}))
    out = tmp_path / "child"
    result = ftx_run("qlora", "dpo", parent, pref_data["pairs"], out, "data.eval=null")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parent_run"] == str(parent.resolve())
    assert summary["model"] == str((parent / "model").resolve())


def test_compare_passes_the_objective_and_reports_its_metric(tmp_path):
    from ftx import comparison
    from ftx.compare_report import write_report

    out = tmp_path / "cmp"
    requests = comparison.run_requests(["fft", "qlora"], out, [], objective="dpo")
    argv = comparison.run_argv(requests[0])
    assert argv[argv.index("--objective") + 1] == "dpo"
    _, spec = comparison.plan_cells(["fft", "qlora"], [], [], objective="dpo", forgetting=False)
    for name in ("fft", "qlora"):
        (out / name).mkdir(parents=True)
        summary = {
            "status": "finished",
            "objective": "dpo",
            "eval_before": {"metric": "pairwise", "score": 0.5},
            "eval_after": {"metric": "pairwise", "score": 0.75},
        }
        (out / name / "summary.json").write_text(json.dumps(summary))
    text = write_report(out, spec)["markdown"]
    assert "objective: dpo" in text and "held-out pairwise before → after" in text
    assert "0.500 → 0.750" in text


def test_kto_pairs_labelled_held_out_rows_by_prompt():
    from ftx.data import LabelledCompletion
    from ftx.errors import BadInput
    from ftx_preference.shared import pairs_by_prompt

    prompt = [{"role": "user", "content": "q"}]

    def row(answer, label, prompt=prompt):
        return LabelledCompletion(None, prompt, [{"role": "assistant", "content": answer}], label)

    (pair,) = pairs_by_prompt([row("good", True), row("bad", False), row("x", True)], "h.jsonl")
    assert pair.chosen[0]["content"] == "good" and pair.rejected[0]["content"] == "bad"
    other = [{"role": "user", "content": "p"}]
    with pytest.raises(BadInput, match=r"h\.jsonl: no prompt has both"):
        pairs_by_prompt([row("good", True), row("bad", False, other)], "h.jsonl")


def test_objectives_are_listed_and_import_no_torch(ftx_cli):
    listed = {p["name"]: p for p in json.loads(ftx_cli("plugins", "--json").stdout)}
    for name in PREFERENCE:
        assert listed[name]["kind"] == "objective" and listed[name]["status"] == "ok"
        assert listed[name]["distribution"] == "ftx-preference"
    modules = ", ".join(f"ftx_preference.{name}" for name in PREFERENCE)
    code = f"import sys, {modules}; print([m for m in ('torch', 'trl') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- bad input: exit 2, one message, before any model loads, no run directory --------------


def bad_rows(tmp_path: Path, pref_data: dict) -> dict[str, Path]:
    pairs = [json.loads(line) for line in pref_data["pairs"].read_text().splitlines()]
    no_rejected = [dict(pairs[0]), {k: v for k, v in pairs[1].items() if k != "rejected"}]
    same = [{**p, "rejected": p["chosen"]} for p in pairs[:3]]
    labels = [{"prompt": p["prompt"], "completion": p["chosen"], "label": "yes"} for p in pairs[:2]]
    one = [{"prompt": pairs[0]["prompt"], "completion": pairs[0]["chosen"], "label": True}]
    return {
        "one_row": write_jsonl(tmp_path / "one_row.jsonl", one),
        "no_rejected": write_jsonl(tmp_path / "no_rejected.jsonl", no_rejected),
        "same": write_jsonl(tmp_path / "same.jsonl", same),
        "labels": write_jsonl(tmp_path / "labels.jsonl", labels),
    }


BAD = [
    ("dpo", "no_rejected", [], ['no_rejected.jsonl, line 2: missing "rejected"']),
    ("orpo", "same", [], ["chosen equals rejected in every one of the 3 pairs"]),
    ("kto", "labels", [], ["labels.jsonl, line 1: \"label\" is 'yes', expected true or false"]),
    ("dpo", "supervised", [], ["looks like supervised data", "--objective supervised"]),
    ("supervised", "pairs", [], ["looks like preference data", "--objective dpo"]),
    ("supervised", "supervised", ["train.beta=0.2"], ["unknown key train.beta", "--objective dpo"]),
    ("kto", "pairs", ["train.per_device_train_batch_size=1"], ["too small for the kto objective"]),
    ("kto", "one_row", [], ["one_row.jsonl: 1 training row(s) left", "at least 2 in every batch"]),
    ("dpo", "pairs", ["train.loss_type=sigmod"], ["train.loss_type='sigmod'", "sigmoid, hinge"]),
    ("simpo", "pairs", ["train.beta=0"], ["beta=0.0 must be > 0.0"]),
    ("simpo", "pairs", ["train.loss_type=ipo"], ["train.loss_type is managed by ftx"]),
    ("dpo", "pairs", ["objective.reference=twin"], ["objective.reference: 'twin' is not one of"]),
]


@pytest.mark.parametrize(("objective", "data", "sets", "needles"), BAD)
def test_bad_preference_input(
    objective, data, sets, needles, tmp_path, monkeypatch, ftx_tiny_model, ftx_tiny_data, pref_data
):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", no_model)
    files = {**bad_rows(tmp_path, pref_data), "supervised": ftx_tiny_data["train"], **pref_data}
    out = tmp_path / "run"
    result = ftx_run("qlora", objective, ftx_tiny_model, files[data], out, *sets)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr
    assert not out.exists()


KIT_PAIRS = [("dpo", "qlora"), ("orpo", "sft"), ("simpo", "ia3"), ("kto", "fft")]


@pytest.mark.parametrize(("objective", "method"), KIT_PAIRS)
def test_each_objective_passes_the_conformance_kit(objective, method, tmp_path):
    """Each objective under one method (the matrix above covers the other pairs): the kit's
    checks, its ``learned`` check included (the margin of the chosen answers grows)."""
    from ftx.testing.conformance import check_plugin

    report = check_plugin(objective, tmp_path, methods=[method], sets=METHOD_SETS.get(method, ()))
    assert report.distribution == "ftx-preference" and report.kind == "objective"
    assert {"traits", "arguments", "run", "loss", "export", "learned", "cli"} <= set(report.passed)
    (run,) = report.runs
    assert run.eval_after["metric"] == "pairwise"
    assert run.fit_margin is not None and run.fit_margin[1] > run.fit_margin[0]
