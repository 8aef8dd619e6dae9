"""What ftx's NaN guard costs per optimizer step: one fused norm vs ``isfinite`` per parameter.

``ftx.callbacks.FiniteGuard`` checks the gradients before every optimizer step so that a
non-finite step never reaches the weights. It used to run ``torch.isfinite(grad).all()`` for
each parameter (four elementwise passes and a Python sync per tensor); it then took the total
gradient norm once (``torch.nn.utils.get_total_norm``, a foreach kernel), finite exactly when
every gradient is; in an ftx run it now reads that norm from ftx's trainer, which computes it
every step anyway (to clip and log ``grad_norm``), so the check itself costs nothing more.
This script builds SmolLM2-135M's shapes (random weights, every parameter with an fp32
gradient, as in full fine-tuning) and times the three, alternating, in one process. Results:
``bench/results/nan_guard.json``.

Usage::

    python bench/nan_guard.py [--repeats 15] [--quick]
"""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace

from common import (
    bench_parser,
    demo_model,
    markdown_table,
    ratio,
    save_results,
)

GUARD_ONLY: list[float] = []
"""Seconds of the guard alone in ``guard_reading_the_trainers_norm`` (its norm excluded)."""


def per_parameter_isfinite(model) -> bool:
    """The check ftx ran before (a sync per tensor)."""
    import torch

    return all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def finite_guard(model, trainer=None) -> bool:
    """ftx's guard as the Trainer calls it (reading ``trainer``'s norm when given); True when
    it lets the step through."""
    from transformers import TrainerControl, TrainerState

    from ftx.callbacks import FiniteGuard

    guard = FiniteGuard()
    if trainer is not None:
        guard.read_norm_from(trainer)
    guard.on_pre_optimizer_step(None, TrainerState(), TrainerControl(), model=model)
    return guard.bad_step is None


def guard_reading_the_trainers_norm(model) -> bool:
    """The guard in an ftx run: the Trainer has already computed this step's total norm."""
    import torch

    norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    trainer = SimpleNamespace(step_grad_norm=norm)
    start = time.perf_counter()
    ok = finite_guard(model, trainer)
    GUARD_ONLY.append(time.perf_counter() - start)
    return ok


def smollm2_with_grads():
    """SmolLM2-135M's architecture (the demo model's config), random weights, random fp32
    gradients on every parameter."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(demo_model()))
    for param in model.parameters():
        param.grad = torch.randn_like(param)
    return model


def main() -> None:
    parser = bench_parser(__doc__, quick="3 repeats", ignore=("steps", "eval-limit"))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    from ftx.process_env import configure_command_process

    configure_command_process()  # before torch loads, as the ftx command

    model = smollm2_with_grads()
    checks = {
        "isfinite per parameter (before)": per_parameter_isfinite,
        "FiniteGuard: one fused norm": finite_guard,
        "FiniteGuard reading the Trainer's norm (ftx run)": guard_reading_the_trainers_norm,
    }
    times: dict[str, list[float]] = {name: [] for name in checks}
    for i in range(repeats + 1):
        for name, check in checks.items() if i % 2 else reversed(checks.items()):
            start = time.perf_counter()
            assert check(model)
            elapsed = time.perf_counter() - start
            if check is guard_reading_the_trainers_norm:
                elapsed = GUARD_ONLY[-1]  # the Trainer's norm is not the guard's cost
            if i:  # round 0 warms up
                times[name].append(elapsed)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["isfinite per parameter (before)"]
    text = markdown_table(
        ["check", "ms per optimizer step (median)", "vs before"],
        [[name, round(1000 * m, 1), ratio(m, base)] for name, m in medians.items()],
    )
    params = list(model.parameters())
    text = f"{len(params)} gradients, {sum(p.numel() for p in params):,} fp32 values\n\n{text}"
    print(text)
    save_results(
        "nan_guard",
        {
            "repeats": repeats,
            "times_s": times,
            "tables_markdown": text,
        },
    )


if __name__ == "__main__":
    main()
