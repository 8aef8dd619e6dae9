"""Folding a LoRA adapter into its base one tensor at a time: a merge that needs about one
weight matrix of memory, not the whole model.

:func:`merged_tensors` reads the base lazily (:mod:`ftx.tensor_stream`), adds each targeted
weight's ``scale * B @ A`` in fp32 (exactly PEFT's ``merge_and_unload`` arithmetic) and yields
the result in the checkpoint's own dtype, or in ``dtype`` when one is given; the safetensors
writer (:func:`streaming_merge`) and the GGUF writer (:mod:`ftx.gguf_export`) both consume it.
Without an adapter it is a lazy (optionally casting) copy of the base.

Adapters it cannot stream — DoRA, ``fan_in_fan_out``, per-module rank/alpha patterns, trained
``modules_to_save``, embedding targets, IA3 and other PEFT types — are reported by
:func:`streamable_lora` as the reason, and :func:`ftx.adapters.merge_adapter`'s in-memory merge
takes over. Importing this module imports no torch.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ftx.tensor_stream import (
    MAX_SHARD_BYTES,
    TORCH_NAMES,
    TensorSpec,
    read_tensors,
    tensor_specs,
    write_sharded,
)

_PREFIX = "base_model.model."
_SUFFIXES = (".lora_A.weight", ".lora_B.weight")


@dataclass
class LoraAdapter:
    """A LoRA adapter read whole (it is small): per base weight name, ``(A, B)`` and the scale."""

    pairs: dict[str, tuple[Any, Any]]
    scale: float
    nbytes: int

    def delta(self, name: str) -> Any:
        """``scale * B @ A`` for the base weight ``name`` (fp32), or None if not targeted."""
        if name not in self.pairs:
            return None
        a, b = self.pairs[name]
        return (b.float() @ a.float()) * self.scale


def streamable_lora(adapter_dir: Path, base_dir: Path | None = None) -> str | None:
    """None when :func:`merged_tensors` can merge ``adapter_dir`` (into ``base_dir``, when
    given: its layer types are checked too), else the reason it cannot."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA":
        return f"peft_type {config.get('peft_type')}"
    for flag in ("use_dora", "fan_in_fan_out", "lora_bias"):
        if config.get(flag):
            return flag
    for pattern in ("rank_pattern", "alpha_pattern"):
        if config.get(pattern):
            return pattern
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return "no adapter_model.safetensors"
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as fh:
        keys = list(fh.keys())
    odd = [k for k in keys if not (k.startswith(_PREFIX) and k.endswith(_SUFFIXES))]
    if odd:
        return f"adapter tensor {odd[0]}"
    targets = {k[len(_PREFIX) :].rsplit(".lora_", 1)[0] for k in keys}
    transposed = transposed_modules(base_dir, targets) if base_dir is not None else set()
    return f"transposed (Conv1D) layer {sorted(transposed)[0]}" if transposed else None


def transposed_modules(base_dir: Path, names: set[str]) -> set[str]:
    """Those of the modules ``names`` of the model at ``base_dir`` that store their weight as
    (in, out), GPT-2's ``Conv1D``: PEFT merges them transposed whatever ``fan_in_fan_out`` the
    adapter's config says. Built on the meta device: no weights are read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    config = AutoConfig.from_pretrained(str(base_dir), local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {
        name
        for name, module in model.named_modules()
        if name in names and isinstance(module, Conv1D)
    }


def load_lora(adapter_dir: Path) -> LoraAdapter:
    """Read a LoRA adapter that :func:`streamable_lora` accepts."""
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, tuple[Any, Any]] = {}
    for key in tensors:
        if key.endswith(".lora_A.weight"):
            module = key[len(_PREFIX) : -len(".lora_A.weight")]
            b_key = key.replace(".lora_A.weight", ".lora_B.weight")
            pairs[module + ".weight"] = (tensors[key], tensors[b_key])
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    return LoraAdapter(pairs=pairs, scale=scale, nbytes=nbytes)


def merged_specs(base_dir: Path, dtype: str | None = None) -> list[TensorSpec]:
    """The specs of :func:`merged_tensors`' output: the base's, floats cast to ``dtype``."""
    specs = tensor_specs(base_dir)
    if dtype is None:
        return specs
    target = TORCH_NAMES[dtype]
    return [replace(s, dtype=target) if s.dtype in ("F32", "F16", "BF16") else s for s in specs]


def merged_tensors(
    base_dir: Path, adapter: LoraAdapter | None = None, dtype: str | None = None
) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, tensor)`` for every base tensor with the adapter's delta added; floats in
    ``dtype`` (an ftx dtype name) or their own dtype. One base tensor in memory at a time."""
    import torch

    from ftx.loading import torch_dtype

    missing = set(adapter.pairs) - {s.name for s in tensor_specs(base_dir)} if adapter else set()
    if missing:
        raise ValueError(f"the adapter targets weights the base lacks: {sorted(missing)[:3]}")
    cast = torch_dtype(dtype) if dtype else None
    for name, tensor in read_tensors(tensor_specs(base_dir)):
        own = tensor.dtype
        delta = adapter.delta(name) if adapter else None
        if delta is not None:
            # Not in place: the base tensor is a private mapping of the file, and writing to
            # it would turn every page it touches into anonymous memory for good.
            with torch.no_grad():
                tensor = (tensor.to(torch.float32) + delta).to(own)
            del delta
        if cast is not None and tensor.is_floating_point():
            tensor = tensor.to(cast)
        yield name, tensor


def streaming_merge(
    base_dir: Path,
    tokenizer: Any,
    target: Path,
    *,
    adapter_dir: Path | None = None,
    dtype: str | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> Path:
    """Write ``base_dir`` (with ``adapter_dir``'s LoRA folded in, when given; floats cast to
    ``dtype`` when given) to ``target`` atomically: safetensors shards of at most
    ``max_shard_bytes``, the base's ``config.json`` and ``generation_config.json``, and
    ``tokenizer``. Needs about one weight matrix of memory beyond the adapter.

    The caller checks :func:`streamable_lora` first. A merge into an fp16/bf16 base is computed
    in fp32 and rounded once, to the base's dtype unless ``dtype`` says otherwise."""
    from ftx.artifacts import atomic_dir

    adapter = load_lora(adapter_dir) if adapter_dir is not None else None
    specs = merged_specs(base_dir, dtype)
    with atomic_dir(target) as tmp:
        write_sharded(
            specs, merged_tensors(base_dir, adapter, dtype), tmp, max_shard_bytes=max_shard_bytes
        )
        _write_config(base_dir, tmp, dtype)
        tokenizer.save_pretrained(tmp)
    return Path(target)


def _write_config(base_dir: Path, target: Path, dtype: str | None) -> None:
    config = json.loads((base_dir / "config.json").read_text())
    if dtype is not None:
        config.pop("torch_dtype", None)
        config["dtype"] = dtype
    config["use_cache"] = True
    (target / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    generation = base_dir / "generation_config.json"
    if generation.is_file():
        shutil.copy2(generation, target / generation.name)
