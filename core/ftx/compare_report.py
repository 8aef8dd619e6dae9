"""``ftx compare``'s report, built from the compare directory alone (``compare.json`` and each
cell's ``summary.json``, ``config.yaml``, ``metrics.jsonl``), so it can be rebuilt any time.

One row per group (a plugin and its grid values; its seeds pooled, :mod:`ftx.compare_stats`):
method, grid values, trainable parameters, peak memory measured and ``ftx plan``'s estimate
for that method and config (:func:`ftx.planner.plan`, the CLI's planner), wall time, tokens/s,
held-out score before → after, retention and drift (the run's ``summary["forgetting"]``, "—"
when it was not measured). Then a recommendation computed from those numbers (best task score,
best score per GB, least forgetting — "within noise" when intervals overlap —, and which fit a
GPU of ``--gpu-mem``), the loss curves overlaid and task score against retention.

Written: ``compare.md`` (images beside it, ``compare.png`` and ``compare-forgetting.png``) and
``compare.html``, one self-contained file (images embedded as base64, no external URL).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ftx.artifacts import write_text
from ftx.compare_stats import Estimate, estimate, pick
from ftx.config import load_yaml
from ftx.report import plot_losses, plot_points, read_metrics
from ftx.runner.checkpoints import read_json

DASH = "—"
LOSS_PLOT = "compare.png"
FORGETTING_PLOT = "compare-forgetting.png"
COLUMNS = (
    "method",
    "grid",
    "status",
    "trainable params",
    "peak memory",
    "plan estimate",
    "wall time",
    "tokens/s",
    "held-out before → after",
    "retention",
    "drift (nats/token)",
)


def cell_row(cell: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """One cell's numbers from its run directory (missing ones are None)."""
    summary = read_json(run_dir / "summary.json") or {"status": "not run"}
    try:
        config = load_yaml((run_dir / "config.yaml").read_text()) or {}
    except OSError:
        config = {}
    trainable, total = summary.get("trainable_params"), summary.get("total_params")
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    forgetting = summary.get("forgetting") or {}
    return {
        "name": cell["name"],
        "group": cell.get("group", cell["name"]),
        "plugin": cell.get("plugin", summary.get("plugin")),
        "grid": cell.get("grid") or {},
        "seed": cell.get("seed"),
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
        "heldout_n": after.get("n") or before.get("n"),
        "retention": forgetting.get("retention"),
        "retention_count": forgetting.get("retention_base_correct"),
        "drift": forgetting.get("drift_nats"),
        "config": config,
    }


def _mean(values: list[Any]) -> float | None:
    present = [v for v in values if isinstance(v, (int, float))]
    return sum(present) / len(present) if present else None


def group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells pooled per group (their seeds), in first-seen order: means, and an
    :class:`~ftx.compare_stats.Estimate` for each score."""
    order: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        order.setdefault(row["group"], []).append(row)
    out = []
    for label, cells in order.items():
        done = [c for c in cells if c["status"] == "finished"]
        first = cells[0]
        status = "finished" if len(done) == len(cells) else f"{len(done)}/{len(cells)} finished"
        if len(cells) == 1:
            status = first["status"] or "not run"
        metric = next((c["metric"] for c in cells if c["metric"]), None)
        count = first["heldout_n"] if metric != "loss" else None
        out.append(
            {
                "group": label,
                "plugin": first["plugin"],
                "grid": first["grid"],
                "status": status,
                "seeds": len(cells),
                "objective": first["objective"],
                "metric": metric,
                "trainable": _mean([c["trainable"] for c in done]),
                "trainable_share": _mean([c["trainable_share"] for c in done]),
                "memory": _mean([c["memory"] for c in done]),
                "tokens_per_s": _mean([c["tokens_per_s"] for c in done]),
                "wall": _mean([c["wall"] for c in done]),
                "before": estimate([c["before"] for c in cells], count=count),
                "after": estimate([c["after"] for c in done], count=count),
                "retention": estimate(
                    [c["retention"] for c in done], count=first["retention_count"]
                ),
                "drift": estimate([c["drift"] for c in done]),
                "config": first["config"],
            }
        )
    return out


def planned(groups: list[dict[str, Any]], gpu_mem: int | None) -> None:
    """Add ``ftx plan``'s estimate to each group: ``plan_peak`` (this machine's device, as the
    run measured it) and, with ``gpu_mem``, ``fits_gpu`` (None: not planned, True/False, or
    ``"checkpointed"`` when it fits only with activation checkpointing). A config the planner
    cannot read leaves them None."""
    from ftx.planner import plan
    from ftx.plugins import discover

    found = discover()
    for group in groups:
        group["plan_peak"] = group["fits_gpu"] = None
        config = group["config"]
        if not config:
            continue
        infos = [i for i in found if i.name == group["plugin"] or i.kind == "objective"]
        kwargs = {
            "seq_len": (config.get("data") or {}).get("max_length"),
            "batch_size": (config.get("train") or {}).get("per_device_train_batch_size"),
            "dtype": (config.get("model") or {}).get("dtype"),
            "method_options": {group["plugin"]: dict(config.get("method") or {})},
            "plugins": infos,
            "objective": group["objective"] or "supervised",
        }
        spec = (config.get("model") or {}).get("name")
        try:
            here = _row(plan(spec, **kwargs), group["plugin"])
            group["plan_peak"] = here.get("peak_bytes")
            if gpu_mem:
                row = _row(plan(spec, gpu_mem=gpu_mem, **kwargs), group["plugin"])
                fits = row.get("fits") or (
                    "checkpointed" if row.get("fits_checkpointed") else False
                )
                group["fits_gpu"] = fits if row.get("peak_bytes") is not None else None
        except Exception:  # the report never fails for want of an estimate
            continue


def _row(result: dict[str, Any], plugin: str) -> dict[str, Any]:
    return next((r for r in result["methods"] if r["name"] == plugin), {})


def _gb(n: float | None) -> str:
    return DASH if n is None else f"{n / 2**30:.2f} GiB"


def _est(e: Estimate | None) -> str:
    return DASH if e is None else e.text()


def cells_of(group: dict[str, Any]) -> list[str]:
    """The table cells of one group, in :data:`COLUMNS` order."""
    trainable = group["trainable"]
    share = group["trainable_share"]
    grid = ", ".join(f"{k}={v}" for k, v in group["grid"].items()) or DASH
    before, after = group["before"], group["after"]
    score = DASH
    if before or after:
        plain = DASH if before is None else f"{before.mean:.3f}"
        score = f"{plain} → {_est(after)}"
    return [
        group["plugin"] or DASH,
        grid,
        group["status"] or DASH,
        DASH
        if trainable is None
        else f"{trainable:,.0f}" + (f" ({100 * share:.1f}%)" if share is not None else ""),
        _gb(group["memory"]),
        _gb(group.get("plan_peak")),
        DASH if group["wall"] is None else f"{group['wall']:.0f} s",
        DASH if group["tokens_per_s"] is None else f"{group['tokens_per_s']:.0f}",
        score,
        _est(group["retention"]),
        _est(group["drift"]),
    ]


def recommendation(groups: list[dict[str, Any]], gpu_mem: int | None) -> list[str]:
    """The report's recommendation, computed from the groups' numbers: one line each."""
    finished = [g for g in groups if g["after"] is not None]
    metric = next((g["metric"] for g in groups if g["metric"]), "score")
    higher = metric != "loss"
    lines = [
        "best task score (held-out "
        + metric
        + " after): "
        + pick({g["group"]: g["after"] for g in finished}, higher=higher, what="task score")["text"]
    ]
    per_gb = {
        g["group"]: g["after"].scaled(2**30 / g["memory"])
        for g in finished
        if g["memory"] and higher
    }
    lines.append("best score per GiB of peak memory: " + pick(per_gb, what="score per GiB")["text"])
    done = [g for g in groups if g["status"] == "finished"]  # forgetting needs no held-out
    retention = {g["group"]: g["retention"] for g in done}
    drift = {g["group"]: g["drift"] for g in done}
    if any(v is not None for v in retention.values()):
        least = pick(retention, what="retention")["text"]
        lines.append(f"least forgetting (highest retention): {least}")
    elif any(v is not None for v in drift.values()):
        least = pick(drift, higher=False, what="drift")["text"]
        lines.append(f"least forgetting (lowest drift): {least}")
    else:
        lines.append("least forgetting: not measured (rerun without --no-forgetting)")
    if gpu_mem:
        size = f"{gpu_mem / 2**30:g} GiB"
        fit = [g["group"] for g in groups if g.get("fits_gpu") is True]
        ckpt = [g["group"] for g in groups if g.get("fits_gpu") == "checkpointed"]
        unknown = [g["group"] for g in groups if g.get("fits_gpu") is None]
        text = f"fit a {size} GPU (ftx plan): {', '.join(fit) or 'none'}"
        if ckpt:
            text += f"; with activation checkpointing: {', '.join(ckpt)}"
        if unknown:
            text += f"; no estimate: {', '.join(unknown)}"
        lines.append(text)
    else:
        lines.append("GPU fit: pass --gpu-mem (e.g. 16GB) to see which fit a GPU of that size")
    return lines


def _plots(out: Path, rows: list[dict[str, Any]], groups: list[dict[str, Any]]) -> list[str]:
    """Write the loss curves and task score against retention (one point per run); return the
    images written."""
    written = []
    curves = {r["name"]: read_metrics(out / r["name"]) for r in rows}
    if plot_losses(curves, out / LOSS_PLOT, "ftx compare: training loss"):
        written.append(LOSS_PLOT)
    points = {
        r["name"]: (r["retention"], r["after"])
        for r in rows
        if r["retention"] is not None and r["after"] is not None
    }
    metric = next((g["metric"] for g in groups if g["metric"]), "score")
    if plot_points(
        points,
        out / FORGETTING_PLOT,
        "ftx compare: task score against retention",
        "retention (share of base-correct answers kept)",
        f"held-out {metric} after training",
    ):
        written.append(FORGETTING_PLOT)
    return written


def build(out: Path, spec: dict[str, Any], *, gpu_mem: int | None = None) -> dict[str, Any]:
    """Read every cell of ``spec`` under ``out`` and compute the report's content:
    ``{"rows", "groups", "recommendation", "objective", "metric"}``."""
    rows = [cell_row(cell, out / cell["name"]) for cell in spec.get("cells", [])]
    groups = group_rows(rows)
    planned(groups, gpu_mem)
    return {
        "rows": rows,
        "groups": groups,
        "recommendation": recommendation(groups, gpu_mem),
        "objective": next((r["objective"] for r in rows if r["objective"]), None),
        "metric": next((g["metric"] for g in groups if g["metric"]), "metric"),
        "seeds": spec.get("seeds", 1),
    }


def _intervals_note(seeds: int) -> str:
    return (
        "Scores: mean over seeds ± the 95% t-interval (n = seeds), widened to the 95% Wilson "
        "interval of the held-out count where that is wider"
        if seeds > 1
        else "Scores: one seed each; [a, b] is the 95% Wilson interval of the held-out count"
    ) + "; intervals that overlap are within noise."


def write_report(out: Path, spec: dict[str, Any], *, gpu_mem: int | None = None) -> dict[str, Any]:
    """Write ``compare.md``, ``compare.html`` and the plots under ``out``; return the content
    (:func:`build`'s, and ``"markdown"``)."""
    content = build(out, spec, gpu_mem=gpu_mem)
    images = _plots(out, content["rows"], content["groups"])
    objective = content["objective"]
    title = f"ftx compare (objective: {objective})" if objective else "ftx compare"
    header = [
        c if c != "held-out before → after" else f"held-out {content['metric']} before → after"
        for c in COLUMNS
    ]
    table = [cells_of(g) for g in content["groups"]]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table]
    lines += ["", _intervals_note(content["seeds"]), "", "## Recommendation", ""]
    lines += [f"- {line}" for line in content["recommendation"]]
    lines += [""] + [f"![{name}]({name})" for name in images] + [""]
    text = "\n".join(lines)
    write_text(out / "compare.md", text)
    write_text(out / "compare.html", _html(out, title, header, table, content, images))
    return {**content, "markdown": text}


def _html(
    out: Path,
    title: str,
    header: list[str],
    table: list[list[str]],
    content: dict[str, Any],
    images: list[str],
) -> str:
    """``compare.html``: one file, no external resource (images as ``data:`` URIs)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>" for cells in table
    )
    advice = "".join(f"<li>{esc(line)}</li>" for line in content["recommendation"])
    figures = "".join(
        f'<figure><img alt="{esc(name)}" src="data:image/png;base64,'
        f'{base64.b64encode((out / name).read_bytes()).decode()}"></figure>'
        for name in images
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#eee}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{style}</style></head><body><h1>{esc(title)}</h1>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>{esc(_intervals_note(content['seeds']))}</p>"
        f"<h2>Recommendation</h2><ul>{advice}</ul>{figures}</body></html>\n"
    )


def print_table(content: dict[str, Any], console: Any) -> None:
    """The report's table and recommendation (``write_report``'s content) on the console."""
    from rich.table import Table

    table = Table(title="ftx compare")
    for column in COLUMNS:
        table.add_column(column)
    for group in content["groups"]:
        table.add_row(*cells_of(group))
    console.print(table)
    for line in content["recommendation"]:
        console.print(f"• {line}", highlight=False)
