"""Read raw rows from JSON, JSONL, CSV and Parquet files, or a directory of them.

`read_rows(path)` returns `Row`s: the parsed value of each row plus where it came from (file and
1-based line or row number), so that every later complaint can point at the exact place. Anything
unreadable raises `BadInput` naming the file and, where there is one, the line or row.

Where a row is:

* JSONL: ``line N`` (physical line in the file, blank lines are skipped but counted);
* JSON: ``row N`` (position in the top-level list, or in the list under ``"data"``/``"rows"``/…);
* CSV: ``row N`` (data row after the header) — cells are strings, list-valued columns such as
  ``conversations``/``messages`` hold JSON text;
* Parquet: ``row N``.

Nothing here imports torch, transformers or datasets; Parquet uses pyarrow, imported on use.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftx.errors import BadInput

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
# An object at the top of a JSON file may hold its rows under one of these keys.
CONTAINER_KEYS = ("data", "rows", "examples", "train", "items", "records")
# Keys that mark a top-level JSON object as a single row rather than a container.
_ROW_KEYS = ("conversations", "messages", "instruction", "prompt", "text")


@dataclass(frozen=True)
class Row:
    """One raw row. ``where`` is ``"line 17"`` or ``"row 3"``; ``cells_are_text`` is True for
    CSV rows, whose list-valued columns arrive as JSON strings."""

    file: Path
    where: str
    data: Any
    cells_are_text: bool = False

    @property
    def source(self) -> str:
        """``"train.jsonl:17"``: the file name and the line/row number."""
        return f"{self.file.name}:{self.where.split()[-1]}"

    def error(self, problem: str, hint: str | None = None) -> BadInput:
        """A `BadInput` naming this row: ``"<file>, <where>: <problem>"``."""
        return BadInput(f"{self.file}, {self.where}: {problem}", hint=hint)


def data_files(path: str | Path) -> list[Path]:
    """The files `path` stands for: itself, or the supported files of a directory, sorted."""
    path = Path(path).expanduser()
    if not path.exists():
        # Callers that know which setting held the path (ftx.config: --data, data.eval)
        # check it first with their own hint; this one fits every command.
        raise BadInput(
            f"data path not found: {path}",
            hint=f"check the path: a data file ({', '.join(SUFFIXES)}) or a directory of them",
        )
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and _suffix(p) in SUFFIXES
        )
        if not files:
            raise BadInput(
                f"data directory {path} has no data files",
                hint=f"expected files ending in {', '.join(SUFFIXES)}",
            )
        return files
    if _suffix(path) not in SUFFIXES:
        raise BadInput(
            f"{path}: unsupported data file type {path.suffix or '(no suffix)'!r}",
            hint=f"use one of {', '.join(SUFFIXES)}",
        )
    return [path]


def read_rows(path: str | Path) -> list[Row]:
    """All rows of a file or of every supported file in a directory (sorted by name).

    Raises `BadInput` for a missing path, an unsupported file type, unreadable or malformed
    content, and for a file with no rows.
    """
    rows: list[Row] = []
    for file in data_files(path):
        rows.extend(read_file(file))
    return rows


def read_file(file: Path) -> list[Row]:
    """Rows of one file; its suffix picks the reader. Raises `BadInput` on an empty file."""
    rows = list(iter_file(file))
    if not rows:
        raise no_rows(file)
    return rows


def no_rows(file: Path) -> BadInput:
    """The error for a data file that holds no rows."""
    return BadInput(f"{file}: the file has no rows", hint="add rows or remove the file")


def iter_file(file: Path) -> Iterator[Row]:
    """`read_file`'s rows one at a time (none for an empty file): a JSONL file is read a line at
    a time, so neither its text nor all of its parsed rows need be held at once; the other
    kinds are parsed whole first."""
    kind = SUFFIXES[_suffix(file)]
    if kind == "jsonl":
        return _iter_jsonl(file)
    reader = {"json": _read_json, "csv": _read_csv}.get(kind)
    return iter(_read_parquet(file) if reader is None else reader(file, _read_text(file)))


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise BadInput(
            f"{file}: not UTF-8 text (byte {err.start}: {err.reason})",
            hint="save the file as UTF-8",
        ) from None
    except OSError as err:
        raise BadInput(f"{file}: cannot read the file ({err.strerror or err})") from None


def _lines(handle: Any) -> Iterator[bytes]:
    """The file's lines as bytes, each with its ending, ended by ``\\n``, ``\\r\\n`` or a lone
    ``\\r`` (old Mac files), as text mode's universal newlines would split them."""
    for raw in handle:
        ending = b"\r\n" if raw.endswith(b"\r\n") else b"\n" if raw.endswith(b"\n") else b""
        body = raw[: len(raw) - len(ending)]
        if b"\r" not in body:
            yield raw
            continue
        *pieces, last = body.split(b"\r")
        yield from (piece + b"\r" for piece in pieces)
        if last + ending:
            yield last + ending


def _iter_jsonl(file: Path) -> Iterator[Row]:
    try:
        handle = file.open("rb")
    except OSError as err:
        raise BadInput(f"{file}: cannot read the file ({err.strerror or err})") from None
    with handle:
        offset = 0  # bytes before the current line: a decoding error names its byte
        for number, raw in enumerate(_lines(handle), start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise BadInput(
                    f"{file}: not UTF-8 text (byte {offset + err.start}, line {number}: "
                    f"{err.reason})",
                    hint="save the file as UTF-8",
                ) from None
            offset += len(raw)
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise BadInput(
                    f"{file}, line {number}: not valid JSON ({err.msg} at column {err.colno})",
                    hint="each line of a .jsonl file must be one complete JSON object",
                ) from None
            yield Row(file, f"line {number}", value)


def _read_json(file: Path, text: str) -> list[Row]:
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        hint = None
        if text.lstrip().startswith("{") and "\n{" in text:
            hint = "this looks like one JSON object per line: name the file .jsonl"
        raise BadInput(
            f"{file}, line {err.lineno}: not valid JSON ({err.msg} at column {err.colno})",
            hint=hint,
        ) from None
    items = _json_items(file, value)
    return [Row(file, f"row {number}", item) for number, item in enumerate(items, start=1)]


def _json_items(file: Path, value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if any(key in value for key in _ROW_KEYS):
            return [value]  # a single row
        for key in CONTAINER_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
        lists = [key for key, item in value.items() if isinstance(item, list)]
        if len(lists) == 1:
            return value[lists[0]]
    raise BadInput(
        f"{file}: expected a JSON list of rows, or an object with the list of rows under "
        f'"data"; got {_kind(value)}',
        hint='write [{...}, {...}] or {"data": [{...}, {...}]}',
    )


def _read_csv(file: Path, text: str) -> list[Row]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    rows = []
    try:
        for number, record in enumerate(reader, start=1):
            if None in record:  # more cells than header columns
                raise BadInput(
                    f"{file}, row {number}: more cells than the header's "
                    f"{len(reader.fieldnames or [])} columns",
                    hint="quote cells that contain commas",
                )
            cells = {key: value for key, value in record.items() if value is not None}
            rows.append(Row(file, f"row {number}", cells, cells_are_text=True))
    except csv.Error as err:
        raise BadInput(f"{file}, line {reader.line_num}: not valid CSV ({err})") from None
    return rows


def _read_parquet(file: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with datasets
        raise BadInput(
            f"{file}: reading Parquet needs pyarrow", hint="pip install pyarrow"
        ) from None
    try:
        records = pq.read_table(file).to_pylist()
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise BadInput(f"{file}: not a readable Parquet file ({err})") from None
    return [Row(file, f"row {number}", record) for number, record in enumerate(records, start=1)]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object with keys " + (", ".join(map(repr, list(value)[:8])) or "(none)")
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
