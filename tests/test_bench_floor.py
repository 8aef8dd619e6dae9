"""bench/floor.py's arithmetic, checked on small products: what a profiled step's matmuls
are recorded as, their FLOPs, and the replay that times them (the bench itself runs SmolLM2:
``python bench/floor.py``; ``--quick --model DIR`` runs it on any small model)."""

from __future__ import annotations

import pytest

from tests.bench_scripts import load_bench_script


@pytest.fixture(scope="module")
def floor():
    return load_bench_script("floor")


def test_profiled_matmuls_carry_shapes_dtypes_and_counts(floor):
    import torch
    from torch.profiler import ProfilerActivity, profile

    layer = torch.nn.Linear(16, 24)
    x = torch.randn(5, 16, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(3):
            layer(x).sum().backward()
        torch.bmm(torch.randn(2, 3, 4), torch.randn(2, 4, 6))
    found = floor.profiled_ops(prof, step_s=1.0)
    by_op: dict[str, int] = {}
    for mm in found["matmuls"]:
        by_op[mm["op"]] = by_op.get(mm["op"], 0) + mm["count"]
        assert all(d == "float" for d in mm["dtypes"][:2]), mm
    assert by_op["aten::addmm"] == 3  # the forward, once per call
    assert by_op["aten::mm"] == 6  # backward: the input's and the weight's gradient
    assert by_op["aten::bmm"] == 1
    assert all(o["name"] not in floor.MATMUL_OPS for o in found["top_other_ops"])
    assert 0.0 <= found["outside_ops_s"] <= 1.0


@pytest.mark.parametrize(
    ("op", "shapes", "flops", "result"),
    [
        ("aten::mm", [[5, 16], [16, 24]], 2 * 5 * 16 * 24, (5, 24)),
        ("aten::addmm", [[24], [5, 16], [16, 24], [], []], 2 * 5 * 16 * 24, (5, 24)),
        ("aten::bmm", [[2, 3, 4], [2, 4, 6]], 2 * 2 * 3 * 4 * 6, (2, 3, 6)),
        ("aten::baddbmm", [[2, 3, 6], [2, 3, 4], [2, 4, 6], [], []], 2 * 2 * 3 * 4 * 6, (2, 3, 6)),
    ],
)
def test_each_matmul_is_rebuilt_with_its_flops(floor, op, shapes, flops, result):
    import torch

    args, work = floor.matmul_inputs(op, shapes, ["float", "float", "float", "Scalar", "Scalar"])
    assert work == flops
    assert tuple(getattr(torch, op.split("::")[1])(*args).shape) == result


def test_replay_scales_by_count_and_keeps_the_dtype(floor):
    one = {"op": "aten::mm", "shapes": [[64, 64], [64, 64]], "dtypes": ["c10::BFloat16"] * 2}
    args, _ = floor.matmul_inputs(one["op"], one["shapes"], one["dtypes"])
    assert str(args[0].dtype) == "torch.bfloat16"
    replayed = floor.replay([{**one, "count": 4}])
    assert replayed["matmul_gflop"] == pytest.approx(4 * 2 * 64**3 / 1e9)
    assert replayed["top"][0]["seconds_each"] > 0
    assert replayed["matmul_s"] == pytest.approx(4 * replayed["top"][0]["seconds_each"])


def test_summary_ratios(floor):
    data = {
        "pairs": [
            {"step_s": 2.0, "matmul_s": 1.6},
            {"step_s": 2.4, "matmul_s": 1.6},
            {"step_s": 1.8, "matmul_s": 1.5},
        ],
        "profiled_step_s": 2.2,
        "outside_ops_s": 0.1,
        "replay": {"matmul_s": 1.6, "matmul_gflop": 80.0},
        "peak_gflops": {"float32": 100.0, "bfloat16": 400.0},
    }
    row = floor.summarise("fft", data)
    assert row["step_over_matmul"] == 1.25  # the median of the pairs' own ratios
    assert row["ratio_range"] == [1.2, 1.5]
    assert row["step_s"] == 2.0 and row["matmul_s"] == 1.6  # medians
    assert row["mfu_vs_float32_peak"] == 0.4 and row["mfu_vs_bfloat16_peak"] == 0.1
    assert row["replay_vs_float32_peak"] == 0.5


def test_one_step_is_profiled_then_each_timed_step_is_paired_with_a_replay(floor, monkeypatch):
    """warm-up, the profiled step, one untimed step, then ``timed`` (step, replay) pairs; the
    run is told to stop after the last pair."""
    from types import SimpleNamespace

    import torch

    monkeypatch.setattr(floor, "peak_gflops", lambda dtype: 1.0)
    report: dict = {}
    callback = floor.floor_callback(1, 2, report)
    control = SimpleNamespace(should_training_stop=False)
    a = torch.randn(128, 128)
    for _ in range(5):  # 1 warm-up + profiled + untimed + 2 timed
        assert not control.should_training_stop
        callback.on_step_begin(None, None, control)
        torch.mm(a, a)
        callback.on_step_end(None, None, control)
    assert control.should_training_stop
    callback.on_train_end(None, None, control)
    assert [(m["op"], m["shapes"], m["count"]) for m in report["matmuls"]] == [
        ("aten::mm", [[128, 128], [128, 128]], 1)
    ]
    assert len(report["pairs"]) == 2
    assert all(
        p["step_s"] > 0 and p["matmul_s"] > 0 and p["page_faults"] >= 0 for p in report["pairs"]
    )


def test_the_repeated_row_is_the_median_length_one(floor, tmp_path):
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(f'{{"text": "{"x" * n}"}}\n' for n in (5, 1, 9, 3, 7)))
    target = floor.write_repeated_row(source, 4, tmp_path / "out" / "train.jsonl")
    assert target.read_text().splitlines() == ['{"text": "xxxxx"}'] * 4
