"""The streaming LoRA merge (ftx.merging): equal to PEFT's in-memory merge tensor for tensor,
sharded output, the checkpoint's own dtype, and peak anonymous memory about one shard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SHAPE = {"hidden_size": 256, "intermediate_size": 1024, "num_layers": 4}
SHARD = 3_000_000
"""Bytes per shard of the base (the tiny model's largest tensor is 1 MiB in fp32)."""


def _base(root: Path, dtype: str = "float32") -> Path:
    """A tiny random llama saved in several safetensors shards, in ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftx.loading import torch_dtype
    from ftx.testing.tiny import make_tiny_model

    plain = make_tiny_model(root / "plain", **SHAPE)
    model = AutoModelForCausalLM.from_pretrained(str(plain), dtype=torch_dtype(dtype))
    target = root / f"base-{dtype}"
    model.save_pretrained(target, max_shard_size=SHARD)
    AutoTokenizer.from_pretrained(str(plain)).save_pretrained(target)
    return target


def _adapter(base: Path, target: Path, **lora) -> Path:
    """A LoRA adapter on ``base`` with random (nonzero) A and B, saved to ``target``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, **lora
    )
    get_peft_model(model, config).save_pretrained(target)
    return target


def _state(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    state: dict = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        state.update(load_file(str(file)))
    return state


@pytest.fixture(scope="module")
def fp32_base(tmp_path_factory):
    return _base(tmp_path_factory.mktemp("merge"))


@pytest.mark.parametrize("rslora", [False, True])
def test_streaming_equals_the_in_memory_merge(fp32_base, tmp_path, rslora):
    from ftx.adapters import merge_adapter_in_memory
    from ftx.merging import streamable_lora, streaming_merge
    from ftx.models import load_tokenizer

    adapter = _adapter(fp32_base, tmp_path / "adapter", use_rslora=rslora)
    assert streamable_lora(adapter) is None
    tok = load_tokenizer(fp32_base)
    reference = merge_adapter_in_memory(adapter, fp32_base, tok, tmp_path / "in-memory")
    streamed = streaming_merge(
        fp32_base, tok, tmp_path / "streamed", adapter_dir=adapter, max_shard_bytes=SHARD
    )
    want, got = _state(reference), _state(streamed)
    assert set(want) == set(got)
    base = _state(fp32_base)
    changed = [k for k in want if not want[k].equal(base[k])]
    assert len(changed) == 4 * 7  # every linear layer of every block moved
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].equal(want[key]), key
    assert len(list(streamed.glob("model-*-of-*.safetensors"))) > 1
    assert (streamed / "model.safetensors.index.json").is_file()
    assert max(p.stat().st_size for p in streamed.glob("*.safetensors")) <= SHARD + 4096


def test_a_bf16_checkpoint_stays_bf16_and_loads(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from ftx.adapters import merge_adapter, merge_adapter_in_memory
    from ftx.models import load_tokenizer

    base = _base(tmp_path, "bfloat16")
    adapter = _adapter(base, tmp_path / "adapter")
    tok = load_tokenizer(base)
    streamed = merge_adapter(adapter, base, tok, tmp_path / "streamed")
    reference = merge_adapter_in_memory(
        adapter, base, tok, tmp_path / "in-memory", save_dtype="bfloat16"
    )
    got, want = _state(streamed), _state(reference)
    assert {t.dtype for t in got.values()} == {torch.bfloat16}
    assert all(got[k].equal(want[k]) for k in want)
    assert json.loads((streamed / "config.json").read_text()).get("dtype") in ("bfloat16", None)
    model = AutoModelForCausalLM.from_pretrained(str(streamed))
    assert model.dtype == torch.bfloat16


def test_adapters_it_cannot_stream_fall_back_to_peft(fp32_base, tmp_path):
    from ftx.adapters import merge_adapter, merge_adapter_in_memory
    from ftx.merging import streamable_lora
    from ftx.models import load_tokenizer

    adapter = _adapter(fp32_base, tmp_path / "dora", use_dora=True)
    assert streamable_lora(adapter) == "use_dora"
    tok = load_tokenizer(fp32_base)
    merged = _state(merge_adapter(adapter, fp32_base, tok, tmp_path / "a"))
    reference = _state(merge_adapter_in_memory(adapter, fp32_base, tok, tmp_path / "b"))
    assert all(merged[k].equal(reference[k]) for k in reference)


_MEASURE = """
import sys
from pathlib import Path

import torch, peft, transformers, safetensors.torch  # imported before the baseline
from ftx.adapters import merge_adapter_in_memory
from ftx.merging import streaming_merge
from ftx.models import load_tokenizer
from ftx.testing.anon_memory import PeakAnon

mode, base, adapter, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
tok = load_tokenizer(base)
with PeakAnon() as peak:
    if mode == "streaming":
        streaming_merge(base, tok, target, adapter_dir=adapter, max_shard_bytes=int(sys.argv[5]))
    else:
        merge_adapter_in_memory(adapter, base, tok, target)
print(peak.bytes)
"""


def peak_anon_merge(mode: str, base: Path, adapter: Path, target: Path, shard: int) -> int:
    """Peak RssAnon (bytes above the post-import baseline) of one merge, in a fresh process.

    glibc serves allocations below its dynamic mmap threshold (up to 32 MiB) from a heap it
    rarely gives back; a tiny model's tensors (4 MiB) fall under it, a 7B model's (tens to
    hundreds of MiB) do not. A fixed 1 MiB threshold gives the tiny model the big one's
    behaviour, for both merges alike."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_MEASURE),
            mode,
            *map(str, (base, adapter, target, shard)),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_peak_anonymous_memory_is_about_one_shard(tmp_path):
    """RssAnon, not RSS: safetensors' mmapped pages count in RSS but are not the merge's."""
    from ftx.testing.tiny import make_tiny_model

    base = make_tiny_model(tmp_path / "big", hidden_size=512, intermediate_size=2048, num_layers=8)
    from transformers import AutoModelForCausalLM

    shard = 24_000_000
    model = AutoModelForCausalLM.from_pretrained(str(base))
    model.save_pretrained(tmp_path / "sharded", max_shard_size=shard)
    base = tmp_path / "sharded"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (base / name).write_bytes((tmp_path / "big" / name).read_bytes())
    adapter = _adapter(base, tmp_path / "adapter")
    adapter_bytes = (adapter / "adapter_model.safetensors").stat().st_size
    weights = sum(p.stat().st_size for p in base.glob("*.safetensors"))
    bound = shard + adapter_bytes
    streaming = peak_anon_merge("streaming", base, adapter, tmp_path / "s", shard)
    in_memory = peak_anon_merge("in_memory", base, adapter, tmp_path / "m", shard)
    assert weights > 4 * shard
    print(f"peak RssAnon: streaming {streaming}, in memory {in_memory}, bound {bound}")
    assert streaming < bound, (streaming, bound, in_memory)
    assert in_memory > bound  # the measurement can tell the two apart
