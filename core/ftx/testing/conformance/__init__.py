"""The conformance kit: one call that checks an installed method plugin end to end.

:func:`check_plugin` runs every check below against the plugin ``name`` (an entry point in the
``ftx.plugins`` group that is installed in the current environment) and returns a
:class:`ConformanceReport`. The first check that fails raises ``AssertionError`` whose message
names the plugin, the check and what was wrong, so it reads well as a pytest failure::

    from ftx.testing.conformance import check_plugin

    def test_conformance(tmp_path):
        check_plugin("hello", tmp_path)

The checks, in order:

``discovery``
    :func:`ftx.plugins.discover` lists the plugin with status ``ok``; this also validates every
    hook implementation's signature against :mod:`ftx.hookspecs`.
``lazy-import``
    A fresh interpreter loads the entry point; none of torch, transformers, peft, trl or
    bitsandbytes may be imported by it (``ftx --help`` and ``ftx plugins`` stay fast).
``options``
    ``method_options`` returns ``None`` or a list of :class:`ftx.options.Option` with unique
    names whose defaults pass the plugin's own validation (type and choices);
    ``train_defaults`` returns ``None`` or a dict keyed by argument names.
``run``
    A real ``ftx run`` through the host (:func:`ftx.runner.prepare` / :func:`~ftx.runner.execute`)
    on a tiny random Llama (4 decoder blocks) and a tiny learnable dataset, ``steps`` optimiser
    steps at batch 4 on the CPU (or the GPU when there is one): the run finishes, ``summary.json``
    says which implementation (the plugin or ``core``) answered each of the four method hooks,
    the trainable parameter count is positive, and a complete checkpoint was written.
``loss``
    Every logged loss is finite and the mean of the last three is below the mean of the first
    three.
``export``
    ``model/`` loads with plain ``AutoModelForCausalLM.from_pretrained``, its logits are finite
    and differ from the base model's (training changed something), and it generates.
    For adapter methods (an ``adapter/`` directory), the adapter loads onto the base with
    ``peft.PeftModel.from_pretrained`` and gives the same logits as the merged ``model/``.
``learned``
    On the first 16 training rows (trained tokens only), ``model/`` has a lower loss than the
    base model: the same rows before and after, free of the batch-to-batch noise of the curve.
``cli``
    ``ftx plugins --json`` (a subprocess) lists the plugin as ``ok`` and
    ``ftx plugins show NAME --json`` describes its options.
``gpu-bf16``
    Only with CUDA: the run used the GPU, in bfloat16 where the GPU supports it. Without CUDA
    the check is recorded in ``report.skipped``.

The tiny model and data are built in ``workdir`` unless ``model``/``data`` are given; on two CPU
cores the whole kit takes about 15-20 seconds per plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ftx.testing.conformance.report import (
    DEFAULT_LEARNING_RATE,
    HEAVY_MODULES,
    LEARNED_ROWS,
    TINY_LAYERS,
    Checker,
    ConformanceReport,
)
from ftx.testing.conformance.run_checks import (
    check_export,
    check_gpu,
    check_learned,
    check_loss,
    check_run,
)
from ftx.testing.conformance.static_checks import (
    check_cli,
    check_discovery,
    check_lazy_import,
    check_options,
)

__all__ = [
    "DEFAULT_LEARNING_RATE",
    "HEAVY_MODULES",
    "LEARNED_ROWS",
    "TINY_LAYERS",
    "ConformanceReport",
    "check_plugin",
]


def check_plugin(
    name: str,
    workdir: str | Path,
    *,
    steps: int = 6,
    sets: Sequence[str] = (),
    learning_rate: float | None = DEFAULT_LEARNING_RATE,
    model: str | Path | None = None,
    data: str | Path | None = None,
) -> ConformanceReport:
    """Check the installed plugin ``name`` end to end; return a report or raise AssertionError.

    ``workdir`` receives the tiny model, the data and the run directory (a pytest ``tmp_path``
    is ideal). ``steps`` (at least 4) is the number of optimiser steps of the training check.
    ``sets`` are extra ``section.key=value`` overrides, applied after the kit's own (e.g.
    ``["method.r=4"]``). ``learning_rate`` is used for the run (``None``: the plugin's
    ``train_defaults``, else the core's). ``model`` (a Hugging Face directory) and ``data`` (a
    training file) replace the kit's tiny ones. Checks needing CUDA are skipped without it and
    listed in ``report.skipped``. The message of the ``AssertionError`` names the plugin, the
    failed check and the cause.
    """
    if steps < 4:
        raise ValueError(f"check_plugin: steps must be at least 4, got {steps}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    report = ConformanceReport(plugin=name)
    checker = Checker(report)

    with checker.check("discovery"):
        info = check_discovery(name, report)
    with checker.check("lazy-import"):
        check_lazy_import(name)
    with checker.check("options"):
        check_options(info, report)
    with checker.check("run"):
        prep, summary = check_run(
            name, workdir, steps, sets, learning_rate, model, data, report, checker
        )
    with checker.check("loss"):
        check_loss(report)
    with checker.check("export"):
        tokenizer, trained, base = check_export(report)
    with checker.check("learned"):
        check_learned(prep, tokenizer, trained, base, report)
    with checker.check("cli"):
        check_cli(name)
    check_gpu(prep, summary, report, checker)
    return report
