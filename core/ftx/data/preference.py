"""Preference data: read, detect, normalise and validate pairs and labelled completions.

Two normalised row types (`ftx.data.preference_rows`; the shapes are in
`ftx.data.preference_formats`):

* `PreferencePair`: ``prompt`` (the messages before the answer: an optional system message,
  user and earlier assistant turns), ``chosen`` and ``rejected`` (each one assistant message,
  as a one-element list);
* `LabelledCompletion`: ``prompt``, ``completion`` (one assistant message) and a boolean
  ``label`` (True: desirable), KTO's unpaired data.

`load_preference_pairs` and `load_labelled_completions` read the same files as
`ftx.data.load_conversations` (JSON, JSONL, CSV, Parquet, a directory of them), detect the
format per file from its first row unless one is given, and raise `BadInput` naming the file,
the line/row and the fix for anything wrong: a missing ``chosen``/``rejected``, an empty answer,
a label that is not a boolean, supervised data where preference data is expected ("use
--objective supervised"), and ``chosen`` equal to ``rejected`` in *every* row (a few identical
pairs are only counted, by `ftx.data.tokenize_pairs` and ``ftx data check``). Nothing here
imports torch, transformers or datasets.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ftx.data.formats import AUTO, FORMATS, _kind
from ftx.data.preference_formats import (
    LABELLED_FORMATS,
    PAIR_FORMATS,
    PREFERENCE_EXPECTED,
    PREFERENCE_FORMATS,
    preference_shape,
)
from ftx.data.preference_rows import (
    LabelledCompletion,
    PreferencePair,
    normalize_labelled,
    normalize_pair,
)
from ftx.data.readers import Row, data_files, read_file
from ftx.errors import BadInput

PROMPTS_FORMAT = "prompts"
"""The format name of prompt-only rows (`ftx.data.prompts`, ``--objective grpo``)."""

__all__ = [
    "LabelledCompletion",
    "PreferencePair",
    "check_any_format",
    "check_preference_format",
    "data_kind",
    "detect_preference_format",
    "load_labelled_completions",
    "load_labelled_with_formats",
    "load_pairs_with_formats",
    "load_preference_pairs",
    "normalize_labelled",
    "normalize_pair",
]


def check_preference_format(fmt: str, allowed: tuple[str, ...] = PREFERENCE_FORMATS) -> str:
    """Return `fmt` if it is ``"auto"`` or one of `allowed`, else raise `BadInput`."""
    if fmt == AUTO or fmt in allowed:
        return fmt
    if fmt in FORMATS:
        raise BadInput(
            f"data format {fmt!r} is supervised data, not preference data",
            hint="use --objective supervised, or one of: " + ", ".join(allowed),
        )
    if fmt in PREFERENCE_FORMATS:  # kto where pairs are expected
        raise BadInput(
            f"data format {fmt!r} holds unpaired labelled completions, not preference pairs",
            hint="use --objective kto, or one of: " + ", ".join(allowed),
        )
    raise _unknown_format(fmt, allowed)


def check_any_format(fmt: str) -> str:
    """Return `fmt` if it names any format (supervised, preference or ``prompts``), else raise
    `BadInput`."""
    every = (*FORMATS, *PREFERENCE_FORMATS, PROMPTS_FORMAT)
    if fmt == AUTO or fmt in every:
        return fmt
    raise _unknown_format(fmt, every)


def _unknown_format(fmt: str, names: tuple[str, ...]) -> BadInput:
    close = difflib.get_close_matches(str(fmt), names, n=1)
    return BadInput(
        f"unknown data format {fmt!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; expected auto or one of: {', '.join(names)}"
    )


def data_kind(path: str | Path, fmt: str = AUTO) -> str:
    """``"pairs"``, ``"labelled"``, ``"prompts"`` or ``"conversations"``: what `path` holds,
    from `fmt` or, under ``"auto"``, from the first row of its first file (a ``prompt`` without
    a ``completion`` is a prompt row, `ftx.data.prompts`)."""
    if fmt in PAIR_FORMATS:
        return "pairs"
    if fmt in LABELLED_FORMATS:
        return "labelled"
    if fmt == PROMPTS_FORMAT:
        return "prompts"
    if fmt != AUTO:
        return "conversations"
    first = read_file(data_files(path)[0])[0].data
    shape = preference_shape(first)
    if shape is None:
        prompt_only = isinstance(first, dict) and "prompt" in first and "completion" not in first
        return "prompts" if prompt_only else "conversations"
    return "labelled" if shape == "kto" else "pairs"


def detect_preference_format(row: Row) -> str:
    """The preference format a row's keys indicate (see `ftx.data.preference_formats`).

    Raises `BadInput` when they match none, saying so when the row is supervised data.
    """
    data = row.data
    if not isinstance(data, dict):
        raise row.error(f"expected a JSON object (a row), got {_kind(data)}")
    shape = preference_shape(data)
    if shape is not None:
        return shape
    from ftx.data.formats import detect_format

    try:
        supervised = detect_format(row)
    except BadInput:
        supervised = None
    if supervised is not None:
        raise row.error(
            f"this looks like supervised data ({supervised} format), not preference data",
            hint="use --objective supervised, or give each row a chosen and a rejected answer: "
            + PREFERENCE_EXPECTED["preference"],
        )
    keys = ", ".join(repr(k) for k in list(data)[:8]) or "none"
    raise row.error(
        f"cannot tell the preference data format from the keys ({keys})",
        hint="rows need one of: "
        + "; ".join(f"{fmt}: {example}" for fmt, example in PREFERENCE_EXPECTED.items())
        + " (or pass --format)",
    )


def load_preference_pairs(path: str | Path, fmt: str = AUTO) -> list[PreferencePair]:
    """Read, normalise and validate every preference pair under `path`.

    Args:
        path: a .json/.jsonl/.csv/.parquet file or a directory of them (read in sorted order).
        fmt: ``"auto"`` (detect per file from its first row) or one of `PAIR_FORMATS`.

    Raises:
        BadInput: unknown format; unreadable file; a row missing ``chosen`` or ``rejected``, with
            an empty answer, an answer that is not one assistant message, or an impossible turn
            order; supervised or KTO data; ``chosen`` equal to ``rejected`` in every row. The
            message names the file and the 1-based line (JSONL) or row.
    """
    return load_pairs_with_formats(path, fmt)[0]


def load_pairs_with_formats(
    path: str | Path, fmt: str = AUTO
) -> tuple[list[PreferencePair], dict[str, str]]:
    """`load_preference_pairs`, plus ``{file path: format used}`` for every file read."""
    check_preference_format(fmt, PAIR_FORMATS)
    pairs: list[PreferencePair] = []
    formats: dict[str, str] = {}
    for file in data_files(path):
        rows = read_file(file)
        file_fmt = _file_format(rows[0], fmt)
        if file_fmt == "kto":
            raise rows[0].error(
                "this looks like KTO data (prompt/completion/label), not preference pairs",
                hint="use --objective kto, or give each row a chosen and a rejected answer",
            )
        formats[str(file)] = file_fmt
        pairs.extend(normalize_pair(row, file_fmt) for row in rows)
    if all(pair.identical for pair in pairs):
        raise BadInput(
            f"{path}: chosen equals rejected in every one of the {len(pairs)} pairs, so there "
            "is no preference to learn",
            hint="rejected must be a worse answer than chosen: check which columns hold them",
        )
    return pairs, formats


def load_labelled_completions(path: str | Path, fmt: str = AUTO) -> list[LabelledCompletion]:
    """Read, normalise and validate KTO rows under `path`; preference pairs are unpaired into
    a desirable (chosen) and an undesirable (rejected) completion each, as TRL's KTOTrainer does.

    Raises `BadInput` as `load_preference_pairs` does, and for a ``label`` that is not a boolean
    (``"yes"``, ``1``; in CSV files the cell must read ``true`` or ``false``).
    """
    return load_labelled_with_formats(path, fmt)[0]


def load_labelled_with_formats(
    path: str | Path, fmt: str = AUTO
) -> tuple[list[LabelledCompletion], dict[str, str]]:
    """`load_labelled_completions`, plus ``{file path: format used}`` for every file read."""
    check_preference_format(fmt)
    rows_out: list[LabelledCompletion] = []
    formats: dict[str, str] = {}
    for file in data_files(path):
        rows = read_file(file)
        formats[str(file)] = file_fmt = _file_format(rows[0], fmt)
        for row in rows:
            if file_fmt == "kto":
                rows_out.append(normalize_labelled(row))
                continue
            pair = normalize_pair(row, file_fmt)
            for answer, label in ((pair.chosen, True), (pair.rejected, False)):
                rows_out.append(LabelledCompletion(pair.id, pair.prompt, answer, label, row.source))
    return rows_out, formats


def _file_format(first: Row, fmt: str) -> str:
    return detect_preference_format(first) if fmt == AUTO else fmt
