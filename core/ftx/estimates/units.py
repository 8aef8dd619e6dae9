"""Sizes and counts as people write them: ``16GB`` in, ``1.5 GiB`` and ``6.74B`` out.

Units are binary throughout (1 GB = 1 GiB = 2**30 bytes, as GPU memory is sold).
"""

from __future__ import annotations

import re

from ftx.errors import BadInput

GiB = 1 << 30
MiB = 1 << 20

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"16GB"``, ``"16G"``, ``"16 GiB"``, ``"800MB"``, ``"1.5T"`` → bytes.

    Units are binary (1 GB = 1 GiB = 2**30 bytes, as GPU memory is sold); a bare number is
    GiB. Raises :class:`BadInput` (naming ``--gpu-mem``) for anything else, and for sizes of
    zero or less.
    """
    match = _SIZE.match(str(text))
    if not match:
        raise BadInput(
            f"--gpu-mem {text!r}: expected a size such as 16GB, 24GiB, 80G or 512MB",
        )
    number, unit, suffix = match.groups()
    if not unit and suffix:  # "16B" would be 16 bytes: surely a mistake
        raise BadInput(f"--gpu-mem {text!r}: expected a size such as 16GB, 24GiB or 80G")
    power = {"": 3, "k": 1, "m": 2, "g": 3, "t": 4}[unit.lower()]
    value = int(float(number) * 1024**power)
    if value <= 0:
        raise BadInput(f"--gpu-mem {text!r}: must be more than zero")
    return value


def format_bytes(n: int | float | None) -> str:
    """Human-readable binary size: ``1.5 GiB``, ``620 MiB``, ``12 KiB``; ``?`` for ``None``."""
    if n is None:
        return "?"
    if abs(n) >= GiB:
        return f"{n / GiB:.1f} GiB"
    if abs(n) >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def format_count(n: int) -> str:
    """A parameter count for humans: ``6.74B``, ``134.5M``, ``4.9M``, ``12.3K``, ``999``."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.{2 if div == 1e9 else 1}f}{unit}"
    return str(n)
