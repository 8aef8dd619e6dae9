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


def install_hint(name: str, *, close_match: bool) -> str:
    """The hint for a plugin ``name`` that is not installed: the ``pip install`` of the
    distribution ftx publishes for it, if any. An unknown name gets no install command: it is
    usually a typo (``close_match``: a "did you mean" was offered), and a guessed package name
    would invite typosquatting."""
    if name in KNOWN_DISTRIBUTIONS:
        return f"pip install {KNOWN_DISTRIBUTIONS[name]}"
    if close_match:
        return "`ftx plugins` lists what is installed"
    return (
        "`ftx plugins` lists what is installed; a third party's plugin installs with pip, "
        "under the distribution name its author publishes"
    )
