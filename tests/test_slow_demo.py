"""Slow tier: the real SmolLM2-135M-Instruct through every built-in method on the demo task.

One `ftx compare` run (the session's ``demo_compare``, tests/conftest.py) trains FFT and SFT
for the same fixed budget and QLoRA at ftx's default budget (each in its own process), scores
the held-out split before and after, measures forgetting (retention of the shipped general
questions, drift on general text: on by default in compare) and writes the comparison report;
the tests below read its run directories. Budgets are small enough for 2 CPU cores.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_HELD_OUT
from tests.test_forgetting import SMOLLM2_FLOOR

pytestmark = pytest.mark.slow

EVAL_ROWS = DEMO_HELD_OUT


@pytest.fixture(scope="module")
def compared(demo_compare):
    """The session's demo compare (tests/conftest.py): fft and sft at a fixed budget, qlora at
    ftx's default budget."""
    return demo_compare


@pytest.mark.parametrize("plugin", ["fft", "sft", "qlora"])
def test_each_method_learns_the_demo_task(compared, plugin):
    summary = json.loads((compared / plugin / "summary.json").read_text())
    before, after = summary["eval_before"], summary["eval_after"]
    print(
        f"{plugin}: exact {before['score']:.3f} -> {after['score']:.3f} "
        f"(n={after['n']}, {summary['steps']} steps, {summary['train_time_s']} s)"
    )
    assert summary["status"] == "finished" and after["n"] == EVAL_ROWS
    assert before["score"] <= 0.1
    assert after["score"] >= 0.6


def test_compare_report_has_every_method(compared):
    report = (compared / "compare.md").read_text()
    for plugin in ("fft", "sft", "qlora"):
        assert f"| {plugin} | — | finished |" in report  # no grid value
    assert (compared / "compare.png").is_file()


def test_compare_measures_what_each_method_forgets(compared):
    """Every run's retention and drift against SmolLM2 (the base's answers scored once and
    cached), in the summaries, the report's table and recommendation, and the self-contained
    HTML report. The ranking is printed, not asserted: it is what the closing note compares
    with the published finding (LoRA forgets less than full fine-tuning)."""
    measured = {}
    for plugin in ("fft", "sft", "qlora"):
        forgetting = json.loads((compared / plugin / "summary.json").read_text())["forgetting"]
        # SmolLM2 answers enough of the questions for retention to be a share of something
        # (the fast tier checks that an untouched model keeps everything and does not drift)
        assert forgetting["retention_base_correct"] >= SMOLLM2_FLOOR, forgetting
        assert 0.0 <= forgetting["retention"] <= 1.0 and forgetting["drift_nats"] > 0.0
        measured[plugin] = forgetting
        print(
            f"{plugin}: retention {forgetting['retention']:.3f} "
            f"({forgetting['retention_kept']}/{forgetting['retention_base_correct']}), "
            f"drift {forgetting['drift_nats']:.4f} nats/token, {forgetting['seconds']} s"
        )
    base_correct = {f["retention_base_correct"] for f in measured.values()}
    assert len(base_correct) == 1  # one base, scored the same for every method
    report = (compared / "compare.md").read_text()
    assert "least forgetting (highest retention):" in report
    html = (compared / "compare.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html


def test_qlora_merged_model_keeps_the_fine_tune(compared):
    """model/ (adapter merged into the unquantised base) generates exactly what the adapter on
    the unquantised base generates, and scores like the 4-bit model + adapter that trained."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from ftx.data import demo_data_paths, load_conversations
    from ftx.evaluate import generations, score
    from ftx.models import load_tokenizer

    run = compared / "qlora"
    base_dir = json.loads((run / "adapter" / "adapter_config.json").read_text())[
        "base_model_name_or_path"
    ]
    tokenizer = load_tokenizer(run / "model")
    convs = load_conversations(demo_data_paths()[1])[:EVAL_ROWS]
    merged = AutoModelForCausalLM.from_pretrained(str(run / "model")).eval()
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_dir), str(run / "adapter")
    ).eval()
    with torch.no_grad():
        a = [r["output"] for r in generations(merged, tokenizer, convs, max_new_tokens=40)]
        b = [r["output"] for r in generations(adapted, tokenizer, convs, max_new_tokens=40)]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    assert agree >= 0.95, f"merged and adapter outputs agree on only {agree:.0%}"

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    four_bit = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(
            base_dir, quantization_config=quant, dtype=torch.float32
        ),
        str(run / "adapter"),
    ).eval()
    with torch.no_grad():
        trained = score(four_bit, tokenizer, convs, max_new_tokens=40)["score"]
        exported = score(merged, tokenizer, convs, max_new_tokens=40)["score"]
    print(f"qlora held-out exact: 4-bit + adapter {trained:.3f}, merged model/ {exported:.3f}")
    assert exported >= trained - 0.1


@pytest.mark.parametrize("plugin", ["fft", "qlora"])
def test_demo_model_card_names_the_real_base_model(compared, plugin):
    """The card's base_model is SmolLM2's hub id, from the GGUF's general.* metadata, not the
    cache directory the GGUF was converted into; license and language come from it too."""
    from ftx.model_card import read_front_matter

    for folder in ("model", "adapter") if plugin == "qlora" else ("model",):
        front = read_front_matter(compared / plugin / folder / "README.md")
        assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct", front
        assert front["license"] == "apache-2.0" and front["language"] == ["en"]
        assert plugin in front["tags"] and "supervised" in front["tags"]


def test_default_demo_run_evaluates_during_training_and_exports_its_best_step(demo_qlora_run):
    """The shared demo QLoRA run (tests/conftest.py), at ftx's default budget: held-out
    evaluation during training (validation loss and exact match on a sample), the exported
    step and why, an early stop if there was one. The curve is printed for the closing note."""
    summary = json.loads((demo_qlora_run / "summary.json").read_text())
    evaluation, best = summary["evaluation"], summary["best"]
    curve = evaluation["validation_loss"]
    scores = {row["step"]: row["eval_exact"] for row in evaluation["task_metric"]}
    print(
        f"demo qlora: {summary['steps']} of {summary['max_steps']} steps, "
        f"exported step {best['step']} ({best['why']}), stopped early: "
        f"{summary.get('stopped_early')}; held-out exact after {summary['eval_after']['score']}"
    )
    for point in curve:
        print(f"  step {point['step']:>4}: eval_loss {point['eval_loss']:.4f}, "
              f"exact (sample) {scores.get(point['step'])}")  # fmt: skip
    assert summary["status"] == "finished" and len(curve) >= 3
    assert [p["step"] for p in curve] == sorted(p["step"] for p in curve)
    assert best["step"] in {p["step"] for p in curve} and best["step"] <= summary["steps"]
    assert summary["eval_after"]["score"] >= 0.9
    assert "![loss](loss.png)" in (demo_qlora_run / "report.md").read_text()
