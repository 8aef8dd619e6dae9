"""Keep freed memory in the process while training on the CPU.

glibc's ``malloc`` serves blocks above a (moving) threshold with ``mmap`` and gives them back to
the kernel with ``munmap`` when they are freed, and trims the top of its heap when much of it is
free. A training step allocates and frees the same large tensors every step (autocast's bf16
copies of the weights, their gradients, the embedding gradient, the logits), so the memory is
handed back and asked for again each step, and every page of it is faulted in and zeroed by the
kernel anew. Profiled on SmolLM2's full fine-tuning (``bench/profile_plugins.py``): ``fill_``
of a fresh 49152x576 embedding gradient took 153 ms instead of 18 ms, a copy into a fresh bf16
weight 2.0 ms instead of 0.16 ms; end to end see ``bench/allocator.py``.

:func:`keep_freed_memory` tells glibc (``mallopt``) to serve every block from its heap and never
trim it, so freed tensors are reused without page faults. The process keeps its peak memory
until it exits. On rows of similar length the peak RSS is unchanged (the same tensors are live
at the peak); on rows of very different lengths the heap fragments and the peak grows (FFT of
SmolLM2 on 20-400-token packed rows: 6.9 GiB instead of 6.4 GiB, +8%, for 13% less time).
It changes nothing where the user chose an allocator (``LD_PRELOAD`` of jemalloc, tcmalloc or
mimalloc; any ``MALLOC_*`` variable or ``glibc.malloc`` tunable), asked for the system default
(``FTX_MALLOC=system``), or where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Callable, Mapping
from typing import Any

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# mallopt takes an int: the largest trim threshold it accepts, 2 GiB ("never" in practice).
NEVER_TRIM = 2**31 - 1

ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

DECISION: str = "not decided"
"""What :func:`keep_freed_memory` did, for the run summary."""


def user_choice(env: Mapping[str, str]) -> str | None:
    """The allocator setting the user made, in words, or None if they made none
    (``FTX_MALLOC=system`` asks ftx to leave glibc's default)."""
    if env.get("FTX_MALLOC") == "system":
        return "system default (FTX_MALLOC=system)"
    preload = env.get("LD_PRELOAD", "")
    for name in ALLOCATORS:
        if name in preload:
            return f"{name} (LD_PRELOAD)"
    tuned = sorted(k for k in env if k.startswith("MALLOC_"))
    if tuned:
        return f"glibc malloc as set by the user ({', '.join(tuned)})"
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return "glibc malloc as set by the user (GLIBC_TUNABLES)"
    return None


def _glibc() -> Any:
    return ctypes.CDLL("libc.so.6")


def keep_freed_memory(
    env: Mapping[str, str] | None = None,
    libc_name: str | None = None,
    load_libc: Callable[[], Any] = _glibc,
) -> str:
    """Make glibc keep freed memory for reuse (no ``mmap`` blocks, no heap trimming) unless the
    user chose an allocator; return (and keep in :data:`DECISION`) what was done.

    ``env``, ``libc_name`` (default ``platform.libc_ver()``) and ``load_libc`` exist for tests.
    Never raises: where ``mallopt`` is missing or refuses, the system default stays.
    """
    global DECISION
    env = os.environ if env is None else env
    chosen = user_choice(env)
    if chosen is not None:
        DECISION = chosen
        return DECISION
    libc_name = platform.libc_ver()[0] if libc_name is None else libc_name
    if libc_name != "glibc":
        DECISION = f"system default ({libc_name or 'unknown C library'}, not glibc)"
        return DECISION
    try:
        libc = load_libc()
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
    except (OSError, AttributeError) as exc:
        DECISION = f"system default (mallopt unavailable: {exc})"
        return DECISION
    DECISION = (
        "glibc heap, freed memory kept for reuse (mmap off, no trim)"
        if ok
        else "system default (mallopt refused)"
    )
    return DECISION
