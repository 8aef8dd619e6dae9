"""Tokenised datasets kept across runs, so a second run on the same rows skips tokenisation.

:func:`tokenized_dataset` is the one way a run turns rows into the trainer's dataset: it asks
the objective's ``tokenize`` for the examples and their stats, writes them as one Arrow file
(``$FTX_CACHE/tokens/KEY/tokens.arrow``, beside ``stats.json``) and returns that dataset
memory-mapped from disk. ftx's own tokeniser writes that file as it goes
(`ftx.data.columns.spill_to`), so the tokens are never all in memory; another objective's
examples are written once tokenised. A later call with the same key loads it in well under a
second, whatever the number of rows.

The key is a hash of everything the tokens depend on:

* the rows themselves (their pickled content, 1,024 rows at a time: file, split and format
  choices are in there);
* the tokenizer (its vocabulary and merges, chat template, special tokens, class);
* the ``data`` settings that reach tokenisation (``max_length``, ``template``, ``train_on``, an
  objective's own keys …; the keys listed in :data:`NOT_IN_KEY` only choose rows or score them);
* the objective's name and the source of the code that tokenises (the ``tokenize`` callable's
  module and ``ftx/data/``), so editing the masking code or an objective invalidates it.

Entries are written to a temporary folder and renamed into place (two runs storing the same key
at once both succeed), used entries are touched, and the least recently used are removed when
the cache grows past ``$FTX_TOKEN_CACHE_GB`` (default 4). ``data.token_cache: false`` turns it
off for a run: the dataset is then built in memory, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftx.data.columns import spill_to

FORMAT = 2  # bump when the stored layout changes
ARROW = "tokens.arrow"  # the dataset: one Arrow IPC stream file
NOT_IN_KEY = frozenset(
    {
        "path",
        "eval",
        "eval_ratio",
        "eval_metric",
        "eval_max_new_tokens",
        "eval_limit",
        "task_eval",
        "eval_forgetting",
        "packing",
        "token_cache",
        "num_proc",
    }
)
DEFAULT_LIMIT_GB = 4.0
HASHED_ROWS = 1024  # rows pickled into the key's hash at a time


def tokenized_dataset(
    rows: list[Any],
    tokenizer: Any,
    data: dict[str, Any],
    *,
    objective: str,
    tokenize: Callable[[list[Any]], Any],
    use_cache: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """The trainer's dataset for ``rows`` and the tokenisation stats (a dict as the objective's
    ``tokenize_rows`` returns it, plus ``token_cache``: ``hit``, ``stored`` or ``off``).

    ``tokenize(rows)`` returns an object with ``examples`` (list of dicts) and ``stats``, and
    optionally ``table``, the same examples as a ``pyarrow.Table`` (then used instead of
    ``examples``, which is never read); it is called only on a cache miss. Its exceptions
    (``BadInput`` for a row the template refuses) pass through and nothing is stored.
    """
    if not use_cache:
        tokenized = tokenize(rows)
        return as_dataset(tokenized), {**tokenized.stats, "token_cache": "off"}
    folder = cache_folder() / cache_key(rows, tokenizer, data, objective=objective, code=tokenize)
    found = _load(folder)
    if found is not None:
        return found[0], {**found[1], "token_cache": "hit"}
    staging = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    try:
        staging.mkdir(parents=True)
        with spill_to(staging / ARROW):
            tokenized = tokenize(rows)
    except OSError:  # a cache that cannot be written (read-only, disk full) costs the cache only
        shutil.rmtree(staging, ignore_errors=True)
        tokenized = tokenize(rows)
        return as_dataset(tokenized), {**tokenized.stats, "token_cache": "stored"}
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    dataset = _store(folder, staging, tokenized)
    return dataset, {**tokenized.stats, "token_cache": "stored"}


def as_dataset(tokenized: Any) -> Any:
    """A ``datasets.Dataset`` in memory of a ``tokenize_rows`` result: from its Arrow ``table``
    when it has one (no copy), else from its ``examples``."""
    from datasets import Dataset
    from datasets.fingerprint import generate_random_fingerprint

    table = getattr(tokenized, "table", None)
    if table is None:
        return Dataset.from_list(tokenized.examples)
    # A fingerprint given, not the hash of all the data datasets would compute (a pickled copy).
    return Dataset(table, fingerprint=generate_random_fingerprint())


def cache_folder() -> Path:
    from ftx.models import cache_root

    return cache_root() / "tokens"


def cache_key(
    rows: list[Any], tokenizer: Any, data: dict[str, Any], *, objective: str, code: Callable
) -> str:
    """The hex digest naming the cache entry of these rows under these settings (see module)."""
    digest = hashlib.blake2b(digest_size=20)
    settings = {k: v for k, v in sorted(data.items()) if k not in NOT_IN_KEY}
    header = {"format": FORMAT, "objective": objective, "data": settings}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    digest.update(tokenizer_fingerprint(tokenizer).encode())
    digest.update(_code_fingerprint(code).encode())
    for start in range(0, len(rows), HASHED_ROWS):  # a chunk at a time: no copy of all rows
        digest.update(pickle.dumps(rows[start : start + HASHED_ROWS], protocol=5))
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what decides the tokenizer's ids: vocabulary and merges (the fast tokenizer's
    serialised form, else the vocabulary), chat template, special tokens and class name."""
    digest = hashlib.blake2b(digest_size=20)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    extra = {
        "class": type(tokenizer).__name__,
        "chat_template": getattr(tokenizer, "chat_template", None),
        "special": getattr(tokenizer, "special_tokens_map", None),
        "bos": getattr(tokenizer, "add_bos_token", None),
        "eos": getattr(tokenizer, "add_eos_token", None),
    }
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _code_fingerprint(code: Callable) -> str:
    files = sorted(Path(__file__).parent.glob("*.py"))
    with contextlib.suppress(TypeError, OSError):
        source = inspect.getsourcefile(code)
        if source:
            files.append(Path(source))
    digest = hashlib.blake2b(digest_size=20)
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _load(folder: Path) -> tuple[Any, dict[str, Any]] | None:
    """The stored dataset and stats, or None when absent or unreadable (then it is rebuilt)."""
    stats_file = folder / "stats.json"
    if not stats_file.is_file():
        return None
    from datasets import Dataset  # only now: a miss tokenises before importing it

    try:
        stats = json.loads(stats_file.read_text())
        dataset = Dataset.from_file(str(folder / ARROW))
    except Exception:  # a damaged entry is rebuilt, never fatal
        shutil.rmtree(folder, ignore_errors=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(folder)
    return dataset, stats


def _store(folder: Path, staging: Path, tokenized: Any) -> Any:
    """Complete the entry in ``staging`` (the Arrow file, unless the tokeniser spilled its
    table there, and the stats) and rename it to ``folder``; return the dataset read back from
    there (memory-mapped). A cache that cannot be written (disk full) costs the cache only: the
    in-memory dataset is returned instead."""
    from datasets import Dataset

    arrow = staging / ARROW
    try:
        if getattr(tokenized, "spilled", None) != arrow:
            arrow.unlink(missing_ok=True)  # a spill that is not the result: mapped, not reused
            _write_arrow(as_dataset(tokenized).data.table, arrow)
        (staging / "stats.json").write_text(json.dumps(tokenized.stats, default=str))
        try:
            staging.rename(folder)
        except OSError:  # another run stored the same key first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
        stored = Dataset.from_file(str(folder / ARROW))
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return as_dataset(tokenized)
    _evict(folder.parent, keep=folder)
    return stored


def _write_arrow(table: Any, path: Path) -> None:
    import pyarrow as pa

    with pa.ipc.new_stream(str(path), table.schema) as writer:
        writer.write_table(table)


def _evict(root: Path, *, keep: Path) -> None:
    """Remove the least recently used entries while the cache is over its size limit."""
    try:
        limit = float(os.environ.get("FTX_TOKEN_CACHE_GB", DEFAULT_LIMIT_GB)) * 2**30
    except ValueError:
        limit = DEFAULT_LIMIT_GB * 2**30
    entries = []
    for entry in root.iterdir():
        if entry.is_dir() and ".tmp-" not in entry.name:
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            entries.append((entry.stat().st_mtime, size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= limit:
            break
        if entry != keep:
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
