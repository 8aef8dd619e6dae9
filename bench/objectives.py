"""Per-objective cost: the same method under supervised, DPO, ORPO, SimPO and KTO on the demo.

Each ``PLUGIN:OBJECTIVE`` pair runs ``ftx run --plugin PLUGIN --objective OBJECTIVE`` with the
defaults of both (the demo data follows the objective: conversations for ``supervised``, the
preference pairs for ``dpo``/``orpo``/``simpo``, the KTO rows for ``kto``) for ``--steps`` steps
of ``--batch`` rows, in its own child process, one after the other on the same machine.
Reported per pair: seconds per step and tokens/s (the run's ``summary.json``: real tokens over
training time; a preference row is a prompt with two answers, so it runs about twice the
tokens of a supervised row), the child's peak RSS (``os.wait4``, the whole command), wall time,
the reference policy the run chose, and the held-out score before → after with the objective's
own metric (``exact`` for supervised, ``pairwise`` otherwise; ``data.eval_limit`` rows).
Ratios are against the same method under ``supervised`` when that pair is in the list.
Results: ``bench/results/objectives.json``.

Usage::

    python bench/objectives.py [--steps 8] [--batch 8] [--eval-limit 40] [--quick]
                               [--pairs qlora:supervised,qlora:dpo,...]
"""

from __future__ import annotations

from typing import Any

from common import (
    FTX,
    bench_parser,
    cleanup,
    demo_model,
    fmt_bytes,
    loadavg,
    log,
    markdown_table,
    prune_checkpoints,
    ratio,
    read_json,
    require_ok,
    run_child,
    save_results,
    workdir,
)

PAIRS = "qlora:supervised,qlora:dpo,qlora:orpo,qlora:simpo,qlora:kto,fft:supervised,fft:dpo"


def run_pair(plugin: str, objective: str, args: Any, work: Any) -> dict[str, Any]:
    """One ``ftx run`` of the pair; its summary's figures and the child's resource usage."""
    from ftx.testing.commands import set_args

    out = work / f"{plugin}-{objective}"
    settings = [
        f"train.max_steps={args.steps}",
        f"train.per_device_train_batch_size={args.batch}",
        f"data.eval_limit={args.eval_limit}",
    ]
    cmd = [*FTX, "run", "--plugin", plugin, "--objective", objective, "--model", str(demo_model())]
    cmd += ["--output", str(out), "--overwrite", *set_args(settings)]
    result = run_child(cmd, log_path=out.with_suffix(".log"))
    require_ok(result, f"ftx run ({plugin} × {objective})")
    prune_checkpoints(out)
    summary = read_json(out / "summary.json")
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    steps = summary.get("steps") or args.steps
    result.update(
        plugin=plugin,
        objective=objective,
        steps=steps,
        s_per_step=round(summary["train_time_s"] / steps, 2),
        tokens_per_s=summary.get("tokens_per_s"),
        reference=summary.get("reference"),
        final_loss=summary.get("final_loss"),
        metric=after.get("metric"),
        n=after.get("n"),
        before=before.get("score"),
        after=after.get("score"),
    )
    log(
        f"{plugin} × {objective}: {result['s_per_step']} s/step, peak "
        f"{fmt_bytes(result['peak_rss_bytes'])}, {result['metric']} {result['before']} -> "
        f"{result['after']}"
    )
    return result


def table(results: list[dict[str, Any]]) -> str:
    """One row per pair; ratios against the method's supervised run."""
    supervised = {r["plugin"]: r for r in results if r["objective"] == "supervised"}
    rows = []
    for r in results:
        base = supervised.get(r["plugin"], {})
        rows.append(
            [
                r["plugin"],
                r["objective"],
                r["reference"] or "none",
                r["s_per_step"],
                ratio(r["s_per_step"], base.get("s_per_step")),
                r["tokens_per_s"],
                fmt_bytes(r["peak_rss_bytes"]),
                ratio(r["peak_rss_bytes"], base.get("peak_rss_bytes")),
                r["wall_s"],
                f"{r['metric']} (n={r['n']}): {r['before']:.3f} → {r['after']:.3f}",
            ]
        )
    headers = ["method", "objective", "reference", "s/step", "s/step vs supervised"]
    headers += ["tokens/s", "peak RSS", "RSS vs supervised", "wall s", "held-out before → after"]
    return markdown_table(headers, rows)


def main() -> None:
    parser = bench_parser(__doc__, quick="2 steps, 8 eval rows, qlora only")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--eval-limit", type=int, default=40)
    parser.add_argument("--pairs", default=PAIRS, help="PLUGIN:OBJECTIVE,... run in this order")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.eval_limit = 2, 8
        args.pairs = ",".join(p for p in args.pairs.split(",") if p.startswith("qlora:"))
    pairs = [tuple(p.strip().split(":", 1)) for p in args.pairs.split(",") if p.strip()]
    work = workdir("objectives", args.workdir)
    load_start = loadavg()
    results = []
    for plugin, objective in pairs:
        log(f"ftx run --plugin {plugin} --objective {objective} (load {loadavg()[0]})")
        results.append(run_pair(plugin, objective, args, work))
    text = table(results)
    print(text)
    save_results(
        "objectives",
        {
            "settings": vars(args),
            "runs": results,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
