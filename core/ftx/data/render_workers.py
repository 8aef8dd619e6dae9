"""Render and mark chunks of conversations in worker processes, so tokenisation uses every core.

Rendering a conversation through a Jinja chat template is Python and holds the GIL: with many
cores, one rendering thread can become the slowest part of a large data set's tokenisation while
the Rust encoder's threads wait (on 2 cores it is not: BENCHMARKS.md §11). `marked_chunks` hands
whole chunks to forked worker processes, which inherit the marking function (the tokenizer and
template with it) and receive each chunk pickled, so that they never touch the caller's rows
(reading them would copy the pages they lie in: reference counts are written); each chunk's
`ftx.data.masking.TrainedSpans` come back pickled, while the calling process encodes and stores
the chunks that are done. Results come back in order, with at most `IN_FLIGHT_PER_WORKER`
chunks per worker outstanding, so memory stays a few chunks' worth.

A chunk a worker fails on (a row the template refuses, anything else) is marked again in the
calling process, which raises its own error naming the row; workers never report errors
themselves. So is a chunk whose worker died (killed, out of memory), once `CHUNK_TIMEOUT_S`
has passed: the pool's replacement worker has no marking function and hands every chunk back.
Where forking is not available (not Linux) or not worth it, chunks are marked in the calling
process, one after another.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

IN_FLIGHT_PER_WORKER = 2
CHUNK_TIMEOUT_S = 300.0  # a chunk not back by then (its worker died) is marked here instead
MIN_CHUNKS_PER_WORKER = 2  # fewer chunks than this per worker: forking costs more than it saves
MIN_CORES = 4  # below this, `auto` uses no workers (measured: they cost more than they save)

_MARK: Callable[[Any], Any] | None = None  # what the forked workers call (set before forking)


def worker_count(setting: int | str, chunks: int, cores: int) -> int:
    """How many worker processes `setting` asks for: an integer ≥ 1 as it is (1: none, the
    calling process marks every chunk); ``"auto"``: half the cores from `MIN_CORES` cores up
    (the other half encode: the Rust encoder's threads) when there are at least
    `MIN_CHUNKS_PER_WORKER` chunks for each, else 1. Never more than there are chunks.

    Why none below `MIN_CORES`: on 2 cores (AMD EPYC, Zen 3) the calling process already keeps
    both busy (it renders while its encoder thread encodes the previous chunk, and encoding is
    the larger part once rendering skips ``apply_chat_template``'s checks), so workers only add
    pickling: 200,000 rows took 55.0 s with two against 46.7 s without (BENCHMARKS.md §11). From
    4 cores on, rendering on one core becomes the longer part; that half is a hypothesis until
    `bench/tokenize_scale.py` (which runs both) measures it on such a machine."""
    if setting == "auto":
        wanted = cores // 2 if cores >= MIN_CORES else 1
        wanted = wanted if chunks >= MIN_CHUNKS_PER_WORKER * wanted else 1
    else:
        wanted = int(setting)
    return max(1, min(wanted, chunks))


def marked_chunks(chunks: list[Any], mark: Callable[[Any], Any], workers: int) -> Iterator[Any]:
    """``mark(chunk)`` for each of ``chunks``, in order: in ``workers`` forked processes when
    ``workers > 1`` and forking is available, else here. Stopping the iteration early (or an
    error raised from a chunk marked here) ends the workers."""
    context = _fork_context() if workers > 1 else None
    if context is None:
        yield from map(mark, chunks)
        return
    global _MARK
    _MARK = mark
    gc.freeze()  # the workers' garbage collector then never walks (and so copies) our heap
    try:
        with _quiet_tokenizers_fork():
            pool = context.Pool(workers)  # forks the workers now: they have their copy
    finally:
        _MARK = None
        gc.unfreeze()
    with pool:  # terminated on the way out, also when the caller stops early
        pending: deque = deque()
        upcoming = iter(range(len(chunks)))
        for index in upcoming:
            pending.append((index, pool.apply_async(_mark_in_worker, (chunks[index],))))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                break
        while pending:
            index, result = pending.popleft()
            for more in upcoming:
                pending.append((more, pool.apply_async(_mark_in_worker, (chunks[more],))))
                break
            try:
                done = result.get(timeout=CHUNK_TIMEOUT_S)
            except multiprocessing.TimeoutError:
                done = None
            yield mark(chunks[index]) if done is None else done


def _mark_in_worker(chunk: Any) -> Any:
    """In a worker: the inherited marking function on ``chunk``, or None when it raises (the
    parent marks that chunk again and raises the error itself)."""
    try:
        assert _MARK is not None
        return _MARK(chunk)
    except Exception:
        return None


def _fork_context() -> Any:
    try:
        return multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None


@contextlib.contextmanager
def _quiet_tokenizers_fork() -> Iterator[None]:
    """Fork without the Rust tokenizers' warning that parallelism gets disabled in the child
    (it is printed when ``TOKENIZERS_PARALLELISM`` is unset and the parent has encoded in
    parallel): the workers render text and never encode, so it does not concern them."""
    key = "TOKENIZERS_PARALLELISM"
    before = os.environ.get(key)
    os.environ[key] = before if before is not None else "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
