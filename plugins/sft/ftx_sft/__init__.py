"""ftx-sft: supervised fine-tuning of only the layers you choose (the rest stays frozen).

Hooks: ``select_trainable`` (freeze everything, unfreeze the selection, print what trains) and
``train_defaults``. Loading, the TRL ``SFTTrainer`` and the full-model export are the core
defaults. The selection logic lives in :mod:`ftx_sft.selection`; this module imports no torch.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.options import Option

DEFAULT_LAYERS = "auto"
"""``auto`` = the top quarter of the decoder blocks (at least one; see ``selection.AUTO_SHARE``)."""

OPTIONS = [
    Option(
        "layers",
        "str",
        DEFAULT_LAYERS,
        "decoder blocks: auto (top quarter) | last:N | first:N | 10-15 | 3,5,7 | a list",
        alternatives=("int", "list"),
    ),
    Option(
        "modules",
        "list",
        None,
        "glob patterns over parameter names inside the chosen blocks, e.g. ['mlp.*']",
        nullable=True,
    ),
    Option("extra", "list", [], "also train: embed_tokens, lm_head, norm (the final norm)"),
]


@hookimpl
def method_options() -> list[Option]:
    return OPTIONS


LEARNING_RATES = {**dict.fromkeys(("supervised", "orpo", "simpo"), 1e-3), "dpo": 1e-4, "kto": 1e-4}
"""Per objective (the others: None, the objective's own). Preference tuning, measured on the
demo (SmolLM2-135M, the top 8 blocks, batch 8, 12 steps; held-out pairwise accuracy from 0.775
on 40 pairs, mean margin 3.8 nats): DPO 1e-4 -> 0.825 (6.8), 1e-3 -> 0.850 (24.0); KTO 1e-4 ->
0.825 (4.9), 3e-4 -> 0.725 (5.4), 1e-3 -> 0.675 (10.0); ORPO and SimPO at 1e-3. DPO's default
is the step that does not undo the supervised run DPO usually follows: 8 steps from a 60-step
supervised qlora run (held-out exact 1.000, n=40) kept 1.000 at 1e-4, fell to 0.000 at 1e-3."""


@hookimpl
def train_defaults(device: Any, objective: str) -> dict[str, Any] | None:
    """Learning rate per objective (:data:`LEARNING_RATES`); supervised: **1e-3** (the top
    quarter of the blocks trains: a frozen base needs a larger step than full tuning).

    Evidence, SmolLM2-135M-Instruct, batch 8, one epoch, held-out exact match (BENCHMARKS.md
    §10): the demo (60 steps, 80 rows) 0.888 at 1e-3; the multi-turn task
    (``bench/eval_budget.py``: 40 steps, 40 rows) 0.025 at 3e-4, **0.175 at 1e-3**, 0.100 at
    3e-3 (the best of the three on both tasks), and 0.725 with the default budget (up to 3
    epochs, the best checkpoint, early stopping) at 1e-3."""
    rate = LEARNING_RATES.get(objective)
    return None if rate is None else {"learning_rate": rate}


@hookimpl
def select_trainable(run: Any, model: Any) -> Any:
    from ftx_sft.selection import apply_selection

    return apply_selection(run, model)


@hookimpl
def estimate_memory(
    model_config, seq_len, batch_size, options, device, dtype, objective=None, optim=None
):
    from ftx_sft.estimate import estimate

    return estimate(model_config, seq_len, batch_size, options, device, dtype, objective, optim)
