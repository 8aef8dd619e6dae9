"""Plugins the ftx project publishes, for install hints only (``pip install …``).

Nothing chooses or runs a plugin from this table: discovery is by entry point
(:mod:`ftx.plugins`). It only lets an error for a plugin that is not installed name the
distribution that would bring it.
"""

from __future__ import annotations

DEFAULT_OBJECTIVE = "supervised"
"""What ``ftx run`` learns from when no ``--objective`` is given (ftx-core ships it)."""

KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "fft": "ftx-fft",
    "sft": "ftx-sft",
    "qlora": "ftx-qlora",
    "ia3": "ftx-ia3",
    "dpo": "ftx-preference",
    "orpo": "ftx-preference",
    "simpo": "ftx-preference",
    "kto": "ftx-preference",
}


def distribution_for(name: str, kind: str) -> str:
    """The distribution that publishes plugin ``name``: a known one, else the naming convention
    (``ftx-NAME``)."""
    return KNOWN_DISTRIBUTIONS.get(name, f"ftx-{name}")
