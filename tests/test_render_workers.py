"""Chunks marked in forked worker processes (`ftx.data.render_workers`): in order, really in
other processes, a failing chunk re-marked here (so its own error is raised here), workers ended
when the caller stops early, and the worker count `auto` picks."""

from __future__ import annotations

import os

import pytest

from ftx.data.render_workers import marked_chunks, worker_count


def test_chunks_come_back_in_order_from_other_processes():
    import multiprocessing

    # Each worker's first chunk waits at a two-party barrier, so both workers must take a
    # chunk: on a busy machine one worker could otherwise mark all of them before the other
    # starts.
    barrier = multiprocessing.get_context("fork").Barrier(2)
    met: set[int] = set()

    def mark(chunk):
        if os.getpid() not in met:
            met.add(os.getpid())
            barrier.wait(timeout=60)
        return (os.getpid(), sum(chunk))

    chunks = [list(range(i, i + 3)) for i in range(0, 60, 3)]
    out = list(marked_chunks(chunks, mark, workers=2))
    assert [total for _, total in out] == [sum(chunk) for chunk in chunks]
    pids = {pid for pid, _ in out}
    assert os.getpid() not in pids and len(pids) == 2


def test_one_worker_marks_here():
    out = list(marked_chunks([[1], [2]], lambda chunk: (os.getpid(), chunk), workers=1))
    assert out == [(os.getpid(), [1]), (os.getpid(), [2])]


def test_a_chunk_a_worker_fails_on_is_marked_again_here():
    parent = os.getpid()

    def mark(chunk):
        if chunk == [7] and os.getpid() != parent:
            raise RuntimeError("only in a worker")
        if chunk == [9]:
            raise ValueError(f"row {chunk[0]} refused")
        return (os.getpid(), chunk[0])

    out = marked_chunks([[i] for i in range(12)], mark, workers=2)
    got = [next(out) for _ in range(9)]
    assert got[7] == (parent, 7)  # the worker's failure cost nothing but a second try here
    assert [n for _, n in got] == list(range(9))
    with pytest.raises(ValueError, match="row 9 refused"):  # the parent's own error
        next(out)


def test_a_chunk_whose_worker_died_is_marked_here(monkeypatch):
    monkeypatch.setattr("ftx.data.render_workers.CHUNK_TIMEOUT_S", 3.0)
    parent = os.getpid()

    def mark(chunk):
        if chunk == [2] and os.getpid() != parent:
            os._exit(1)  # killed mid-chunk: its result never comes back
        return chunk[0]

    assert list(marked_chunks([[i] for i in range(8)], mark, workers=2)) == list(range(8))


def test_stopping_early_ends_the_workers():
    import multiprocessing

    out = marked_chunks([[i] for i in range(40)], lambda chunk: chunk, workers=2)
    assert next(out) == [0]
    assert multiprocessing.active_children()
    out.close()
    assert not multiprocessing.active_children()


@pytest.mark.parametrize(
    ("setting", "chunks", "cores", "expected"),
    [
        ("auto", 1, 8, 1),  # one chunk: nothing to share
        ("auto", 200, 2, 1),  # two cores: the calling process keeps both busy (measured)
        ("auto", 200, 3, 1),
        ("auto", 200, 4, 2),  # half the cores render, half encode
        ("auto", 200, 16, 8),
        ("auto", 7, 8, 1),  # under two chunks a worker: forking costs more than it saves
        ("auto", 8, 8, 4),
        (3, 200, 2, 3),  # asked for: as asked
        (3, 2, 8, 2),  # never more workers than chunks
        (1, 200, 8, 1),
    ],
)
def test_worker_count(setting, chunks, cores, expected):
    assert worker_count(setting, chunks, cores) == expected
