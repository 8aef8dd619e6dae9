"""A data set's token columns, built chunk by chunk: truncation, dropping, counts and Arrow.

`ColumnBuilder` takes the flat ids and labels of consecutive chunks of rows
(`ftx.data.encoding.FlatTokens`), cuts every row to its first ``max_length`` tokens, leaves out
the rows with no trained token left, and keeps what is kept as Arrow list columns, one Arrow
chunk per chunk of rows: no Python object per token is ever made. The types are those
``datasets.Dataset.from_list`` gives the same examples as Python lists: ``input_ids``
``list<int32>`` (datasets' optimised type for that name), ``labels`` ``list<int64>``.

Inside `spill_to(path)` (the token cache's miss), the first builder made writes each chunk to
``path`` as an Arrow IPC stream as it comes, holds none of them, and its `ColumnBuilder.table`
is that file memory-mapped: a data set's tokens are then never all in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftx.data.encoding import IGNORE_INDEX, FlatTokens

if TYPE_CHECKING:
    import pyarrow as pa

MAX_LISTED = 20  # dropped rows named in the stats
COLUMNS = {"input_ids": "int32", "labels": "int64"}  # name -> Arrow value type
_SPILL: ContextVar[list[Path] | None] = ContextVar("ftx_token_spill", default=None)


@contextmanager
def spill_to(path: Path) -> Iterator[None]:
    """Within this block, the first `ColumnBuilder` made in this context spills to ``path``
    (see the module); it says so in `ColumnBuilder.spilled`. Later builders hold their rows."""
    token = _SPILL.set([path])
    try:
        yield
    finally:
        _SPILL.reset(token)


def schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(name, pa.list_(pa.type_for_alias(kind))) for name, kind in COLUMNS.items()])


class ColumnBuilder:
    """Accumulates kept rows and the counts `ftx.data.tokens.tokenize_dataset` reports."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self.rows = self.kept = self.truncated = self.tokens = self.trained = 0
        self.dropped = 0
        self.dropped_sources: list[str] = []
        self.lengths: list[int] = []
        self._batches: list[pa.RecordBatch] = []
        claim = _SPILL.get()
        self.spilled: Path | None = claim.pop() if claim else None  # the file rows go to
        self._writer: Any = None

    def add(self, flat: FlatTokens, sources: list[str]) -> None:
        """Add the rows of one chunk (``sources[i]`` names row ``i``, for the dropped list)."""
        import numpy as np
        import pyarrow as pa

        lengths = flat.lengths
        rows = len(lengths)
        row_of = np.repeat(np.arange(rows), lengths)
        position = np.arange(len(flat.ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        within = position < self.max_length
        trained = np.bincount(row_of[within & (flat.labels != IGNORE_INDEX)], minlength=rows)
        keep_row = trained > 0
        keep = within & keep_row[row_of]
        cut = np.minimum(lengths, self.max_length)[keep_row]
        for i in np.flatnonzero(~keep_row)[: max(0, MAX_LISTED - self.dropped)].tolist():
            self.dropped_sources.append(sources[i])
        self.rows += rows
        self.kept += int(keep_row.sum())
        self.dropped += rows - int(keep_row.sum())
        self.truncated += int((lengths > self.max_length).sum())
        self.tokens += int(cut.sum())
        self.trained += int(trained.sum())
        self.lengths += lengths.tolist()
        offsets = pa.array(np.concatenate([[0], np.cumsum(cut)]).astype(np.int32))
        columns = [
            pa.ListArray.from_arrays(offsets, pa.array(values[keep].astype(kind)))
            for values, kind in zip((flat.ids, flat.labels), COLUMNS.values(), strict=True)
        ]
        batch = pa.record_batch(columns, schema=schema())
        if self.spilled is None:
            self._batches.append(batch)
        else:
            self._stream().write_batch(batch)

    def stats(self) -> dict[str, Any]:
        """``rows``, ``kept``, ``truncated``, ``dropped``, ``dropped_sources``, ``tokens``,
        ``trained_tokens``, ``lengths`` (see `ftx.data.tokens.TokenizedData`)."""
        return {
            "rows": self.rows,
            "kept": self.kept,
            "truncated": self.truncated,
            "dropped": self.dropped,
            "dropped_sources": list(self.dropped_sources),
            "tokens": self.tokens,
            "trained_tokens": self.trained,
            "lengths": list(self.lengths),
        }

    def table(self) -> pa.Table:
        """The kept rows, in order, as an Arrow table with one chunk per `add` (memory-mapped
        from `spilled` when spilling; the file is complete once this returns)."""
        import pyarrow as pa

        if self.spilled is None:
            return pa.Table.from_batches(self._batches, schema=schema())
        self._stream().close()
        return pa.ipc.open_stream(pa.memory_map(str(self.spilled))).read_all()

    def _stream(self) -> Any:
        import pyarrow as pa

        if self._writer is None:
            self._writer = pa.ipc.new_stream(str(self.spilled), schema())
        return self._writer
