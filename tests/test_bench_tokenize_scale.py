"""bench/tokenize_scale.py's memory probe: the peak of a process's and its children's summed
proportional set size sees memory a forked child allocates (ru_maxrss would count only the
largest process), and counts pages the child shares with its parent once, not twice."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.bench_scripts import BENCH, load_bench_script

MIB = 2**20


@pytest.fixture
def tokenize_bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/common.py
    return load_bench_script("tokenize_scale")


def _hold(size: int, seconds: float) -> None:
    block = bytearray(size)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    time.sleep(seconds)


def test_a_forked_childs_memory_is_counted(tokenize_bench):
    fork = multiprocessing.get_context("fork")
    with tokenize_bench.TreeMemory() as idle:
        time.sleep(0.2)
    with tokenize_bench.TreeMemory() as busy:
        child = fork.Process(target=_hold, args=(200 * MIB, 1.0))
        child.start()
        child.join()
    assert child.exitcode == 0
    assert busy.peak - idle.peak > 150 * MIB


def test_shared_pages_are_not_counted_twice(tokenize_bench):
    block = bytearray(300 * MIB)
    block[::4096] = b"x" * len(block[::4096])
    fork = multiprocessing.get_context("fork")
    with tokenize_bench.TreeMemory() as alone:
        time.sleep(0.2)
    with tokenize_bench.TreeMemory() as shared:
        child = fork.Process(target=time.sleep, args=(1.0,))  # shares the 300 MiB, writes none
        child.start()
        child.join()
    assert shared.peak - alone.peak < 100 * MIB
    del block
