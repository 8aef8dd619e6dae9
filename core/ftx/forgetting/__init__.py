"""Forgetting: what a fine-tuned model kept of what its base model knew.

* **retention** (:mod:`ftx.forgetting.retention`): of the shipped general questions
  (``questions.jsonl``) the base model answers right, the share the tuned model still answers
  right;
* **drift** (:mod:`ftx.forgetting.drift`): mean per-token KL(p_base ‖ p_tuned) in nats,
  teacher-forced on shipped general text (``general_text.jsonl``).

:func:`ftx.forgetting.measure.measure_forgetting` measures both; ``data.eval_forgetting``
turns it on for a run, ``ftx eval RUN_OR_MODEL --metric retention|drift`` for a saved model.
Importing this package imports no torch.
"""

from __future__ import annotations

from typing import Any

FORGETTING_SETTINGS = ("auto", "true", "false")
"""The values of ``data.eval_forgetting`` (config validation takes its choices from here)."""


def forgetting_enabled(data: dict[str, Any]) -> bool:
    """Whether a run with data section ``data`` measures forgetting: ``true`` only (``auto``
    means off in ``ftx run``; ``ftx compare`` passes ``true``)."""
    return data.get("eval_forgetting") == "true"
