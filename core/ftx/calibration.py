"""The CPU-dependent choices of a run, made from what this CPU measures.

Two choices reverse from one processor to the next, and no flag in ``/proc/cpuinfo`` says
which way: whether bf16 autocast pays (AVX512-BF16 on an AMD EPYC roughly doubled the step;
AMX-BF16 on an Intel Xeon runs a bf16 matmul about seven times as fast as fp32; a CPU without
either emulates bf16, a hundred times slower) and whether torch's short bf16 attention kernel
is slower than the fp32 one (1.6-2.3x on the AVX512-BF16 EPYC up to 192 tokens,
``bench/attention_kernels.py``). So they are measured, once per CPU model, torch version and
thread count, and cached (``$FTX_CACHE/calibration/KEY.json``):

* **matmul**: ``torch.mm`` at SmolLM2's MLP shape (512x576 by 576x1536) in fp32 and in bf16,
  each repeated for about 0.15 s after one warm-up call (a bf16 call that takes more than
  :data:`EMULATED` times the fp32 one is timed once: it is emulated). bf16 autocast is chosen
  when bf16 runs at least :data:`BF16_MIN_SPEEDUP` times fp32's rate: below that the casts
  autocast adds eat the gain;
* **short attention** (only when bf16 autocast is chosen): causal SDPA forward and backward
  at 64 and 192 tokens, in bf16 and on fp32 copies (casts included); ``ftx_sdpa`` runs a bf16
  call on fp32 copies up to the longest of these lengths where that was faster (0: never).

The whole measurement takes about a second (at most ~2 s; a cached one, nothing). The other
CPU choices are made from what the machine reliably reports and are recorded beside this one in
``summary.json``: the OpenMP wait policy from the load at start (:mod:`ftx.openmp`), the
allocator from the C library (:mod:`ftx.allocator`); activation checkpointing stays off on every
CPU (recomputing the forward costs about a third of a step whatever the processor, and a CPU's
memory is rarely what limits a run; ``ftx plan`` says when it would be).

``FTX_CALIBRATION`` switches it: ``auto`` (default: cached, else measured), ``refresh``
(measure again and replace the cache), ``off`` (the rules instead: bf16 autocast where the
CPU reports AVX512-BF16 or AMX, :data:`ftx.attention.FP32_MAX_LENGTH` for attention). The
chosen values and where they came from go into ``summary.json`` (``calibration``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftx.errors import BadInput

VERSION = 1
"""Bumped when what is measured changes: older cache entries are measured again."""
BF16_MIN_SPEEDUP = 1.25
EMULATED = 20.0
MATMUL_SHAPE = (512, 576, 1536)
ATTENTION_LENGTHS = (64, 192)
MODES = ("auto", "refresh", "off")
MATMUL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@dataclass(frozen=True)
class Calibration:
    """What this CPU measured (or the rules said, ``source="off"``) and what was chosen.

    ``source``: ``measured``, ``cached`` or ``off``; ``fp32_gflops``/``bf16_gflops``: the
    matmul rates (None when not measured); ``attention_ms``: per length, ``[bf16, fp32]``
    milliseconds of a forward and backward; ``bf16_autocast`` and
    ``attention_fp32_max_length``: the choices; ``seconds``: the measurement's own time."""

    cpu: str
    torch: str
    threads: int
    source: str
    bf16_autocast: bool
    attention_fp32_max_length: int
    fp32_gflops: float | None = None
    bf16_gflops: float | None = None
    attention_ms: dict[str, list[float]] | None = None
    seconds: float = 0.0

    @property
    def bf16_speedup(self) -> float | None:
        """bf16's matmul rate over fp32's, when both were measured."""
        if not self.fp32_gflops or not self.bf16_gflops:
            return None
        return round(self.bf16_gflops / self.fp32_gflops, 3)

    def as_summary(self) -> dict[str, Any]:
        """The fields ``summary.json`` records (``calibration``)."""
        return {**asdict(self), "bf16_speedup": self.bf16_speedup}


APPLIED: Calibration | None = None
"""The calibration this process runs with (set by :func:`for_this_cpu`)."""


def mode() -> str:
    """``FTX_CALIBRATION``, checked: BadInput (exit 2) naming the variable for anything else."""
    value = os.environ.get("FTX_CALIBRATION", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise BadInput(
            f"FTX_CALIBRATION={value}: not one of {', '.join(MODES)}",
            hint="unset it (auto: measure once per CPU and cache), or set off to use the rules",
        )
    return value


def cpu_identity(cpuinfo: str | None = None) -> dict[str, Any]:
    """The processor as ``/proc/cpuinfo`` names it: vendor, model name, family, model and the
    matmul-relevant flags (``AMD EPYC`` alone has named three different processors)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:  # the first processor's block is enough
                break
            continue
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "vendor": fields.get("vendor_id", "unknown"),
        "model_name": fields.get("model name", "unknown CPU"),
        "family": fields.get("cpu family"),
        "model": fields.get("model"),
        "flags": [f for f in MATMUL_FLAGS if f in flags],
    }


def cpu_label(identity: dict[str, Any]) -> str:
    """One line naming the processor, e.g. ``AMD EPYC (family 25 model 1; avx2)``."""
    flags = ", ".join(identity["flags"]) or "no AVX2"
    return (
        f"{identity['model_name']} (family {identity['family']} model {identity['model']}; {flags})"
    )


def rules(identity: dict[str, Any], torch_version: str, threads: int) -> Calibration:
    """The choices without measuring (``FTX_CALIBRATION=off``): bf16 autocast where the CPU
    reports AVX512-BF16 or AMX-BF16 and torch's oneDNN has bf16 kernels."""
    from ftx.attention import FP32_MAX_LENGTH
    from ftx.device import cpu_supports_bf16

    bf16 = cpu_supports_bf16()
    return Calibration(
        cpu=cpu_label(identity),
        torch=torch_version,
        threads=threads,
        source="off",
        bf16_autocast=bf16,
        attention_fp32_max_length=FP32_MAX_LENGTH if bf16 else 0,
    )


def for_this_cpu() -> Calibration:
    """The calibration of this CPU under ``FTX_CALIBRATION``: the cached one, else measured
    now and cached (a cache that cannot be written is only skipped). Kept in :data:`APPLIED`.
    Imports torch."""
    global APPLIED
    import torch

    chosen = mode()
    identity = cpu_identity()
    threads = torch.get_num_threads()
    if chosen == "off":
        APPLIED = rules(identity, torch.__version__, threads)
        return APPLIED
    path = cache_path(identity, torch.__version__, threads)
    cached = _read(path) if chosen == "auto" else None
    if cached is not None:
        APPLIED = cached
        return APPLIED
    APPLIED = measure(cpu_label(identity), torch.__version__, threads)
    _write(path, APPLIED)
    return APPLIED


def cache_path(identity: dict[str, Any], torch_version: str, threads: int) -> Path:
    """``$FTX_CACHE/calibration/KEY.json``, KEY a digest of the CPU, torch and threads."""
    from ftx.models import cache_root

    key = json.dumps([VERSION, identity, torch_version, threads], sort_keys=True)
    return cache_root() / "calibration" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def measure(cpu: str, torch_version: str, threads: int) -> Calibration:
    """Time the matmuls (and, when bf16 is chosen, the short attention) now; see the module."""
    import torch

    started = time.perf_counter()
    m, k, n = MATMUL_SHAPE
    flops = 2 * m * k * n
    fp32_s = _matmul_seconds(torch.float32, m, k, n)
    bf16_s = _matmul_seconds(torch.bfloat16, m, k, n, give_up_after=EMULATED * fp32_s)
    fp32_gflops, bf16_gflops = flops / fp32_s / 1e9, flops / bf16_s / 1e9
    bf16 = bf16_gflops >= BF16_MIN_SPEEDUP * fp32_gflops
    attention_ms: dict[str, list[float]] = {}
    fp32_max = 0
    if bf16:
        for length in ATTENTION_LENGTHS:
            bf16_ms, fp32_ms = (1e3 * _attention_seconds(length, copies) for copies in (0, 1))
            attention_ms[str(length)] = [round(bf16_ms, 3), round(fp32_ms, 3)]
            if fp32_ms < bf16_ms:
                fp32_max = length
    return Calibration(
        cpu=cpu,
        torch=torch_version,
        threads=threads,
        source="measured",
        bf16_autocast=bf16,
        attention_fp32_max_length=fp32_max,
        fp32_gflops=round(fp32_gflops, 2),
        bf16_gflops=round(bf16_gflops, 2),
        attention_ms=attention_ms or None,
        seconds=round(time.perf_counter() - started, 3),
    )


def _timed(call: Any, *, budget_s: float = 0.15, give_up_after: float | None = None) -> float:
    """Seconds per call of ``call()``: one warm-up call, then repeats for about ``budget_s``
    (at least two); just the warm-up's time when it took longer than ``give_up_after``."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    if give_up_after is not None and first > give_up_after:
        return first
    times: list[float] = []
    while len(times) < 2 or (sum(times) < budget_s and len(times) < 200):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def _matmul_seconds(
    dtype: Any, m: int, k: int, n: int, give_up_after: float | None = None
) -> float:
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(dtype)
    b = torch.randn(k, n, generator=generator).to(dtype)
    return _timed(lambda: torch.mm(a, b), give_up_after=give_up_after)


def _attention_seconds(length: int, fp32_copies: int) -> float:
    """A causal SDPA forward and backward of bf16 ``[8, 9, length, 64]`` tensors (SmolLM2's
    heads), computed in bf16 or (``fp32_copies``) on fp32 copies cast back, as ftx_sdpa does."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    shape = (8, 9, length, 64)
    q, k, v = (
        torch.randn(shape, generator=generator).to(torch.bfloat16).requires_grad_()
        for _ in range(3)
    )

    def step() -> None:
        inputs = [t.float() for t in (q, k, v)] if fp32_copies else [q, k, v]
        out = F.scaled_dot_product_attention(*inputs, is_causal=True).to(torch.bfloat16)
        out.sum().backward()

    return _timed(step, budget_s=0.1)


def _read(path: Path) -> Calibration | None:
    try:
        data = json.loads(path.read_text())
        data.pop("bf16_speedup", None)
        return Calibration(**{**data, "source": "cached", "seconds": 0.0})
    except (OSError, ValueError, TypeError):
        return None


def _write(path: Path, calibration: Calibration) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps(calibration.as_summary(), indent=2) + "\n")
        staging.replace(path)
    except OSError:
        pass
