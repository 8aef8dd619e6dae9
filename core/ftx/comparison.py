"""``ftx compare``: the same data through several methods and grid values, one report.

The compare is a set of cells (:mod:`ftx.compare_grid`): every plugin × the values of each
``--grid`` axis that reaches it × ``--seeds``. Each cell runs in its own process
(``OUT/<plugin>[/<key=value,…>]``) so that peak memory is measured per run; each keeps its
method's own defaults for what the grid does not set. ``--set``s are routed per run
(:func:`route_sets`): ``PLUGIN:section.key=value`` to that plugin's runs only, unscoped
``model.*``/``data.*``/``train.*`` to every run, an unscoped ``method.KEY`` to every compared
plugin that declares option ``KEY``. ``OUT/compare.json`` records the compare
(:mod:`ftx.compare_dir`): running it again continues it. The base model is scored once
(``OUT/base-scores.json``). The report (:mod:`ftx.compare_report`: ``compare.md``,
``compare.html``, plots) is built from the directories only, so it can be rebuilt any time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftx.artifacts import write_json
from ftx.compare_dir import SPEC_FILE, cell_state, check_directory, compare_spec
from ftx.compare_grid import Cell, expand, parse_grid, seed_base
from ftx.compare_report import print_table, write_report
from ftx.errors import BadInput, RunFailed, RunInterrupted
from ftx.stop_signals import signals_interrupt

if TYPE_CHECKING:
    from ftx.runner import RunRequest

BASE_SCORES = "base-scores.json"
"""The base model's held-out scores, scored by the first cell and reused by the others
(:mod:`ftx.runner.base_scores`)."""


def parse_plugins(text: str) -> list[str]:
    """``"fft,sft,qlora"`` -> ``["fft", "sft", "qlora"]``; BadInput unless distinct, non-empty."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if len(names) != len(set(names)) or not names:
        raise BadInput(f"--plugins {text!r}: give distinct plugin names, e.g. fft,sft,qlora")
    return names


def declared_options(names: list[str]) -> dict[str, set[str]]:
    """The option names each plugin declares (its ``method_options`` hook: cheap, no torch);
    BadInput for a plugin that is not installed or does not load."""
    from ftx.plugins import declared_options as checked_options
    from ftx.plugins import discover, get_plugin, manager_for

    found = discover()
    declared = {}
    for name in names:
        pm = manager_for(get_plugin(name, found), defaults=False)
        options = checked_options(pm, "method_options")
        declared[name] = {o.name for o in options or []}
    return declared


def route_sets(sets: list[str], declared: dict[str, set[str]]) -> dict[str, list[str]]:
    """Which ``--set`` goes to which run: ``{plugin: [expr, …]}`` for the plugins in ``declared``.

    ``PLUGIN:section.key=value`` goes to that plugin's run only (BadInput if it is not compared);
    an unscoped ``method.KEY`` to every plugin that declares ``KEY`` (BadInput if none does);
    any other unscoped setting to every run. Values are checked later, by each run's prepare.
    """
    from ftx.config import parse_set, plugins_for

    routed: dict[str, list[str]] = {name: [] for name in declared}
    for expr in sets:
        for name in plugins_for(parse_set(expr), declared, role="compared"):
            routed[name].append(expr)
    return routed


FORGETTING_SET = "data.eval_forgetting=true"
"""What ``--forgetting`` (the default) adds to every cell's ``--set``s, before the user's own."""


def run_requests(
    names: list[str],
    out: Path,
    sets: list[str],
    *,
    cells: list[Cell] | None = None,
    objective: str | None = None,
    config_file: str | None = None,
    model: str | None = None,
    data: str | None = None,
    forgetting: bool = False,
    overwrite: bool = False,
) -> list[RunRequest]:
    """One ``RunRequest`` per cell (default: one per plugin, no grid), into ``out/<cell>``,
    each with its own sets (routed ``--set``s, then the cell's grid values and seed), all under
    ``objective`` (None: the default) and sharing ``out/base-scores.json``."""
    from ftx.runner import RunRequest

    routed = route_sets(sets, declared_options(names))
    cells = cells if cells is not None else [Cell(name) for name in names]
    extra = [FORGETTING_SET] if forgetting else []
    return [
        RunRequest(
            plugin=cell.plugin,
            objective=objective,
            config_file=config_file,
            model=model,
            data=data,
            output=str(out / cell.name),
            sets=[*extra, *routed[cell.plugin], *cell.sets()],
            overwrite=overwrite,
            base_scores=str(out / BASE_SCORES),
        )
        for cell in cells
    ]


def run_argv(req: RunRequest) -> list[str]:
    """The ``ftx run`` arguments that make the same request in a fresh process."""
    return [
        *("--plugin", str(req.plugin), "--output", str(req.output)),
        *(["--objective", req.objective] if req.objective else []),
        *(["--config", req.config_file] if req.config_file else []),
        *(["--model", req.model] if req.model else []),
        *(["--data", req.data] if req.data else []),
        *[x for s in req.sets for x in ("--set", s)],
        *(["--resume"] if req.resume else []),
        *(["--overwrite"] if req.overwrite and not req.resume else []),
        *(["--base-scores", req.base_scores] if req.base_scores else []),
    ]


def plan_cells(
    names: list[str],
    sets: list[str],
    grid: list[str],
    *,
    seeds: int = 1,
    objective: str | None = None,
    config_file: str | None = None,
    model: str | None = None,
    data: str | None = None,
    forgetting: bool = True,
) -> tuple[list[Cell], dict[str, Any]]:
    """The cells of a compare and its spec (``compare.json``); BadInput for a bad grid."""
    declared = declared_options(names)
    route_sets(sets, declared)  # a --set that reaches nobody is refused before the grid
    cells = expand(names, parse_grid(grid), declared, seeds=seeds, seed_base=seed_base(sets))
    spec = compare_spec(
        cells,
        plugins=names,
        grid=list(grid),
        seeds=seeds,
        sets=list(sets),
        objective=objective,
        model=model,
        data=data,
        config=config_file,
        forgetting=forgetting,
    )
    return cells, spec


def compare(
    names: list[str],
    sets: list[str],
    *,
    grid: list[str] | None = None,
    seeds: int = 1,
    forgetting: bool = True,
    gpu_mem: int | None = None,
    objective: str | None = None,
    config_file: str | None = None,
    model: str | None = None,
    data: str | None = None,
    output: str | None = None,
    overwrite: bool = False,
    console: Any,
) -> Path:
    """``ftx compare``'s work (the command and :func:`ftx.compare` call it).

    Expand the grid into cells, check the output directory (a new one, this compare's own —
    then finished cells are skipped and an interrupted one resumes — or, with ``overwrite``,
    anything else, set aside as ``OUT.previous-TIME`` until this compare finishes) and every
    pending cell's whole request before the first starts; run each pending cell in its own
    process; write the report and print its table; return the output directory.
    After the report: :class:`RunInterrupted` (exit 130) if a cell was interrupted,
    :class:`RunFailed` (exit 1) if one failed; the same call again resumes or restarts them."""
    import shutil
    from dataclasses import replace
    from datetime import datetime

    from ftx.runner import prepare
    from ftx.runner.rundir import check_output_path, free_sibling

    requested = output if output is not None else f"runs/compare-{datetime.now():%Y%m%d-%H%M%S}"
    check_output_path(requested)
    out = Path(requested)
    cells, spec = plan_cells(
        names,
        sets,
        list(grid or []),
        seeds=seeds,
        objective=objective,
        config_file=config_file,
        model=model,
        data=data,
        forgetting=forgetting,
    )
    where = check_directory(out, spec, overwrite=overwrite)
    requests = run_requests(
        names,
        out,
        sets,
        cells=cells,
        objective=objective,
        config_file=config_file,
        model=model,
        data=data,
        forgetting=forgetting,
    )
    states = {
        req.output: "new" if where != "continue" else cell_state(Path(str(req.output)))
        for req in requests
    }
    pending = []
    for req in requests:
        state = states[req.output]
        if state == "finished":
            continue
        req.resume, req.overwrite = state == "resume", state == "restart"
        pending.append(req)
    for req in pending:  # every pending run's whole request is checked before anything runs
        try:
            prepare(
                replace(req, sets=list(req.sets), overwrite=req.overwrite or where == "replace")
            )
        except BadInput as exc:
            cell = Path(str(req.output)).relative_to(out)
            raise BadInput(f"run {cell}: {exc.message}", hint=exc.hint) from None
    set_aside = None
    if where == "replace":
        set_aside = free_sibling(out, "previous")
        out.rename(set_aside)
        console.print(f"the earlier contents of {out} are set aside at {set_aside}")
    write_json(out / SPEC_FILE, spec)
    skipped = len(requests) - len(pending)
    if skipped:
        console.print(f"ftx compare: {skipped} of {len(requests)} cells already finished")
    codes = {}
    try:
        for req in pending:
            verb = "resuming" if req.resume else "running"
            console.rule(f"ftx compare: {verb} {Path(str(req.output)).relative_to(out)}")
            codes[req.output] = run_one(req)
    except KeyboardInterrupt:
        console.print(
            f"[yellow]ftx compare interrupted[/]: run the same command again to resume it ({out})"
        )
        raise
    content = write_report(out, spec, gpu_mem=gpu_mem)
    print_table(content, console)
    console.print(
        f"report: {out / 'compare.md'}  html: {out / 'compare.html'}  plot: {out / 'compare.png'}"
    )
    stopped = [str(name) for name, code in codes.items() if code == RunInterrupted.exit_code]
    if stopped:
        said = (
            f"ftx compare: {', '.join(stopped)} interrupted; run the same command again to "
            f"resume ({out})"
        )
        console.print(f"[yellow]{said}[/]", highlight=False)
        raise RunInterrupted(said)
    failed = [str(name) for name, code in codes.items() if code]
    if failed:
        again = "rerun the same ftx compare to resume or restart them"
        raise RunFailed(f"ftx compare: {', '.join(failed)} did not finish; {again} ({out})")
    if set_aside is not None:
        shutil.rmtree(set_aside, ignore_errors=True)
    return out


def run_one(req: RunRequest) -> int:
    """``ftx run`` for ``req`` in a fresh process (peak memory is per method); its exit code.

    In a notebook (Jupyter, Colab) the child's output is relayed through ``sys.stderr``, which
    the notebook shows in the cell; elsewhere the child writes to the terminal itself.

    Stopped (Ctrl-C, SIGTERM, SLURM's SIGUSR1, the notebook's interrupt button): each signal
    this process gets is passed on to the child, once, so the child saves its checkpoint and
    exits (a second one tells it to stop at once, as it would tell ``ftx run``); then
    ``KeyboardInterrupt`` is raised. The child runs in its own process group, so that a
    terminal's Ctrl-C reaches it only through this process, not twice; it is never killed
    half-way through writing its checkpoint, and never left running on its own: the compare
    can resume it."""
    cmd = [sys.executable, "-m", "ftx.cli", "run", *run_argv(req)]
    relay = any(m in sys.modules for m in ("ipykernel", "google.colab"))
    piped = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    own_group: dict[str, Any] = (
        {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    )
    with (
        signals_interrupt(),
        subprocess.Popen(cmd, **own_group, **(piped if relay else {})) as child,
    ):
        stopped = False
        while True:
            try:
                _relay(child)
                code = child.wait()
                break
            except KeyboardInterrupt as stop:
                stopped = True
                child.send_signal(_signal_of(stop))
        if stopped:
            raise KeyboardInterrupt
        return code


def _signal_of(stop: KeyboardInterrupt) -> int:
    """The signal that raised ``stop`` (:func:`ftx.stop_signals.signals_interrupt` names it),
    SIGINT when it does not say."""
    name = stop.args[0] if stop.args else "SIGINT"
    return int(getattr(signal.Signals, str(name), signal.SIGINT))


def _relay(child: subprocess.Popen) -> None:
    """Copy the child's piped output to ``sys.stderr`` until it closes (nothing if unpiped)."""
    for line in child.stdout or ():
        sys.stderr.write(line)
