"""bench/gpu.sh and bench/gpu.py, checked without a GPU: the script parses, every variant's
settings are valid ftx settings on a fake H100 (so no GPU time is lost to a typo), FSDP
variants start under a one-process torchrun, GPU-only variants are skipped on a CPU with the
reason recorded. (``bench/gpu.py --dry-run`` and ``--tiny`` run the rest on a CPU.)"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.bench_scripts import load_bench_script
from tests.test_precision import H100, resolve_for

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def gpu_bench():
    return load_bench_script("gpu")


def test_gpu_sh_parses():
    assert subprocess.run(["bash", "-n", str(BENCH / "gpu.sh")]).returncode == 0


def test_every_variant_is_a_valid_run_on_an_h100(gpu_bench, monkeypatch):
    # vLLM cannot be installed here: the grpo objective's "is vllm installed" check sees a
    # stand-in, so the variant's settings are still checked against the installed GRPOConfig.
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else find_spec(n, *a)
    )
    for name, (plugin, sets, _) in gpu_bench.METHODS.items():
        objective = gpu_bench.OBJECTIVES.get(name, "supervised")
        resolved = resolve_for(plugin, H100, list(sets), objective)
        train = resolved.train_args
        if "fp16" in name:
            assert (train["bf16"], train["fp16"]) == (False, True), name
        else:
            assert train["bf16"] is True, name


def test_commands_and_skips(gpu_bench, tmp_path):
    args = SimpleNamespace(steps=3, batch=2, seq=16)
    argv = gpu_bench.run_args("fft-fsdp1", tmp_path / "m", tmp_path / "d.jsonl", tmp_path, args)
    assert argv[:2] == ["--plugin", "fft"] and "method.fsdp=full_shard" in argv
    cmd = gpu_bench.child_command("fft-fsdp1", tmp_path / "r.json", argv)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    assert gpu_bench.child_command("fft-bf16", tmp_path / "r.json", argv)[2] == "--worker"
    assert gpu_bench.skip_reason("fft-fp16", gpu=False) == "needs a CUDA GPU"
    assert gpu_bench.skip_reason("fft-bf16", gpu=False) is None
    if importlib.util.find_spec("flash_attn") is None:
        assert "flash-attn is not installed" in gpu_bench.skip_reason("fft-fa2", gpu=True)
    if importlib.util.find_spec("vllm") is None:
        assert "vllm is not installed" in gpu_bench.skip_reason("grpo-qlora-vllm", gpu=True)
    grpo = gpu_bench.run_args("grpo-qlora", tmp_path / "m", tmp_path / "p.jsonl", tmp_path, args)
    assert grpo[grpo.index("--objective") + 1] == "grpo"
    assert gpu_bench.data_file("grpo-qlora", "m", tmp_path).name == "m-prompts.jsonl"
    text = gpu_bench.table({"a/b": {"skipped": "needs a CUDA GPU"}, "a/c": {"error": "x"}})
    assert "| a/b | needs a CUDA GPU |" in text and "| a/c | failed |" in text
