"""Marked texts (`ftx.data.masking.TrainedSpans`) -> token ids and labels as flat numpy arrays.

`encode_flat` is the one encoder behind `ftx.data.masking.encode` (lists per text) and
`ftx.data.tokens.tokenize_dataset` (columns): it returns the ids and labels of every text laid
end to end, and each text's length, so that a caller can truncate, drop and store whole chunks
without a Python list per token. The labelling contract is `ftx.data.masking`'s: a token is
trained (label = its id) when its characters overlap a trained span, else its label is
``IGNORE_INDEX``; the ids put before a text (``prefix_ids``, a bos) are never trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

    from ftx.data.masking import TrainedSpans

IGNORE_INDEX = -100
CHUNK_TEXTS = 1024  # texts per call to the Rust backend


class FlatTokens(NamedTuple):
    """Token ids and labels of several texts laid end to end (int64), and each text's length:
    text ``i`` is ``ids[sum(lengths[:i]) : sum(lengths[:i + 1])]``."""

    ids: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray


def encode_flat(marked: list[TrainedSpans], tokenizer: Any) -> FlatTokens:
    """Tokenise ``marked`` texts, prefix ids included, and label them (see the module).

    A fast tokenizer encodes up to `CHUNK_TEXTS` texts in one call, straight
    through its Rust backend when transformers would add nothing to that call (no truncation,
    padding or split special tokens set on it), and the labels of the whole call come from one
    vectorised overlap test of token offsets against the trained spans. A tokenizer without
    offsets (a slow one) tokenises the trained and untrained pieces of each text separately.
    """
    import numpy as np

    if not marked:
        empty = np.zeros(0, dtype=np.int64)
        return FlatTokens(empty, empty.copy(), empty.copy())
    if not getattr(tokenizer, "is_fast", False):
        return _flatten([_encode_pieces(p, tokenizer) for p in marked])
    parts = [
        _encode_fast(marked[start : start + CHUNK_TEXTS], tokenizer)
        for start in range(0, len(marked), CHUNK_TEXTS)
    ]
    if len(parts) == 1:
        return parts[0]
    return FlatTokens(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def encode_chunks(
    chunks: Iterable[list[TrainedSpans]], tokenizer: Any, *, overlap: bool = True
) -> Iterator[FlatTokens]:
    """`encode_flat` of each chunk of ``chunks``, in order.

    With ``overlap``, a fast tokenizer and two cores or more, each chunk is encoded in one
    worker thread while the caller's iterator produces the next chunk: the Rust encoder
    releases the GIL, so rendering the next chunk's texts (Jinja, in this thread) and encoding
    this one run on two cores. One chunk is in flight at a time, so at most two chunks' texts
    are held; the thread ends with the iteration (or when the caller stops early, or
    ``chunks`` raises). Pass ``overlap=False`` when there is one chunk: nothing to overlap.
    """
    if not (overlap and getattr(tokenizer, "is_fast", False) and cores() >= 2):
        yield from (encode_flat(chunk, tokenizer) for chunk in chunks)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="ftx-encode") as pool:
        pending = None
        for chunk in chunks:
            future = pool.submit(encode_flat, chunk, tokenizer)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def cores() -> int:
    """The CPU cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split_rows(flat: FlatTokens) -> list[tuple[list[int], list[int]]]:
    """``[(input_ids, labels), ...]`` per text, as Python lists."""
    import numpy as np

    cuts = np.cumsum(flat.lengths)[:-1]
    return [
        (ids.tolist(), labels.tolist())
        for ids, labels in zip(np.split(flat.ids, cuts), np.split(flat.labels, cuts), strict=True)
    ]


def _encode_fast(chunk: list[TrainedSpans], tokenizer: Any) -> FlatTokens:
    import numpy as np

    texts = [p.text for p in chunk]
    backend = _plain_backend(tokenizer)
    if backend is not None:
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        id_lists = [e.ids for e in encodings]
        offset_lists = [e.offsets for e in encodings]
    else:
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        id_lists, offset_lists = enc["input_ids"], enc["offset_mapping"]
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    total = int(lengths.sum())
    ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=total)
    pairs = chain.from_iterable(chain.from_iterable(offset_lists))
    offsets = np.fromiter(pairs, dtype=np.int64, count=2 * total).reshape(-1, 2)
    trained = _overlaps(offsets, lengths, chunk)
    labels = np.where(trained, ids, IGNORE_INDEX)
    return _with_prefixes(FlatTokens(ids, labels, lengths), chunk)


def _plain_backend(tokenizer: Any) -> Any:
    """The fast tokenizer's Rust backend when calling it directly gives what ``tokenizer(texts,
    add_special_tokens=False)`` gives, else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return None
    if backend.encode_special_tokens != bool(getattr(tokenizer, "split_special_tokens", False)):
        return None
    return backend


def _overlaps(offsets: np.ndarray, lengths: np.ndarray, chunk: list[TrainedSpans]) -> np.ndarray:
    """Whether each token's characters overlap a trained span of its text (a zero-width token
    counts as one character wide). All texts are laid end to end, one character apart, so that
    one sorted search labels every token."""
    import numpy as np

    bases = np.cumsum([0] + [len(p.text) + 1 for p in chunk[:-1]], dtype=np.int64)
    shift = np.repeat(bases, lengths)
    starts = offsets[:, 0] + shift
    ends = np.maximum(offsets[:, 1] + shift, starts + 1)
    span_bounds = [
        (b + s, b + e) for b, p in zip(bases.tolist(), chunk, strict=True) for s, e in p.spans
    ]
    spans = np.asarray(span_bounds, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(spans[:, 1], starts, side="right")  # first span ending after start
    inside = first < len(spans)
    trained = np.zeros(len(starts), dtype=bool)
    trained[inside] = spans[first[inside], 0] < ends[inside]
    return trained


def _with_prefixes(flat: FlatTokens, chunk: list[TrainedSpans]) -> FlatTokens:
    """``flat`` with each text's ``prefix_ids`` put before it, labelled ``IGNORE_INDEX``."""
    import numpy as np

    sizes = np.fromiter((len(p.prefix_ids) for p in chunk), dtype=np.int64, count=len(chunk))
    if not sizes.any():
        return flat
    prefix = np.fromiter(chain.from_iterable(p.prefix_ids for p in chunk), dtype=np.int64)
    starts = np.cumsum(flat.lengths) - flat.lengths
    at = np.repeat(starts, sizes)  # inserted in order before each text's first token
    ids = np.insert(flat.ids, at, prefix)
    labels = np.insert(flat.labels, at, IGNORE_INDEX)
    return FlatTokens(ids, labels, flat.lengths + sizes)


def _flatten(rows: list[tuple[list[int], list[int]]]) -> FlatTokens:
    import numpy as np

    lengths = np.fromiter((len(ids) for ids, _ in rows), dtype=np.int64, count=len(rows))
    total = int(lengths.sum())
    ids = np.fromiter(chain.from_iterable(ids for ids, _ in rows), np.int64, total)
    labels = np.fromiter(chain.from_iterable(labels for _, labels in rows), np.int64, total)
    return FlatTokens(ids, labels, lengths)


def _encode_pieces(p: TrainedSpans, tokenizer: Any) -> tuple[list[int], list[int]]:
    ids, labels = list(p.prefix_ids), [IGNORE_INDEX] * len(p.prefix_ids)
    cursor = 0
    for start, end in [*p.spans, (len(p.text), len(p.text))]:
        for piece, trained in ((p.text[cursor:start], False), (p.text[start:end], True)):
            if piece:
                piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += piece_ids
                labels += piece_ids if trained else [IGNORE_INDEX] * len(piece_ids)
        cursor = end
    return ids, labels
