"""The device a plan is for and the memory it has: ``--device``, ``--gpu-mem``, what is free.

Detecting this machine's device imports torch (only when ``--gpu-mem`` does not say it all).
"""

from __future__ import annotations

import os

from ftx.context import DeviceInfo
from ftx.errors import BadInput
from ftx.estimates import GiB

ALLOCATOR_RESERVE = 0.05
"""Share of the memory budget kept free for allocator fragmentation (the CUDA caching allocator,
glibc arenas) on top of :data:`RUNTIME_RESERVE`."""
RUNTIME_RESERVE = GiB // 2
"""Memory a training process needs besides the estimate (CUDA context / imported libraries)."""


def memory_budget(device: DeviceInfo, gpu_mem: int | None) -> tuple[int | None, str]:
    """``(bytes, what)``: ``gpu_mem`` if given, else the detected GPU's memory, else the RAM
    available now (``MemAvailable``). ``bytes`` is ``None`` when it cannot be found out."""
    if gpu_mem is not None:
        return gpu_mem, "given --gpu-mem"
    if device.kind == "cuda":
        try:
            import torch

            return int(torch.cuda.get_device_properties(0).total_memory), "GPU memory"
        except Exception:
            return None, "GPU memory (unknown)"
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "RAM"
    except (ValueError, OSError, AttributeError):
        return None, "RAM (unknown)"


def usable_memory(budget: int) -> int:
    """What an estimate may use of ``budget``: minus :data:`RUNTIME_RESERVE` and
    :data:`ALLOCATOR_RESERVE`."""
    return max(0, int(budget * (1 - ALLOCATOR_RESERVE)) - RUNTIME_RESERVE)


def resolve_device(device: str, gpu_mem: int | None) -> DeviceInfo:
    """The device to plan for: ``auto`` = this machine, except that ``--gpu-mem`` means a
    bf16-capable CUDA GPU of that size; ``cuda`` = such a GPU; ``cpu`` = a CPU (bf16 autocast
    where this machine's CPU has it). Detecting this machine imports torch."""
    choice = device.lower()
    if choice not in {"auto", "cpu", "cuda", "gpu"}:
        raise BadInput(f"--device {device!r}: expected auto, cpu or cuda")
    if choice == "cpu" and gpu_mem is not None:
        raise BadInput("--gpu-mem plans for a GPU; drop --device cpu (or --gpu-mem)")
    if choice in {"cuda", "gpu"} or (choice == "auto" and gpu_mem is not None):
        from ftx.device import detect

        found = detect() if gpu_mem is None else None
        if found is not None and found.kind == "cuda":
            return found
        if gpu_mem is None:
            raise BadInput(
                f"--device {device}: this machine has no CUDA GPU",
                hint="pass --gpu-mem SIZE (e.g. 24GB) to plan for a GPU you do not have here",
            )
        return DeviceInfo(kind="cuda", bf16=True, count=1, name="CUDA GPU (bf16)")
    from ftx.device import cpu_device, detect

    return detect() if choice == "auto" else cpu_device()
