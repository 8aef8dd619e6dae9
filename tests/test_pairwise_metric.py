"""Pairwise accuracy (``ftx.evaluate_pairwise``) against a hand computation, and through
``ftx eval --metric pairwise``."""

from __future__ import annotations

import json

import pytest

from ftx.data import demo_preference_paths, load_preference_pairs, tokenize_pairs
from ftx.evaluate_pairwise import pairwise_scores
from tests.data_fixtures import write_jsonl


@pytest.fixture(scope="module")
def tiny(ftx_tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ftx_tiny_model)
    return model, AutoTokenizer.from_pretrained(ftx_tiny_model)


def explicit_logp(model, prompt: list[int], answer: list[int]) -> float:
    """log p(answer | prompt): one unpadded sequence, a log-softmax per answer token."""
    import torch

    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    total = 0.0
    for offset, token in enumerate(answer):
        position = len(prompt) + offset - 1  # the logits that predict this token
        total += float(torch.log_softmax(logits[position], dim=-1)[token])
    return total


def test_accuracy_and_margin_match_a_hand_computation(tiny):
    model, tokenizer = tiny
    pairs = load_preference_pairs(demo_preference_paths()[1])[:12]
    examples = tokenize_pairs(pairs, tokenizer, max_length=256).examples
    margins = [
        explicit_logp(model, ex["prompt_ids"], ex["chosen_ids"])
        - explicit_logp(model, ex["prompt_ids"], ex["rejected_ids"])
        for ex in examples
    ]
    model.train()  # the metric switches dropout off and restores the mode
    result = pairwise_scores(model, tokenizer, pairs, max_length=256, batch_size=5)
    assert model.training
    assert result["metric"] == "pairwise" and result["n"] == 12
    assert result["correct"] == sum(m > 0 for m in margins)
    assert result["score"] == pytest.approx(result["correct"] / 12)
    assert result["mean_margin"] == pytest.approx(sum(margins) / 12, abs=1e-4)
    first = result["examples"][0]
    assert first["id"] == pairs[0].id
    assert first["chosen_logp"] - first["rejected_logp"] == pytest.approx(margins[0], abs=1e-4)
    # Batching (and the padding it brings) changes nothing.
    one = pairwise_scores(model, tokenizer, pairs, max_length=256, batch_size=1)
    assert one["mean_margin"] == pytest.approx(result["mean_margin"], abs=1e-4)
    assert one["correct"] == result["correct"]


def test_ties_count_as_wrong_and_no_pairs_is_bad_input(tiny, tmp_path):
    from ftx.errors import BadInput

    model, tokenizer = tiny
    rows = [
        {"prompt": "q", "chosen": "same", "rejected": "same"},
        {"prompt": "q", "chosen": "a", "rejected": "b"},
    ]
    pairs = load_preference_pairs(write_jsonl(tmp_path / "p.jsonl", rows))
    result = pairwise_scores(model, tokenizer, pairs[:1])
    assert result["score"] == 0.0 and result["mean_margin"] == 0.0
    with pytest.raises(BadInput, match="no held-out preference pairs"):
        pairwise_scores(model, tokenizer, [])


def test_ftx_eval_metric_pairwise(ftx_cli, ftx_tiny_model, ftx_tiny_data):
    _, heldout = demo_preference_paths()
    r = ftx_cli("eval", ftx_tiny_model, "--data", heldout, "--metric", "pairwise", "--limit", "6")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["metric"] == "pairwise" and result["n"] == 6
    assert 0.0 <= result["score"] <= 1.0 and "mean_margin" in result
    assert result["data"] == str(heldout) and "examples" not in result
    assert "mean margin" in r.stderr
    # Supervised data under the pairwise metric: exit 2, named, before any model is loaded.
    r = ftx_cli("eval", ftx_tiny_model, "--data", ftx_tiny_data["eval"], "--metric", "pairwise")
    assert r.exit_code == 2 and "this looks like supervised data" in r.stderr
    # Preference data under a supervised metric: the reverse hint.
    r = ftx_cli("eval", ftx_tiny_model, "--data", heldout)
    assert r.exit_code == 2 and "--metric pairwise" in r.stderr
