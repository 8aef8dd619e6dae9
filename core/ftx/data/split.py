"""Hold out part of the training rows for evaluation, deterministically."""

from __future__ import annotations

import random
from typing import TypeVar

from ftx.errors import BadInput

T = TypeVar("T")


def split_eval(convs: list[T], ratio: float, seed: int) -> tuple[list[T], list[T]]:
    """Split `convs` into ``(train, held_out)``.

    ``round(len(convs) * ratio)`` rows (at least one when ``ratio > 0``) are chosen by a
    ``random.Random(seed)`` draw; both parts keep the original order. The same inputs always give
    the same split. ``ratio == 0`` returns ``(all rows, [])``.

    Raises `BadInput` if `ratio` is not in [0, 1) or would leave no training row.
    """
    if not 0.0 <= ratio < 1.0:
        raise BadInput(f"eval ratio must be in [0, 1), got {ratio}")
    if ratio == 0.0:
        return list(convs), []
    n_eval = max(1, round(len(convs) * ratio))
    if n_eval >= len(convs):
        raise BadInput(
            f"eval ratio {ratio} of {len(convs)} rows leaves no training rows",
            hint="use a smaller eval ratio or more data",
        )
    held = set(random.Random(seed).sample(range(len(convs)), n_eval))
    train = [c for i, c in enumerate(convs) if i not in held]
    evals = [c for i, c in enumerate(convs) if i in held]
    return train, evals
