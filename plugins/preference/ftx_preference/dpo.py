"""The ``dpo`` objective: Direct Preference Optimization (Rafailov et al., 2023) with TRL's
``DPOTrainer``/``DPOConfig``.

Rows: preference pairs. Loss: ``train.loss_type`` — any the installed TRL implements
(``sigmoid``, DPO's own; ``ipo``, ``hinge``, ``robust``, ``apo_zero`` …) — with ``train.beta``
(> 0, default 0.1) and the other ``DPOConfig`` fields. Reference: the starting model (adapters
disabled for adapter methods; ``objective.reference`` copy/precompute/auto otherwise). Held-out
metric: ``pairwise`` (or ``exact``). See :mod:`ftx_preference.shared`.
"""

from __future__ import annotations

from ftx_preference.shared import PreferenceObjective, Recipe

objective = PreferenceObjective(
    Recipe(
        name="dpo",
        config="trl:DPOConfig",
        trainer="trl:DPOTrainer",
        layout="dpo",
        reference=True,
        # ftx truncates (keep_end, ftx.data.tokenize_pairs) and chooses the reference itself.
        fixed={"precompute_ref_log_probs": False, "truncation_mode": "keep_start"},
    )
)
