"""Human-readable run outputs: ``loss.png`` (from ``metrics.jsonl``), ``reward.png`` for runs
that learn from rewards, and ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftx.artifacts import write_text


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` (``[]`` when there is none), as
    :func:`logged_rows` reads them: a run in progress may have a last line cut short."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return logged_rows(path)


def logged_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``, skipping any line that is not a whole JSON object."""
    return metrics_rows(path.read_text(encoding="utf-8", errors="replace"))


def metrics_rows(text: str) -> list[dict[str, Any]]:
    """:func:`logged_rows` of a ``metrics.jsonl``'s text."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def is_training_row(row: dict[str, Any]) -> bool:
    """A ``metrics.jsonl`` row of a logged training step (it has ``loss``); the other rows are
    evaluations during training (``eval_loss``, the task metric), at the same steps."""
    return "loss" in row


def plot_losses(curves: dict[str, list[dict[str, Any]]], target: Path, title: str) -> bool:
    """Plot one training loss curve per name into ``target`` (PNG), and beside each its
    validation loss (``eval_loss`` rows, dashed, with markers) when it was evaluated during
    training; False when there is nothing to plot."""
    if not any(curves.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    validated = False
    for name, rows in curves.items():
        points = [(r["step"], r["loss"]) for r in rows if is_training_row(r)]
        if points:
            (line,) = ax.plot(*zip(*points, strict=True), label=name, linewidth=1.5)
        valid = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
        if valid:
            validated = True
            color = line.get_color() if points else None
            label = f"{name} (validation)"
            ax.plot(*zip(*valid, strict=True), "--o", color=color, label=label, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1 or validated:
        ax.legend()
    _save(fig, target)
    return True


def plot_points(
    points: dict[str, tuple[float, float]], target: Path, title: str, xlabel: str, ylabel: str
) -> bool:
    """Plot one labelled point per name (``{name: (x, y)}``) into ``target`` (PNG); False
    (nothing written) when there is no point."""
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, (x, y) in points.items():
        ax.scatter([x], [y], s=30)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(fig, target)
    return True


def plot_rewards(rows: list[dict[str, Any]], target: Path, title: str) -> bool:
    """Plot the mean reward and each reward's mean per step into ``target`` (PNG), for runs
    that learn from rewards; False (nothing written) when ``rows`` log no reward."""
    points = [r for r in rows if "reward" in r]
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    names = ["reward", *sorted({k for r in points for k in r if k.startswith("rewards/")})]
    for name in names:
        xy = [(r["step"], r[name]) for r in points if name in r]
        label = "total (weighted)" if name == "reward" else name.split("/")[1]
        ax.plot(*zip(*xy, strict=True), label=label, linewidth=2 if name == "reward" else 1)
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, target)
    return True


def _save(fig: Any, target: Path) -> None:
    """Write ``fig`` to ``target`` as PNG through a temporary sibling (never half a file)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = target.with_name(f".tmp-{target.name}")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(target)


def _fmt_bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "–"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _score(summary: dict[str, Any], key: str) -> str:
    ev = summary.get(key)
    return "–" if not ev else f"{ev['score']:.3f} ({ev['metric']}, n={ev['n']})"


def forgetting_line(record: dict[str, Any]) -> str:
    """``summary.json``'s ``forgetting`` in one line of text (a metric not measured is left
    out)."""
    parts = []
    if "questions" in record:
        kept = record["retention"]
        share = "–" if kept is None else f"{kept:.3f}"
        parts.append(
            f"retention {share} (kept {record['retention_kept']} of the "
            f"{record['retention_base_correct']} questions the base answered right, of "
            f"{record['questions']})"
        )
    if "drift_nats" in record:
        parts.append(
            f"drift {record['drift_nats']:.4f} nats/token (KL base‖tuned over "
            f"{record['drift_tokens']} tokens)"
        )
    if "seconds" in record:
        parts.append(f"{record['seconds']} s")
    return ", ".join(parts)


def evaluation_lines(summary: dict[str, Any]) -> list[str]:
    """``report.md``'s lines about evaluation during training: the validation curve, the
    exported checkpoint and why, and an early stop."""
    evaluation = summary.get("evaluation")
    if not evaluation:
        return []
    curve = ", ".join(
        f"{row['step']}: {row['eval_loss']:.4f}" for row in evaluation["validation_loss"]
    )
    lines = [f"- validation loss (step: loss): {curve or '–'}"]
    best = summary.get("best") or {}
    if best:
        values = ", ".join(
            f"{k} {v:.4g}" for k, v in best.items() if k.startswith("eval_") and v is not None
        )
        lines.append(
            f"- exported model: step {best['step']} (select_best {best['select_best']}: "
            f"{best['why']}{'; ' + values if values else ''})"
        )
    stopped = summary.get("stopped_early")
    if stopped:
        lines.append(
            f"- stopped early at step {stopped['step']} of {stopped['of']}: {stopped['reason']}"
        )
    return lines


def write_reports(run_dir: Path, summary: dict[str, Any]) -> None:
    """Write ``loss.png`` and ``report.md`` for a run (finished or not)."""
    metrics = read_metrics(run_dir)
    plotted = plot_losses(
        {summary.get("plugin", "run"): metrics},
        run_dir / "loss.png",
        f"ftx {summary.get('plugin', '')}",
    )
    rewarded = plot_rewards(metrics, run_dir / "reward.png", f"ftx {summary.get('plugin', '')}")
    trainable, total = summary.get("trainable_params"), summary.get("total_params")
    share = f" ({100 * trainable / total:.2f}%)" if trainable and total else ""
    lines = [
        f"# ftx run: {summary.get('plugin')}",
        "",
        f"- status: **{summary.get('status')}**",
        f"- model: `{summary.get('model')}` on {summary.get('device')} "
        f"(dtype {summary.get('dtype')}, bf16 autocast {summary.get('bf16_autocast')}, "
        f"attention {summary.get('attn_implementation')})",
        f"- trainable parameters: {trainable if trainable is not None else '–'}{share} "
        f"of {total if total is not None else '–'}",
        f"- steps: {summary.get('steps', '–')}, tokens: {summary.get('tokens', '–')}, "
        f"tokens/s: {summary.get('tokens_per_s', '–')}",
        f"- wall time: {summary.get('wall_time_s', '–')} s, "
        f"peak memory: {_fmt_bytes(summary.get('peak_memory_bytes'))}",
        f"- final loss: {summary.get('final_loss', '–')}",
        f"- held-out before: {_score(summary, 'eval_before')}",
        f"- held-out after: {_score(summary, 'eval_after')}",
    ]
    lines += evaluation_lines(summary)
    if summary.get("forgetting"):
        lines.append(f"- forgetting: {forgetting_line(summary['forgetting'])}")
    if summary.get("error"):
        lines.append(f"- error: {summary['error']}")
    if plotted:
        lines += ["", "![loss](loss.png)"]
    if rewarded:
        lines += ["", "![reward](reward.png)"]
    write_text(run_dir / "report.md", "\n".join(lines) + "\n")
