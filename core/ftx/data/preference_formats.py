"""Preference data shapes: their names, what a row of each looks like, and how to recognise one.

=======================  ====================================================================
format                   a row looks like
=======================  ====================================================================
``preference``           TRL's explicit prompt: ``{"prompt": ..., "chosen": ...,
                         "rejected": ...}``, each plain text or a list of messages
                         (``role``/``content``); the prompt's text is a user message, the
                         answers' text an assistant message.
``preference_implicit``  TRL's implicit prompt: ``{"chosen": [messages], "rejected":
                         [messages]}``, two conversations that share everything but their last
                         assistant message; the shared messages are the prompt.
``sharegpt_preference``  ShareGPT / LLaMA-Factory: ``{"conversations": [messages], "chosen":
                         message, "rejected": message}`` (``from``/``value`` or
                         ``role``/``content``; ``messages`` may stand for ``conversations``,
                         an optional ``"system"`` string comes first).
``kto``                  TRL's unpaired preference: ``{"prompt": ..., "completion": ...,
                         "label": true | false}`` (``label`` true = a desirable completion).
=======================  ====================================================================

`preference_shape` is cheap and imports nothing heavy: the supervised loader
(`ftx.data.formats`) asks it so that preference rows get "use --objective dpo" instead of a
puzzling missing-key error. Loading and validating is `ftx.data.preference`.
"""

from __future__ import annotations

from typing import Any

PAIR_FORMATS = ("preference", "preference_implicit", "sharegpt_preference")
"""Formats of paired preference data (DPO, ORPO, SimPO; KTO unpairs them)."""
LABELLED_FORMATS = ("kto",)
"""Formats of unpaired, labelled completions (KTO)."""
PREFERENCE_FORMATS = PAIR_FORMATS + LABELLED_FORMATS

PREFERENCE_EXPECTED = {
    "preference": '{"prompt": "...", "chosen": "...", "rejected": "..."} (each text or a list '
    'of {"role": ..., "content": ...} messages)',
    "preference_implicit": '{"chosen": [{"role": "user", ...}, {"role": "assistant", ...}], '
    '"rejected": [{"role": "user", ...}, {"role": "assistant", ...}]}',
    "sharegpt_preference": '{"conversations": [{"from": "human", "value": "..."}], '
    '"chosen": {"from": "gpt", "value": "..."}, "rejected": {"from": "gpt", "value": "..."}}',
    "kto": '{"prompt": "...", "completion": "...", "label": true}',
}

BOOL_TEXT = {"true": True, "false": False}
"""How a CSV cell (always text) spells a boolean ``label``."""


def preference_shape(data: Any) -> str | None:
    """The preference format a raw row's keys indicate, or None for any other row.

    A row with ``chosen`` or ``rejected`` is paired preference data (even when one of the two
    is missing, so that the loader can say which); ``prompt`` + ``completion`` + ``label`` is
    KTO data.
    """
    if not isinstance(data, dict):
        return None
    if "chosen" in data or "rejected" in data:
        if "conversations" in data or "messages" in data:
            return "sharegpt_preference"
        if "prompt" in data:
            return "preference"
        return "preference_implicit"
    if "label" in data and "completion" in data:
        return "kto"
    return None


def looks_like_preference(data: Any, *, cells_are_text: bool = False) -> str | None:
    """`preference_shape`, but a ``prompt``/``completion`` row counts as KTO data only when
    its ``label`` is a boolean (or, in a CSV cell, ``true``/``false``): a supervised data set
    may carry a ``label`` column of its own."""
    shape = preference_shape(data)
    if shape == "kto":
        label = data["label"]
        boolean = isinstance(label, bool) or (
            cells_are_text and isinstance(label, str) and label.strip().lower() in BOOL_TEXT
        )
        return shape if boolean else None
    return shape


def preference_keys(shape: str) -> str:
    """The keys that give `shape` away, for messages: ``"prompt/chosen/rejected"``."""
    return {
        "preference": "prompt/chosen/rejected",
        "preference_implicit": "chosen/rejected",
        "sharegpt_preference": "conversations/chosen/rejected",
        "kto": "prompt/completion/label",
    }[shape]


def not_conversations(shape: str) -> tuple[str, str]:
    """``(problem, hint)`` for preference data of `shape` where conversations are expected."""
    if shape == "kto":
        return (
            f"this looks like KTO data ({preference_keys(shape)}), not conversations",
            "use --objective kto; to train on every completion as supervised data anyway, "
            "pass --format prompt_completion",
        )
    return (
        f"this looks like preference data ({preference_keys(shape)}), not conversations",
        "use --objective dpo (or orpo, simpo, kto) to train on it; ftx eval scores it with "
        "--metric pairwise",
    )
