"""``ftx plan`` learns the objective: the ``estimate_memory`` hook gets its traits, and the shared
estimate library (``ftx.estimates.EstimateRequest``) accounts for them once — activations for
every sequence of a row, a frozen reference copy of the weights for a method that trains the
model's own weights, none for an adapter method (its reference is the model with the adapters
disabled). Supervised plans are unchanged (the calibration is tests/test_plan.py's)."""

from __future__ import annotations

import json

import pytest

from ftx.context import DeviceInfo, ObjectiveTraits
from ftx.estimates import DTYPE_BYTES, EstimateRequest, model_shape
from ftx.planner import plan
from tests.fake_dists import make_dist
from tests.model_configs import llama_7b

GPU = DeviceInfo(kind="cuda", bf16=True, count=1, name="test GPU")
DPO_LIKE = ObjectiveTraits(metrics=("pairwise",), sequences_per_row=2, reference="policy")
ORPO_LIKE = ObjectiveTraits(metrics=("pairwise",), sequences_per_row=2, reference="none")


def estimate(plugin: str, objective: ObjectiveTraits | None, *, dtype="bfloat16", batch_size=2):
    """``plugin``'s estimate (hook: estimate_memory) for Llama-2-7B at 512 tokens on a bf16 GPU,
    under ``objective`` (``None``: the argument left out, as an older caller would)."""
    from ftx.options import resolve_options
    from ftx.plugins import call_first, get_plugin, manager_for

    pm = manager_for(get_plugin(plugin), defaults=False)
    declared, _ = call_first(pm, "method_options")
    kwargs = {
        "model_config": llama_7b(),
        "seq_len": 512,
        "batch_size": batch_size,
        "options": resolve_options(declared, {}, plugin=plugin),
        "device": GPU,
        "dtype": dtype,
    }
    if objective is not None:
        kwargs["objective"] = objective
    result, who = call_first(pm, "estimate_memory", **kwargs)
    assert who == plugin
    return result


@pytest.mark.parametrize("plugin", ["fft", "sft", "qlora"])
def test_supervised_traits_change_nothing(plugin):
    supervised = ObjectiveTraits(metrics=("exact", "json", "loss"))
    assert estimate(plugin, supervised).as_dict() == estimate(plugin, None).as_dict()


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_dpo_raises_fft_by_a_weights_copy_plus_activations(dtype):
    base, dpo = estimate("fft", None, dtype=dtype), estimate("fft", DPO_LIKE, dtype=dtype)
    params = model_shape(llama_7b()).total_params()
    assert dpo.reference == params * DTYPE_BYTES[dtype]  # the frozen reference copy
    assert base.reference == 0
    # what trains is the same; the step runs chosen and rejected: about twice the activations
    assert (dpo.weights, dpo.gradients, dpo.optimizer) == (
        base.weights,
        base.gradients,
        base.optimizer,
    )
    assert 1.8 < dpo.activations / base.activations <= 2.0
    # checkpointed, the loss head's tile (capped at 4096 tokens on CUDA) is most of it
    assert base.activations_checkpointed < dpo.activations_checkpointed
    assert dpo.activations_checkpointed <= 2 * base.activations_checkpointed
    extra = dpo.total(True) - base.total(True)
    assert extra == dpo.reference + dpo.activations_checkpointed - base.activations_checkpointed
    assert any("reference" in note for note in dpo.notes)


def test_dpo_raises_qlora_by_activations_only():
    base, dpo = estimate("qlora", None), estimate("qlora", DPO_LIKE)
    assert dpo.reference == 0  # adapters disabled: the reference costs no second copy
    assert dpo.weights == base.weights and dpo.optimizer == base.optimizer
    assert dpo.quantization_overhead == base.quantization_overhead
    assert 1.8 < dpo.activations / base.activations <= 2.0
    assert dpo.total(True) - base.total(True) == (
        dpo.activations_checkpointed - base.activations_checkpointed
    )


def test_reference_free_pairs_cost_activations_but_no_copy():
    base, orpo = estimate("fft", None), estimate("fft", ORPO_LIKE)
    assert orpo.reference == 0 and orpo.activations > 1.8 * base.activations


def test_estimate_request_counts_sequences_and_the_copy_once():
    request = EstimateRequest(llama_7b(), 512, 3, {}, GPU, "bfloat16", DPO_LIKE)
    assert request.sequences == 6 and request.tokens == 6 * 512 and request.reference_copy
    default = EstimateRequest(llama_7b(), 512, 3, {}, GPU, "bfloat16")
    assert default.sequences == 3 and not default.reference_copy


OBJECTIVE = """
from ftx import hookimpl
from ftx.context import ObjectiveTraits

@hookimpl
def objective_traits():
    return ObjectiveTraits(metrics=("pairwise",), sequences_per_row=2, reference="policy",
                           data="preference pairs")
"""
OLD_ESTIMATE = """
from ftx import hookimpl

@hookimpl
def estimate_memory(model_config, seq_len, batch_size, options, device, dtype):
    from ftx.estimates import EstimateRequest

    request = EstimateRequest(model_config, seq_len, batch_size, options, device, dtype)
    shape = request.shape
    return request.dense(trainable_params=shape.total_params(),
                         trainable_linear_params=shape.layers * shape.block_linear_params(),
                         layers_with_grad=shape.layers, head_trainable=True)
"""


@pytest.fixture
def fake_objective(tmp_path, monkeypatch):
    root = tmp_path / "site"
    make_dist(root, "ftx-pairs", "pairs", "ftx_pairs_mod", OBJECTIVE, group="ftx.objectives")
    make_dist(root, "ftx-oldest", "oldest", "ftx_oldest_mod", OLD_ESTIMATE)
    monkeypatch.syspath_prepend(str(root))
    return root


def test_plan_objective_reaches_every_estimate(ftx_cli, llama7b_dir, fake_objective):
    common = ("plan", "--model", llama7b_dir, "--gpu-mem", "80GB", "--json")
    supervised = json.loads(ftx_cli(*common).stdout)
    result = ftx_cli(*common, "--objective", "pairs")
    assert result.exit_code == 0, result.output
    pairs = json.loads(result.stdout)
    assert supervised["objective"]["name"] == "supervised"
    assert pairs["objective"] == {
        "name": "pairs",
        "sequences_per_row": 2,
        "reference": "policy",
        "metrics": ["pairwise"],
        "data": "preference pairs",
        "generation_steps": 0,
    }
    before = {r["name"]: r for r in supervised["methods"]}
    after = {r["name"]: r for r in pairs["methods"]}
    assert "pairs" not in after and "supervised" not in after  # objectives are not methods
    fft, qlora = after["fft"]["estimate"], after["qlora"]["estimate"]
    assert fft["reference"] > 0 and qlora["reference"] == 0
    for name in ("fft", "sft", "qlora"):
        assert after[name]["peak_bytes"] > before[name]["peak_bytes"], name
    # a method whose hook does not take the objective: planned as supervised, and it says so
    old = after["oldest"]["estimate"]
    assert old["total"] == before["oldest"]["estimate"]["total"]
    assert any("does not take the objective" in note for note in old["notes"])
    table = ftx_cli(*common[:-1], "--objective", "pairs")
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert "objective pairs: 2 sequences per row, a reference model" in text
    assert "weight includes the objective's frozen reference copy" in text


def test_plan_python_api_takes_the_objective(llama7b_dir, fake_objective):
    default = plan(str(llama7b_dir), gpu_mem=80 << 30)
    same = plan(str(llama7b_dir), gpu_mem=80 << 30, objective="supervised")
    assert default == same


@pytest.mark.parametrize(
    ("objective", "needle"),
    [("nope", "unknown objective 'nope'"), ("fft", "fft is a method, not an objective")],
)
def test_plan_unknown_or_wrong_kind_objective_exits_2(ftx_cli, llama7b_dir, objective, needle):
    result = ftx_cli("plan", "--model", llama7b_dir, "--objective", objective)
    assert result.exit_code == 2 and needle in result.stderr
