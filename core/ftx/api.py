"""The Python API: ``ftx.run``, ``ftx.compare``, ``ftx.plan`` — the CLI's engine, from Python.

Each function builds the request the CLI would build and calls the functions the CLI commands
call (:func:`ftx.runner.prepare` and :func:`ftx.runner.execute`, :func:`ftx.comparison.compare`,
:func:`ftx.planner.plan`): one validation, one run, one report. The config sections are keyword
arguments holding dicts (``train={"max_steps": 50}``, ``method={"r": 8}``); each item becomes the
``--set section.key=value`` the CLI would receive (the value written as JSON, which the ``--set``
parser reads back exactly), so precedence and checks are the CLI's.

Errors: bad input raises :class:`ftx.errors.BadInput` (``.message`` and ``.hint`` are what the
CLI prints, before any model is loaded and with nothing written); a run stopped by Ctrl-C or a
notebook's interrupt button raises :class:`ftx.errors.RunInterrupted` after the checkpoint is
saved, with the run's :class:`~ftx.results.RunResult` as ``.result``; ``ftx.run(...,
output=..., resume=True)`` continues it. :class:`ftx.errors.RunFailed` is a run that failed for a
reason ftx explains. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftx.errors import BadInput, RunInterrupted

if TYPE_CHECKING:
    from ftx.results import CompareResult, RunResult

Section = Mapping[str, Any] | None


def settings(**sections: Section) -> list[str]:
    """``settings(train={"max_steps": 4})`` -> ``["train.max_steps=4"]``: config sections as
    the CLI's ``--set`` expressions (values as JSON, read back exactly by the ``--set`` parser)."""
    out = []
    for section, values in sections.items():
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise BadInput(
                f"{section}=: expected a dict of {section} settings, got {type(values).__name__}",
                hint=f"e.g. {section}={{'key': value}}",
            )
        for key, value in values.items():
            if not isinstance(key, str) or not key or "=" in key:
                raise BadInput(f"{section}: {key!r} is not a config key")
            out.append(f"{section}.{key}={json.dumps(value, default=str)}")
    return out


def method_settings(method: Section) -> list[str]:
    """Method options for several plugins (compare, plan): ``{"r": 8}`` -> ``method.r=8`` (each
    plugin that declares ``r``), ``{"qlora:r": 8}`` -> ``qlora:method.r=8`` (that plugin)."""
    out = []
    for key, value in (method or {}).items():
        scope, colon, name = str(key).rpartition(":")
        out.append(f"{scope}{colon}method.{name}={json.dumps(value, default=str)}")
    return out


def grid_exprs(grid: Mapping[str, Sequence[Any]] | None) -> list[str]:
    """``{"train.learning_rate": [1e-4, 3e-4]}`` -> ``["train.learning_rate=0.0001,0.0003"]``:
    the CLI's ``--grid`` expressions (each value written as JSON, as :func:`settings` does)."""
    out = []
    for key, values in (grid or {}).items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise BadInput(
                f"grid[{key!r}]: expected a list of values, got {values!r}",
                hint=f"e.g. grid={{{key!r}: [value1, value2]}}",
            )
        texts = [json.dumps(v, default=str) for v in values]
        out.append(f"{key}={','.join(texts)}")
    return out


def _split(value: str | Path | Mapping[str, Any] | None, name_key: str) -> tuple[Any, Section]:
    """``data="x.jsonl"`` or ``data={"path": "x.jsonl", "max_length": 256}``: the flag value
    (path, model name, objective name) and the rest of the section."""
    if value is None or isinstance(value, (str, Path)):
        return (None if value is None else str(value)), None
    if not isinstance(value, Mapping):
        raise BadInput(f"expected a string or a dict, got {type(value).__name__}: {value!r}")
    rest = dict(value)
    named = rest.pop(name_key, None)
    return (None if named is None else str(named)), rest


def run(
    plugin: str | None = None,
    *,
    data: str | Path | Mapping[str, Any] | None = None,
    model: str | Path | Mapping[str, Any] | None = None,
    objective: str | Mapping[str, Any] | None = None,
    train: Section = None,
    method: Section = None,
    config: str | Path | None = None,
    output: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    force: bool = False,
    console: Any = None,
) -> RunResult:
    """One fine-tuning run, as ``ftx run``; returns the finished run's :class:`RunResult`.

    ``plugin``: the method (``"qlora"``, ``"sft"``, ``"fft"``, …); ``data``/``model``: a path
    (default: the demo) or a dict of that config section with ``path``/``name`` in it;
    ``objective``: a name or a dict with ``name`` and the objective's options; ``train``,
    ``method``: dicts of those sections; ``config``: a YAML run config (the dicts win over it);
    ``output``, ``resume``, ``overwrite``, ``force``: as the CLI's flags. ``console``: a rich
    console for progress (default: one on stdout, which Jupyter renders in the cell).

    Raises :class:`BadInput`, :class:`RunInterrupted` (checkpoint saved; ``.result``) or
    :class:`ftx.errors.RunFailed`.
    """
    from ftx.process_env import choose_wait_policy_if_possible

    choose_wait_policy_if_possible()  # before anything loads torch, when it still can
    from ftx.results import RunResult
    from ftx.runner import RunRequest, execute, prepare

    data_path, data_rest = _split(data, "path")
    model_name, model_rest = _split(model, "name")
    objective_name, objective_rest = _split(objective, "name")
    req = RunRequest(  # what ``ftx run`` builds from its flags
        plugin=plugin,
        objective=objective_name,
        config_file=None if config is None else str(config),
        model=model_name,
        data=data_path,
        output=None if output is None else str(output),
        sets=settings(
            model=model_rest, data=data_rest, train=train, method=method, objective=objective_rest
        ),
        resume=resume,
        overwrite=overwrite,
        force=force,
    )
    prep = prepare(req)  # bad input raises here, before anything is loaded or written
    console = console if console is not None else _console()
    try:
        execute(prep, console)
    except (RunInterrupted, KeyboardInterrupt):
        result = RunResult(prep.output_dir)
        if result.status != "interrupted":
            raise
        again = f"ftx.run({prep.plugin.name!r}, output={str(prep.output_dir)!r}, resume=True)"
        stopped = RunInterrupted(
            f"run interrupted; {result.checkpoint_note()}: continue it with {again}"
        )
        stopped.result = result  # type: ignore[attr-defined]
        raise stopped from None
    return RunResult(prep.output_dir)


def compare(
    plugins: str | Sequence[str],
    *,
    data: str | Path | Mapping[str, Any] | None = None,
    model: str | Path | Mapping[str, Any] | None = None,
    objective: str | None = None,
    train: Section = None,
    method: Section = None,
    config: str | Path | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: int = 1,
    forgetting: bool = True,
    gpu_mem: str | int | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    console: Any = None,
) -> CompareResult:
    """``ftx compare``: the same data through several methods and grid values (each run in
    its own process, as the CLI does); returns a :class:`CompareResult` (rows, runs, report).
    ``method`` options go to each compared plugin that declares them, as an unscoped
    ``--set method.KEY`` does; ``{"qlora:r": 8}`` scopes one to a plugin. ``grid``:
    ``{"train.learning_rate": [1e-4, 3e-4], "qlora:method.r": [8, 32]}`` as ``--grid``;
    ``seeds``, ``forgetting``, ``gpu_mem`` (bytes or ``"16GB"``), ``overwrite``: as the CLI's
    ``--seeds``, ``--forgetting/--no-forgetting``, ``--gpu-mem``, ``--overwrite``; the same
    ``output`` again continues a compare."""
    from ftx import comparison
    from ftx.results import CompareResult

    names = comparison.parse_plugins(plugins if isinstance(plugins, str) else ",".join(plugins))
    data_path, data_rest = _split(data, "path")
    model_name, model_rest = _split(model, "name")
    sets = settings(model=model_rest, data=data_rest, train=train) + method_settings(method)
    from ftx.estimates import parse_size

    out = comparison.compare(
        names,
        sets,
        grid=grid_exprs(grid),
        seeds=seeds,
        forgetting=forgetting,
        gpu_mem=parse_size(gpu_mem) if isinstance(gpu_mem, str) else gpu_mem,
        objective=objective,
        config_file=None if config is None else str(config),
        model=model_name,
        data=data_path,
        output=None if output is None else str(output),
        overwrite=overwrite,
        console=console if console is not None else _console(),
    )
    return CompareResult(out)


def plan(
    model: str | Path | None = None,
    *,
    seq_len: int | None = None,
    batch_size: int | None = None,
    gpu_mem: str | int | None = None,
    device: str = "auto",
    dtype: str | None = None,
    method: Mapping[str, Any] | None = None,
    objective: str = "supervised",
    optim: str | None = None,
) -> dict[str, Any]:
    """``ftx plan --json``: peak training memory per installed method and a recommendation
    (:func:`ftx.planner.plan`'s dict, sizes in bytes). ``gpu_mem``: bytes or ``"24GB"``;
    ``method``: options as in :func:`compare`; ``optim``: ``train.optim`` (``--optim``)."""
    from ftx.process_env import choose_wait_policy_if_possible

    choose_wait_policy_if_possible()  # the first call that loads torch decides it
    from ftx.estimates import parse_size
    from ftx.planner import plan as plan_memory

    sets = method_settings(method)
    return plan_memory(
        None if model is None else str(model),
        seq_len=seq_len,
        batch_size=batch_size,
        gpu_mem=parse_size(gpu_mem) if isinstance(gpu_mem, str) else gpu_mem,
        device=device,
        dtype=dtype,
        settings=sets,
        objective=objective,
        optim=optim,
    )


def _console() -> Any:
    """Progress for the API: a rich console on stdout (in Jupyter, rendered in the cell, the
    step lines as one display that updates in place)."""
    from ftx.live_progress import notebook_console

    return notebook_console()
