"""The ``kto`` objective: Kahneman-Tversky Optimization (Ethayarajh et al., 2024) with TRL's
``KTOTrainer``/``KTOConfig``: unpaired completions, each labelled desirable or not.

Rows: ``prompt``/``completion``/``label`` (a JSON boolean), or preference pairs, each unpaired
into a desirable and an undesirable completion. ``train.loss_type``: ``kto`` (with a KL
estimate from mismatched completions in the same batch: the batch needs at least 2 rows) or
``apo_zero_unpaired``; ``train.beta``, ``train.desirable_weight``, ``train.undesirable_weight``
(> 0). Reference as for DPO. Held-out metric: ``pairwise`` on held-out pairs (labelled held-out
rows are paired by prompt), or ``exact`` against the desirable completions. See
:mod:`ftx_preference.shared`.
"""

from __future__ import annotations

from ftx_preference.shared import PreferenceObjective, Recipe

objective = PreferenceObjective(
    Recipe(
        name="kto",
        config="trl:KTOConfig",
        trainer="trl:KTOTrainer",
        layout="kto",
        reference=True,
        # The KL completions are built per batch in a fixed order (shared.with_kl_completions).
        fixed={"precompute_ref_log_probs": False, "train_sampling_strategy": "sequential"},
        bounds={
            "beta": (0.0, True),
            "desirable_weight": (0.0, True),
            "undesirable_weight": (0.0, True),
        },
        min_batch_size=2,
    )
)
