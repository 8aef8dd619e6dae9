"""ftx.calibration: the CPU choices measured once per CPU, cached, switchable, recorded."""

from __future__ import annotations

import json

import pytest

from ftx import attention, calibration
from ftx.errors import BadInput

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile sse4_2

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: something else
"""


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty ftx cache, no calibration applied yet, FTX_CALIBRATION unset."""
    monkeypatch.setenv("FTX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FTX_CALIBRATION", raising=False)
    monkeypatch.setattr(calibration, "APPLIED", None)
    return tmp_path / "cache" / "calibration"


def fake_matmuls(monkeypatch, fp32_s: float, bf16_s: float) -> None:
    import torch

    seconds = {torch.float32: fp32_s, torch.bfloat16: bf16_s}
    monkeypatch.setattr(calibration, "_matmul_seconds", lambda dtype, *a, **k: seconds[dtype])


def test_the_cpu_is_named_by_its_first_block_and_matmul_flags():
    identity = calibration.cpu_identity(CPUINFO)
    assert identity == {
        "vendor": "GenuineIntel",
        "model_name": "Intel(R) Xeon(R) Platinum 8480+",
        "family": "6",
        "model": "143",
        "flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"],
    }
    assert calibration.cpu_label(identity).endswith(
        "(family 6 model 143; avx2, avx512f, avx512_bf16, amx_bf16, amx_tile)"
    )


def test_measured_once_then_cached_per_cpu_torch_and_threads(fresh):
    first = calibration.for_this_cpu()
    assert first.source == "measured" and calibration.APPLIED is first
    assert first.fp32_gflops > 0 and first.bf16_gflops > 0 and first.seconds > 0
    # this CPU's own answer, from its own numbers
    assert first.bf16_autocast == (first.bf16_gflops >= 1.25 * first.fp32_gflops)
    files = list(fresh.glob("*.json"))
    assert len(files) == 1
    again = calibration.for_this_cpu()
    assert again.source == "cached" and again.seconds == 0
    assert (again.fp32_gflops, again.bf16_autocast) == (first.fp32_gflops, first.bf16_autocast)
    identity = calibration.cpu_identity()
    keys = {
        calibration.cache_path(identity, "2.13.0", 2),
        calibration.cache_path(identity, "2.14.0", 2),
        calibration.cache_path(identity, "2.13.0", 4),
        calibration.cache_path(calibration.cpu_identity(CPUINFO), "2.13.0", 2),
    }
    assert len(keys) == 4


def test_refresh_measures_again_and_a_broken_cache_is_remeasured(fresh, monkeypatch):
    calibration.for_this_cpu()
    (path,) = fresh.glob("*.json")
    path.write_text("{not json")
    assert calibration.for_this_cpu().source == "measured"
    assert json.loads(path.read_text())["source"] == "measured"
    monkeypatch.setenv("FTX_CALIBRATION", "refresh")
    assert calibration.for_this_cpu().source == "measured"


def test_off_uses_the_rules_and_writes_nothing(fresh, monkeypatch):
    from ftx.device import cpu_supports_bf16

    monkeypatch.setenv("FTX_CALIBRATION", "off")
    chosen = calibration.for_this_cpu()
    assert chosen.source == "off" and chosen.fp32_gflops is None
    assert chosen.bf16_autocast == cpu_supports_bf16()
    assert not fresh.exists()


def test_a_cpu_where_bf16_pays_measures_short_attention(monkeypatch):
    """The AMX/AVX512-BF16 branch, on whatever CPU runs the tests: the matmul rates are given
    (bf16 twice fp32's), the attention kernels are timed for real."""
    fake_matmuls(monkeypatch, fp32_s=0.002, bf16_s=0.001)
    chosen = calibration.measure("test CPU", "2.13.0", 2)
    assert chosen.bf16_autocast and chosen.bf16_speedup == 2.0
    assert set(chosen.attention_ms) == {"64", "192"}
    faster_in_fp32 = [int(n) for n, (bf16, fp32) in chosen.attention_ms.items() if fp32 < bf16]
    assert chosen.attention_fp32_max_length == max(faster_in_fp32, default=0)


@pytest.mark.parametrize("bf16_s", [0.0019, 0.2])  # barely faster; emulated
def test_bf16_that_does_not_pay_keeps_fp32(monkeypatch, bf16_s):
    fake_matmuls(monkeypatch, fp32_s=0.002, bf16_s=bf16_s)
    chosen = calibration.measure("test CPU", "2.13.0", 2)
    assert not chosen.bf16_autocast and chosen.attention_fp32_max_length == 0
    assert chosen.attention_ms is None


def test_the_choice_reaches_the_device_and_attention(fresh, monkeypatch):
    from ftx import device

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    fake_matmuls(monkeypatch, fp32_s=0.002, bf16_s=0.0005)
    monkeypatch.setattr(calibration, "_attention_seconds", lambda n, fp32: 0.001 * (2 - fp32))
    found = device.detect()
    assert found.kind == "cpu" and found.bf16
    assert attention.fp32_max_length() == 192  # fp32 copies measured faster at both lengths
    fake_matmuls(monkeypatch, fp32_s=0.002, bf16_s=0.2)
    monkeypatch.setenv("FTX_CALIBRATION", "refresh")
    assert not device.detect().bf16 and attention.fp32_max_length() == 0


def test_no_calibration_keeps_the_attention_rule(monkeypatch):
    monkeypatch.setattr(calibration, "APPLIED", None)
    assert attention.fp32_max_length() == attention.FP32_MAX_LENGTH


def test_a_bad_switch_is_refused(monkeypatch):
    monkeypatch.setenv("FTX_CALIBRATION", "sometimes")
    with pytest.raises(BadInput, match="FTX_CALIBRATION=sometimes") as err:
        calibration.mode()
    assert "off" in err.value.hint


def test_a_bad_switch_exits_2_before_anything_loads(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch, no_model_loading
):
    monkeypatch.setenv("FTX_CALIBRATION", "sometimes")
    out = tmp_path / "run"
    data = ftx_tiny_data["train"]
    args = ["--plugin", "sft", "--model", ftx_tiny_model, "--data", data, "--output", out]
    result = ftx_cli("run", *args)
    assert result.exit_code == 2, result.output
    assert "FTX_CALIBRATION=sometimes" in result.stderr and "Traceback" not in result.output
    assert not out.exists()
