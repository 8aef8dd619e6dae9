"""ftx-ia3: IA3 ("Infused Adapter by Inhibiting and Amplifying Inner Activations", Liu et al.
2022) — the base model stays frozen and only a learned vector per targeted layer trains, scaling
the attention keys and values and the input of the MLP output projection. Thousands of
parameters instead of millions; built on PEFT's ``IA3Config``.

Hooks: ``method_options``, ``train_defaults`` (IA3 needs a high learning rate),
``select_trainable`` (wrap the model with the IA3 vectors) and ``export`` (``adapter/`` plus the
vectors folded into a plain ``model/``, via the core's adapter export). Loading and the trainer
are the core defaults. Importing this module imports no torch.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.options import Option

LEARNING_RATE = 3e-2
"""IA3's vectors start at 1.0 and need large steps. Measured on the demo task (SmolLM2-135M,
20 steps at batch 8, 20 held-out rows, exact match from 0.00): 0.35 at 1e-2 (even after 30
steps), 0.80 at 3e-2, 0.90 at 6e-2; 3e-2 leaves a margin for longer runs on other data."""

OPTIONS = [
    Option(
        "target_modules",
        "list",
        None,
        "layers to scale (names or dotted suffixes, e.g. k_proj,v_proj,down_proj); "
        "null = the attention key/value and MLP output projections, found from the model",
        nullable=True,
    ),
    Option(
        "feedforward_modules",
        "list",
        None,
        "targets scaled on their input instead of their output (a subset of target_modules); "
        "null = the MLP output projections among the targets",
        nullable=True,
    ),
]


@hookimpl
def method_options() -> list[Option]:
    return OPTIONS


LEARNING_RATES = {
    **dict.fromkeys(("supervised", "orpo", "simpo"), LEARNING_RATE),
    **dict.fromkeys(("dpo", "kto"), 3e-3),
}
"""Per objective (the others: None, the objective's own). Preference tuning, measured on the
demo (batch 8, 12 steps; held-out pairwise accuracy from 0.775 on 40 pairs, mean margin 3.8
nats): DPO 3e-3 -> 0.775 (6.6), 3e-2 -> 0.825 (22.3); KTO 3e-3 -> 0.775 (4.8), 1e-2 -> 0.750
(5.1), 3e-2 -> 0.550 (0.3); ORPO and SimPO at 3e-2. DPO's default is the step that does not
undo the supervised run DPO usually follows: 8 steps from a 60-step supervised qlora run
(held-out exact 1.000, n=40) kept 1.000 at 3e-3, fell to 0.000 at 3e-2."""


@hookimpl
def train_defaults(device: Any, objective: str) -> dict[str, Any] | None:
    rate = LEARNING_RATES.get(objective)
    schedule = {"lr_scheduler_type": "cosine", "warmup_steps": 0.05}
    return None if rate is None else {"learning_rate": rate, **schedule}


@hookimpl
def select_trainable(run: Any, model: Any) -> Any:
    from peft import IA3Config, get_peft_model

    from ftx.loading import hold_frozen_in_autocast_dtype
    from ftx_ia3.targets import resolve_targets

    targets, feedforward = resolve_targets(
        model, run.options["target_modules"], run.options["feedforward_modules"]
    )
    config = IA3Config(
        target_modules=targets, feedforward_modules=feedforward, task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, config)
    hold_frozen_in_autocast_dtype(run, model)  # on GPUs: a bf16/fp16 base, fp32 vectors
    run.log(f"IA3 on {', '.join(targets)} (feed-forward: {', '.join(feedforward) or 'none'})")
    return model


@hookimpl
def export(run: Any, model: Any, tokenizer: Any) -> dict[str, str]:
    from ftx.adapters import export_adapter_method

    return export_adapter_method(run, model, tokenizer)
