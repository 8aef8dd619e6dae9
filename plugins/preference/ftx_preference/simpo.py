"""The ``simpo`` objective: Simple Preference Optimization (Meng et al., 2024) — a
reference-free margin loss on length-normalised log-probabilities — with TRL's CPO trainer
(``trl.experimental.cpo``) run as SimPO: ``loss_type="simpo"`` and ``cpo_alpha=0`` (no
behaviour-cloning term) are fixed; ``train.beta`` (> 0) and ``train.simpo_gamma`` (the target
margin, >= 0) are yours.

Rows: preference pairs. Held-out metric: ``pairwise`` (or ``exact``). TRL marks CPO
experimental. See :mod:`ftx_preference.shared`.
"""

from __future__ import annotations

from ftx_preference.shared import PreferenceObjective, Recipe

objective = PreferenceObjective(
    Recipe(
        name="simpo",
        config="trl.experimental.cpo:CPOConfig",
        trainer="trl.experimental.cpo:CPOTrainer",
        layout="cpo",
        fixed={"loss_type": "simpo", "cpo_alpha": 0.0},
        bounds={"beta": (0.0, True), "simpo_gamma": (0.0, False)},
    )
)
