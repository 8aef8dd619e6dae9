"""The conformance kit: one call that checks an installed plugin, a method or an objective, end
to end.

:func:`check_plugin` runs every check below against the plugin ``name`` (an entry point in the
``ftx.plugins`` group, a method, or in ``ftx.objectives``, an objective, installed in the current
environment) and returns a :class:`ConformanceReport`. The first check that fails raises
``AssertionError`` whose message names the plugin, the check, the method × objective pair of a
run's check, and what was wrong, so it reads well as a pytest failure::

    from ftx.testing.conformance import check_plugin

    def test_conformance(tmp_path):
        check_plugin("hello", tmp_path)

A **method** is checked under the ``supervised`` objective (``objectives="all"``: under every
installed objective, or a list of names); an **objective** under every installed method (or
``methods=[...]``). The checks, in order:

``discovery``
    :func:`ftx.plugins.discover` lists the plugin with status ``ok``; this also validates every
    hook implementation's signature against :mod:`ftx.hookspecs`. The methods or objectives to
    pair it with are installed and load.
``lazy-import``
    A fresh interpreter loads the entry point; none of torch, transformers, peft, trl or
    bitsandbytes may be imported by it (``ftx --help`` and ``ftx plugins`` stay fast).
``options``
    ``method_options`` (an objective: ``objective_options``) returns ``None`` or a list of
    :class:`ftx.options.Option` with unique names whose defaults pass the plugin's own
    validation (type, choices, range); ``train_defaults`` returns ``None`` or a dict keyed by
    argument names, for each objective it will run under.
``traits`` (objectives)
    ``objective_traits`` returns an :class:`ftx.context.ObjectiveTraits`: a non-empty tuple of
    metrics, ``sequences_per_row`` and ``min_batch_size`` at least 1, ``reference`` ``none`` or
    ``policy``, the kind of rows in ``data``.
``arguments`` (objectives)
    ``arguments_class`` returns ``None`` or ``(a transformers.TrainingArguments subclass, fixed
    keyword arguments that are fields of it)``.

Then, for each method × objective pair, on a real run:

``run``
    A real ``ftx run`` through the host (:func:`ftx.runner.prepare` / :func:`~ftx.runner.execute`)
    on a tiny random Llama (4 decoder blocks) and tiny learnable data in the objective's shape
    (``ObjectiveTraits.data``: conversations, preference pairs or labelled completions of one
    task, :mod:`ftx.testing.tiny`), ``steps`` optimiser steps at batch 4 (or the objective's
    ``min_batch_size``) on the CPU (or the GPU when there is one): the run finishes,
    ``summary.json`` says which implementation (the method, the objective or ``core``)
    answered each hook, the trainable parameter count is positive, a complete checkpoint was
    written, and 8 held-out rows were scored before and after with ``data.eval_metric`` (the
    objective's first metric).
``loss``
    Every logged loss is finite and the mean of the last three is below the mean of the first
    three.
``export``
    ``model/`` loads with plain ``AutoModelForCausalLM.from_pretrained``, its logits are finite
    and differ from the base model's (training changed something), and it generates.
    For adapter methods (an ``adapter/`` directory), the adapter loads onto the base with
    ``peft.PeftModel.from_pretrained`` and gives the same logits as the merged ``model/``.
``learned``
    On the first 16 training rows, ``model/`` fits better than the base model: a lower loss on
    the trained tokens (rows the objective tokenises to ``input_ids``/``labels``), or a larger
    log-probability margin of chosen over rejected answers (preference pairs) or of desirable
    over undesirable completions (labelled completions); skipped, with the reason, for rows of
    another kind (:mod:`~ftx.testing.conformance.fit`).
``gpu-bf16``
    Only with CUDA: the run used the GPU, in bfloat16 where the GPU supports it. Without CUDA
    the check is recorded in ``report.skipped``.

And last:

``cli``
    ``ftx plugins --json`` (a subprocess) lists the plugin as ``ok`` and
    ``ftx plugins show NAME --json`` describes its options.

The tiny model and data are built in ``workdir`` unless ``model``/``data``/``eval_data`` are
given; on two CPU cores a run takes a few seconds, after a one-time import of the training
libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ftx.catalogue import DEFAULT_OBJECTIVE
from ftx.testing.conformance.data import Given, kit_files, learning_rate_for
from ftx.testing.conformance.report import (
    DEFAULT_LEARNING_RATE,
    HEAVY_MODULES,
    HELDOUT_ROWS,
    LEARNED_ROWS,
    RUN_CHECKS,
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
    check_arguments,
    check_cli,
    check_discovery,
    check_lazy_import,
    check_options,
    check_traits,
    installed,
)

__all__ = [
    "DEFAULT_LEARNING_RATE",
    "HEAVY_MODULES",
    "HELDOUT_ROWS",
    "LEARNED_ROWS",
    "TINY_LAYERS",
    "ConformanceReport",
    "check_plugin",
]

Names = str | Sequence[str] | None
"""``None`` (the default), ``"all"`` (every installed one) or a list of names."""


def check_plugin(
    name: str,
    workdir: str | Path,
    *,
    steps: int = 6,
    sets: Sequence[str] = (),
    learning_rate: float | Mapping[str, float | None] | None = DEFAULT_LEARNING_RATE,
    model: str | Path | None = None,
    data: Given = None,
    eval_data: Given = None,
    objectives: Names = None,
    methods: Names = None,
) -> ConformanceReport:
    """Check the installed plugin ``name`` end to end; return a report or raise AssertionError.

    ``name`` is a method (checked under ``objectives``: ``None``, the default, is
    ``supervised``; ``"all"`` every installed objective; or a list of objective names) or an
    objective (checked under ``methods``: ``None`` or ``"all"``, every installed method; or a
    list of method names). ``workdir`` receives the tiny model, the data and one run directory
    per pair (a pytest ``tmp_path`` is ideal). ``steps`` (at least 4) is the number of
    optimiser steps of each run. ``sets`` are extra ``[PLUGIN:]section.key=value`` overrides,
    applied after the kit's own (e.g. ``["method.r=4"]``; ``qlora:method.r=4`` for one
    method of several). ``learning_rate`` is used for the runs (``None``: the plugins'
    ``train_defaults``, else the core's; a mapping gives it per method, the kit's 5e-3 for a
    method it does not name). ``model`` (a Hugging Face directory), ``data`` (a training file)
    and ``eval_data`` (a held-out file) replace the kit's tiny ones; ``data``/``eval_data``
    may map objective names to files (the kit's own for the others). Checks needing CUDA are
    skipped without it and listed in ``report.skipped``. The message of the ``AssertionError``
    names the plugin, the failed check, the method × objective pair of a run, and the cause.
    """
    if steps < 4:
        raise ValueError(f"check_plugin: steps must be at least 4, got {steps}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    report = ConformanceReport(plugin=name)
    checker = Checker(report)

    with checker.check("discovery"):
        info = check_discovery(name, report)
        pairs = _pairs(info, objectives, methods, report)
    with checker.check("lazy-import"):
        check_lazy_import(name, info.kind)
    with checker.check("options"):
        check_options(info, report, sorted({o.name for _, o in pairs}))
    traits = {}
    if info.kind == "objective":
        with checker.check("traits"):
            traits[name] = check_traits(info, report)
        with checker.check("arguments"):
            check_arguments(info, report)
    for method, objective in pairs:
        run = ConformanceReport(
            plugin=name, kind=info.kind, method=method.name, objective=objective.name
        )
        run_checker = Checker(run, pair=run.pair)
        with run_checker.check("run"):
            if objective.name not in traits:
                traits[objective.name] = _traits_of(objective)
            files = kit_files(objective.name, traits[objective.name], workdir, data, eval_data)
            rate = learning_rate_for(method.name, learning_rate, DEFAULT_LEARNING_RATE)
            prep, summary = check_run(
                method.name,
                objective.name,
                traits[objective.name],
                workdir,
                steps,
                sets,
                rate,
                model,
                files,
                run,
                run_checker,
            )
        run.traits = traits[objective.name]
        with run_checker.check("loss"):
            check_loss(run)
        with run_checker.check("export"):
            tokenizer, trained, base = check_export(run)
        with run_checker.check("learned"):
            check_learned(prep, tokenizer, trained, base, run)
        check_gpu(prep, summary, run, run_checker)
        report.take_run(run)
    report.merge_run_checks(RUN_CHECKS[:-1])
    with checker.check("cli"):
        check_cli(name)
    report.merge_run_checks(RUN_CHECKS[-1:])
    return report


def _pairs(info: Any, objectives: Names, methods: Names, report: ConformanceReport) -> list:
    """``[(method, objective), …]`` (:class:`ftx.plugins.PluginInfo` each) to run."""
    from ftx.plugins import get_plugin

    if info.kind == "objective":
        assert objectives is None, f"'{info.name}' is an objective: pass methods=, not objectives="
        return [(m, info) for m in installed(methods or "all", "method", report)]
    assert methods is None, f"'{info.name}' is a method: pass objectives=, not methods="
    if objectives is None:
        return [(info, get_plugin(DEFAULT_OBJECTIVE, kind="objective"))]
    return [(info, o) for o in installed(objectives, "objective", report)]


def _traits_of(objective: Any) -> Any:
    from ftx.context import ObjectiveTraits
    from ftx.plugins import call_first, manager_for

    traits, _ = call_first(manager_for(None, objective=objective), "objective_traits")
    return traits if isinstance(traits, ObjectiveTraits) else ObjectiveTraits()
