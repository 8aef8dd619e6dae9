"""Model weights one tensor at a time: read lazily from safetensors, write safetensors shards
incrementally.

:func:`tensor_specs` reads every tensor's name, dtype and shape from the files' headers (no
data); :func:`read_tensors` yields ``(name, tensor)`` pairs, loading one tensor at a time with
safetensors' ``safe_open``; :func:`write_sharded` writes such a stream into ``model.safetensors``
or ``model-0000i-of-0000n.safetensors`` shards of at most ``max_shard_bytes`` plus the index
``from_pretrained`` reads, holding one tensor in memory at a time (the headers are computed
from the specs before any data is written). Importing this module imports no torch.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SHARD_BYTES = 2_000_000_000
"""Largest ``model/`` shard ftx writes (a tensor larger than this gets a shard of its own)."""

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1}
DTYPE_BYTES |= {"U8": 1, "BOOL": 1}

TORCH_NAMES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
"""ftx's dtype names (:data:`ftx.loading.DTYPE_NAMES`, plus float64) as safetensors writes them."""


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's name, safetensors dtype (``F32``, ``BF16``, …), shape and source file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path

    @property
    def nbytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * DTYPE_BYTES[self.dtype]


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a model directory (sharded via its index, or single)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [model_dir / name for name in names]
    return sorted(model_dir.glob("*.safetensors"))


def tensor_specs(model_dir: Path) -> list[TensorSpec]:
    """Every tensor of ``model_dir`` in file order, read from the safetensors headers only."""
    specs: list[TensorSpec] = []
    for file in weight_files(model_dir):
        with file.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        header.pop("__metadata__", None)
        entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
        for name, info in entries:
            specs.append(TensorSpec(name, info["dtype"], tuple(info["shape"]), file))
    return specs


def read_tensors(specs: Iterable[TensorSpec]) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, torch tensor)`` for each spec, one tensor in memory at a time."""
    from safetensors import safe_open

    handles: dict[Path, Any] = {}
    try:
        for spec in specs:
            if spec.file not in handles:
                handles[spec.file] = safe_open(str(spec.file), framework="pt")
            yield spec.name, handles[spec.file].get_tensor(spec.name)
    finally:
        handles.clear()


def shard_plan(specs: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    """Split ``specs`` (in order) into shards of at most ``max_shard_bytes`` each."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


def write_sharded(
    specs: list[TensorSpec],
    tensors: Iterable[tuple[str, Any]],
    target: Path,
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> list[Path]:
    """Write ``tensors`` (in the order and with the dtypes/shapes of ``specs``) into ``target``
    as safetensors shards; return the files written. ``target`` must exist (an
    :func:`ftx.artifacts.atomic_dir`). A tensor that does not match its spec raises ValueError."""
    shards = shard_plan(specs, max_shard_bytes)
    if len(shards) == 1:
        names = ["model.safetensors"]
    else:
        count = len(shards)
        names = [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    stream = iter(tensors)
    files = []
    for name, shard in zip(names, shards, strict=True):
        files.append(_write_file(target / name, shard, stream))
    if len(shards) > 1:
        pairs = zip(names, shards, strict=True)
        weight_map = {spec.name: name for name, shard in pairs for spec in shard}
        total = sum(spec.nbytes for spec in specs)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (target / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return files


def _write_file(path: Path, shard: list[TensorSpec], stream: Iterator[tuple[str, Any]]) -> Path:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for spec in shard:
        header[spec.name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for spec in shard:
            name, tensor = next(stream)
            _check(spec, name, tensor)
            fh.write(tensor.contiguous().reshape(-1).view(_uint8()).numpy().data)
    return path


def _uint8() -> Any:
    import torch

    return torch.uint8


def _check(spec: TensorSpec, name: str, tensor: Any) -> None:
    dtype = TORCH_NAMES.get(str(tensor.dtype).removeprefix("torch."), str(tensor.dtype))
    if name != spec.name or dtype != spec.dtype or tuple(tensor.shape) != spec.shape:
        raise ValueError(
            f"tensor stream out of step: expected {spec.name} {spec.dtype}{list(spec.shape)}, "
            f"got {name} {dtype}{list(tensor.shape)}"
        )
