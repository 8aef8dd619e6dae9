"""ftx-fft: full fine-tuning — every weight trains (FastChat's recipe).

Everything but distribution is the core default (load, all-trainable, TRL trainer, full export).
This plugin adds the multi-process engines of :mod:`ftx.engine`: FSDP (full shard, auto-wrap of
the decoder blocks) or DeepSpeed, passed to the Trainer when the run is launched with
``ftx run --nproc N`` or by
``torchrun``/``accelerate launch`` directly, and it records which engine actually ran.
Importing this module imports no torch.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.engine import DEEPSPEED_OPTION, FSDP_OPTIONS
from ftx.options import Option

OPTIONS = [*FSDP_OPTIONS, DEEPSPEED_OPTION]


@hookimpl
def method_options() -> list[Option]:
    return OPTIONS


LEARNING_RATES = {
    "supervised": 1e-4,
    **dict.fromkeys(("orpo", "simpo"), 5e-5),
    **dict.fromkeys(("dpo", "kto"), 1e-5),
}
"""Per objective (the others: None, the objective's own). Preference tuning, measured on the
demo (SmolLM2-135M, batch 8, 12 steps; held-out pairwise accuracy from 0.775 on 40 pairs, mean
margin 3.8 nats): DPO 1e-5 -> 0.775 (6.3), 5e-5 -> 0.875 (15.9), 1e-4 -> 0.875 (28.1); ORPO
5e-5 -> 0.925, SimPO 5e-5 -> 0.850; KTO 1e-5 -> 0.800 (4.5), 5e-5 -> 0.750 (4.5). DPO's default
is the step that does not undo the supervised run DPO usually follows: 8 steps from a 60-step
supervised qlora run (held-out exact 1.000, n=40) kept 1.000 at 1e-5, fell to 0.425 at 5e-5;
from the base model the larger step pays off (pass it with --set train.learning_rate=5e-5)."""


@hookimpl
def train_defaults(device: Any, objective: str) -> dict[str, Any] | None:
    """Learning rate per objective (:data:`LEARNING_RATES`); supervised: **1e-4**.

    Evidence, SmolLM2-135M-Instruct, batch 8, one epoch, held-out exact match (BENCHMARKS.md
    §10): the demo (60 steps, 80 rows) 1.000 at 1e-4; the multi-turn task
    (``bench/eval_budget.py``: 40 steps, 40 rows) 0.050 at 3e-5, **0.375 at 1e-4**, 0.500 at
    3e-4 (within noise of 1e-4 at n=40); the demo at 3e-4 1.000 too. The default budget (up
    to 3 epochs, the best checkpoint, early stopping) takes the multi-turn task at 1e-4 to
    0.800: it lacked training most. For a single epoch of a hard task, 3e-4 is worth a try
    (--set train.learning_rate=3e-4)."""
    rate = LEARNING_RATES.get(objective)
    return None if rate is None else {"learning_rate": rate}


@hookimpl
def training_arguments(run: Any, model: Any) -> dict[str, Any]:
    from ftx.engine import engine_arguments

    overrides, engine = engine_arguments(run, model)
    run.report(engine=engine)
    run.log(f"engine: {engine}")
    return overrides


@hookimpl
def export(run: Any, model: Any, tokenizer: Any, trainer: Any) -> dict[str, str] | None:
    from ftx.engine import export_sharded

    return export_sharded(run, tokenizer, trainer)


@hookimpl
def estimate_memory(
    model_config, seq_len, batch_size, options, device, dtype, objective=None, optim=None
):
    from ftx_fft.estimate import estimate

    return estimate(model_config, seq_len, batch_size, options, device, dtype, objective, optim)
