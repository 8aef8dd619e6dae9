"""The kit's tiny training and held-out files, in the shape of the rows an objective learns from
(``ObjectiveTraits.data``): conversations, preference pairs or labelled completions of the
same reverse-the-words task (:mod:`ftx.testing.tiny`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ftx.testing.conformance.report import HELDOUT_ROWS

TRAIN_ROWS = 48
"""Rows (pairs, prompts) of the kit's tiny training file."""

Given = str | Path | Mapping[str, str | Path] | None
"""A file for every objective, ``{objective: file}`` (the kit's own for the others), or None."""


def _writers() -> dict[str, Callable[..., Path]]:
    from ftx.testing.tiny import write_tiny_dataset, write_tiny_preference_dataset

    return {
        "conversations": write_tiny_dataset,
        "preference pairs": write_tiny_preference_dataset,
        "labelled completions": lambda path, **kw: write_tiny_preference_dataset(
            path, labelled=True, **kw
        ),
    }


def kit_files(
    objective: str, traits: Any, workdir: Path, data: Given, eval_data: Given
) -> tuple[Path, Path]:
    """``(training file, held-out file)`` for a run under ``objective``: the ones given, else
    the kit's tiny ones for ``traits.data``, written once into ``workdir``. Raises
    AssertionError when the objective's rows are of a kind the kit cannot write and no file
    was given."""
    writer = _writers().get(traits.data)
    slug = traits.data.replace(" ", "-")

    def pick(given: Given, name: str, rows: int, seed: int, what: str) -> Path:
        chosen = given.get(objective) if isinstance(given, Mapping) else given
        if chosen is not None:
            return Path(chosen)
        assert writer is not None, (
            f"objective '{objective}' learns from {traits.data!r}, rows the kit cannot write "
            f"(it writes {', '.join(map(repr, _writers()))}): pass {what}"
        )
        path = workdir / f"tiny-{slug}-{name}.jsonl"
        if not path.is_file():
            writer(path, rows=rows, seed=seed)
        return path

    return (
        pick(data, "train", TRAIN_ROWS, 0, "data= (a training file)"),
        pick(eval_data, "heldout", HELDOUT_ROWS, 1, "eval_data= (a held-out file)"),
    )


def learning_rate_for(method: str, learning_rate: Any, default: float | None) -> float | None:
    """The run's learning rate: ``learning_rate`` itself, or its value for ``method`` when it
    is a mapping (``default`` for a method it does not name)."""
    if isinstance(learning_rate, Mapping):
        return learning_rate.get(method, default)
    return learning_rate
