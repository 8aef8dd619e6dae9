"""The ``orpo`` objective: Odds Ratio Preference Optimization (Hong et al., 2024) with TRL's
``trl.experimental.orpo`` ``ORPOTrainer``/``ORPOConfig``: the chosen answer's next-token loss
plus ``train.beta`` (λ, > 0, default 0.1) times an odds-ratio loss; no reference model.

Rows: preference pairs. Held-out metric: ``pairwise`` (or ``exact``). TRL marks ORPO
experimental. See :mod:`ftx_preference.shared`.
"""

from __future__ import annotations

from ftx_preference.shared import PreferenceObjective, Recipe

objective = PreferenceObjective(
    Recipe(
        name="orpo",
        config="trl.experimental.orpo:ORPOConfig",
        trainer="trl.experimental.orpo:ORPOTrainer",
        layout="cpo",
    )
)
