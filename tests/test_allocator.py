"""ftx.allocator: glibc keeps freed memory for reuse on CPU runs, unless the user chose."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from ftx import allocator


class FakeLibc:
    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.answer


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "jemalloc (LD_PRELOAD)"),
        ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "tcmalloc (LD_PRELOAD)"),
        ({"MALLOC_ARENA_MAX": "2"}, "as set by the user (MALLOC_ARENA_MAX)"),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "(GLIBC_TUNABLES)"),
        ({"FTX_MALLOC": "system"}, "system default (FTX_MALLOC=system)"),
    ],
)
def test_a_users_choice_is_left_alone(env, says):
    libc = FakeLibc()
    decision = allocator.keep_freed_memory(env, libc_name="glibc", load_libc=lambda: libc)
    assert says in decision and decision == allocator.DECISION
    assert libc.calls == []


def test_glibc_is_told_to_keep_freed_memory():
    libc = FakeLibc()
    decision = allocator.keep_freed_memory({}, libc_name="glibc", load_libc=lambda: libc)
    assert decision.startswith("glibc heap")
    assert libc.calls == [
        (allocator.M_MMAP_MAX, 0),
        (allocator.M_TRIM_THRESHOLD, allocator.NEVER_TRIM),
    ]


def test_other_c_libraries_and_refusals_keep_the_default():
    libc = FakeLibc()
    assert "not glibc" in allocator.keep_freed_memory({}, libc_name="", load_libc=lambda: libc)
    assert libc.calls == []
    refused = allocator.keep_freed_memory({}, libc_name="glibc", load_libc=lambda: FakeLibc(0))
    assert refused == "system default (mallopt refused)"

    def missing():
        raise OSError("libc.so.6: cannot open shared object file")

    assert "mallopt unavailable" in allocator.keep_freed_memory(
        {}, libc_name="glibc", load_libc=missing
    )


# A child process allocates 256 MiB with malloc, touches it, frees it and prints how much its
# resident memory fell: glibc's default gives a block that large back to the kernel at once.
RSS_AFTER_FREE = textwrap.dedent(
    """
    import ctypes, sys
    from ftx import allocator
    if sys.argv[1] == "keep":
        print(allocator.keep_freed_memory({}), file=sys.stderr)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    size = 256 * 2**20
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    held = rss()
    libc.free(block)
    print((held - rss()) / size)
    """
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_memory_stays_with_the_process_for_reuse():
    fell = {}
    for mode in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, "-c", RSS_AFTER_FREE, mode],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        fell[mode] = float(out.stdout)
    assert fell["default"] > 0.9  # munmap: the pages went back to the kernel
    assert fell["keep"] < 0.1  # kept in the heap, ready for the next step's tensors
