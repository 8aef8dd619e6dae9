"""``ftx compare``: the same data and budget through several methods, one report.

Each plugin runs in its own process (``OUT/<plugin>/``) so that peak memory is measured per
method; each keeps its own default learning rate. ``--set``s are routed per run
(:func:`route_sets`): ``PLUGIN:section.key=value`` to that plugin's run only, unscoped
``model.*``/``data.*``/``train.*`` to every run, an unscoped ``method.KEY`` to every compared
plugin that declares option ``KEY``. The report (rich table, ``compare.md``, ``compare.png`` with
every loss curve) is built from the runs' ``summary.json`` and ``metrics.jsonl`` only, so it can
be rebuilt from the directories at any time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftx.artifacts import write_text
from ftx.errors import BadInput, RunFailed
from ftx.report import plot_losses, read_metrics

if TYPE_CHECKING:
    from ftx.runner import RunRequest

COLUMNS = (
    ("plugin", "method"),
    ("status", "status"),
    ("trainable", "trainable params"),
    ("memory", "peak memory"),
    ("tokens_per_s", "tokens/s"),
    ("wall", "wall time"),
    ("loss", "final loss"),
    ("before", "held-out before"),
    ("after", "held-out after"),
)


def parse_plugins(text: str) -> list[str]:
    """``"fft,sft,qlora"`` -> ``["fft", "sft", "qlora"]``; BadInput unless distinct, non-empty."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if len(names) != len(set(names)) or not names:
        raise BadInput(f"--plugins {text!r}: give distinct plugin names, e.g. fft,sft,qlora")
    return names


def declared_options(names: list[str]) -> dict[str, set[str]]:
    """The option names each plugin declares (its ``method_options`` hook: cheap, no torch);
    BadInput for a plugin that is not installed or does not load."""
    from ftx.plugins import call_first, discover, get_plugin, manager_for

    found = discover()
    declared = {}
    for name in names:
        pm = manager_for(get_plugin(name, found), defaults=False)
        options, _ = call_first(pm, "method_options")
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


def run_requests(
    names: list[str],
    out: Path,
    sets: list[str],
    *,
    objective: str | None = None,
    config_file: str | None = None,
    model: str | None = None,
    data: str | None = None,
    overwrite: bool = False,
) -> list[RunRequest]:
    """One ``RunRequest`` per compared plugin, into ``out/<plugin>``, each with its own sets,
    all under ``objective`` (None: the default)."""
    from ftx.runner import RunRequest

    routed = route_sets(sets, declared_options(names))
    return [
        RunRequest(
            plugin=name,
            objective=objective,
            config_file=config_file,
            model=model,
            data=data,
            output=str(out / name),
            sets=routed[name],
            overwrite=overwrite,
        )
        for name in names
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
        *(["--overwrite"] if req.overwrite else []),
    ]


def compare(
    names: list[str],
    sets: list[str],
    *,
    objective: str | None = None,
    config_file: str | None = None,
    model: str | None = None,
    data: str | None = None,
    output: str | None = None,
    overwrite: bool = False,
    console: Any,
) -> Path:
    """``ftx compare``'s work (the command and :func:`ftx.compare` call it): check every run's
    whole request before the first starts, run each, write the report and print its table;
    return the output directory. ``SystemExit(1)`` after the report if any run failed."""
    from datetime import datetime

    from ftx.runner import prepare

    out = Path(output or f"runs/compare-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise BadInput(f"output directory {out} already exists", hint="pass --overwrite")
    requests = run_requests(
        names,
        out,
        sets,
        objective=objective,
        config_file=config_file,
        model=model,
        data=data,
        overwrite=overwrite,
    )
    for req in requests:  # every run's whole request is checked before anything runs
        prepare(req)
    codes = {}
    for req in requests:
        console.rule(f"ftx compare: {req.plugin}")
        codes[req.plugin] = run_one(req)
    rows = [row_for(name, out / name) for name in names]
    write_report(out, rows)
    print_table(rows, console)
    console.print(f"report: {out / 'compare.md'}  plot: {out / 'compare.png'}")
    failed = [name for name, code in codes.items() if code]
    if failed:
        raise RunFailed(f"ftx compare: {', '.join(failed)} did not finish (report: {out})")
    return out


def run_one(req: RunRequest) -> int:
    """``ftx run`` for ``req`` in a fresh process (peak memory is per method); its exit code.

    In a notebook (Jupyter, Colab) the child's output is relayed through ``sys.stderr``, which
    the notebook shows in the cell; elsewhere the child writes to the terminal itself."""
    cmd = [sys.executable, "-m", "ftx.cli", "run", *run_argv(req)]
    if not any(m in sys.modules for m in ("ipykernel", "google.colab")):
        return subprocess.call(cmd)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        for line in child.stdout or ():
            sys.stderr.write(line)
    return child.returncode


def row_for(plugin: str, run_dir: Path) -> dict[str, Any]:
    """One report row from a run directory (missing numbers become ``None``)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {"status": "failed (no summary)"}
    trainable, total = summary.get("trainable_params"), summary.get("total_params")
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    return {
        "plugin": plugin,
        "objective": summary.get("objective"),
        "status": summary.get("status"),
        "trainable": trainable,
        "trainable_share": trainable / total if trainable and total else None,
        "memory": summary.get("peak_memory_bytes"),
        "tokens_per_s": summary.get("tokens_per_s"),
        "wall": summary.get("wall_time_s"),
        "loss": summary.get("final_loss"),
        "metric": after.get("metric") or before.get("metric"),
        "before": before.get("score"),
        "after": after.get("score"),
    }


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if value is None:
        return "–"
    if key == "trainable":
        share = row.get("trainable_share")
        return f"{value:,}" + (f" ({100 * share:.1f}%)" if share is not None else "")
    if key == "memory":
        return f"{value / 2**30:.2f} GiB"
    if key == "wall":
        return f"{value:.0f} s"
    if key in ("before", "after"):
        return f"{value:.3f}"
    if key == "loss":
        return f"{value:.4f}"
    return str(value)


def write_report(out: Path, rows: list[dict[str, Any]]) -> str:
    """Write ``compare.md`` and ``compare.png`` under ``out``; return the markdown."""
    plot_losses(
        {r["plugin"]: read_metrics(out / r["plugin"]) for r in rows},
        out / "compare.png",
        "ftx compare: training loss",
    )
    metric = next((r["metric"] for r in rows if r.get("metric")), "metric")
    header = [
        label if key not in ("before", "after") else f"{label} ({metric})" for key, label in COLUMNS
    ]
    objective = next((r["objective"] for r in rows if r.get("objective")), None)
    title = f"# ftx compare (objective: {objective})" if objective else "# ftx compare"
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(key, row) for key, _ in COLUMNS) + " |")
    lines += ["", "![loss curves](compare.png)", ""]
    text = "\n".join(lines)
    write_text(out / "compare.md", text)
    return text


def print_table(rows: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    table = Table(title="ftx compare")
    for _, label in COLUMNS:
        table.add_column(label)
    for row in rows:
        table.add_row(*(_cell(key, row) for key, _ in COLUMNS))
    console.print(table)
