"""What ``data.eval_forgetting`` costs on the demo model, beside the held-out scoring every run
already does.

In one process, on SmolLM2-135M-Instruct (the demo model), timed side by side:

* ``held-out scoring``: the demo's held-out rows scored by exact match, as ``ftx run`` scores
  the trained ``model/`` after training;
* ``forgetting, base not cached``: :func:`ftx.forgetting.measure.measure_forgetting` of a second
  copy of the model against the base, loading included — the first run on a base (the base's
  answers and the tuned model's answers are both generated, and drift is measured);
* ``forgetting, base cached``: the same again, the base's answers read from the cache — every
  later run on that base (what a compare's second and later methods pay).

The untouched copy must keep everything (retention 1.0, drift 0.0): the script checks it and
prints the base model's count of right answers. Wall and CPU seconds (this process's, all
threads) are both reported: on a shared machine the wall time grows with the load, the CPU time
much less, so the ratio is taken on CPU time. Results: ``bench/results/forgetting_cost.json``.

Usage::

    python bench/forgetting_cost.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_parser, cpu_label, loadavg, log, markdown_table, save_results


def main() -> None:
    bench_parser(__doc__, quick="(no effect: the measurement is already small)").parse_args()
    from ftx.process_env import configure_command_process

    configure_command_process()
    from ftx.data.demo import demo_data_paths
    from ftx.evaluate import load_eval_rows, score
    from ftx.forgetting.measure import measure_forgetting
    from ftx.inference import load_for_inference
    from ftx.models import resolve_model

    base_dir = resolve_model(None)
    load_before = loadavg()
    timings: dict[str, float] = {}
    cpu_times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FTX_CACHE"] = cache  # cold: the base's answers are not cached yet
        base = load_for_inference(base_dir)
        rows = load_eval_rows(str(demo_data_paths()[1]), "auto", None)
        log(f"held-out scoring ({len(rows)} rows)…")
        started, cpu = time.time(), time.process_time()
        score(base.model, base.tokenizer, rows, metric="exact")
        timings["held-out scoring"] = time.time() - started
        cpu_times["held-out scoring"] = time.process_time() - cpu
        records = {}
        for label in ("forgetting, base not cached", "forgetting, base cached"):
            log(f"{label}…")
            started, cpu = time.time(), time.process_time()
            records[label] = measure_forgetting(load_for_inference(base_dir), base_dir)
            timings[label] = time.time() - started
            cpu_times[label] = time.process_time() - cpu
    cold = records["forgetting, base not cached"]
    for record in records.values():
        assert record["retention"] == 1.0 and record["drift_nats"] == 0.0, record
    reference = cpu_times["held-out scoring"]
    cpu = cpu_label()
    print(f"SmolLM2-135M-Instruct on {cpu}, {os.cpu_count()} cores, load {load_before}")
    print(
        f"base answers right: {cold['retention_base_correct']} of {cold['questions']} questions; "
        f"drift over {cold['drift_tokens']} tokens"
    )
    print(
        markdown_table(
            ["measurement", "seconds", "CPU seconds", "x held-out scoring (CPU)"],
            [
                [k, f"{v:.1f}", f"{cpu_times[k]:.1f}", f"{cpu_times[k] / reference:.2f}"]
                for k, v in timings.items()
            ],
        )
    )
    save_results(
        "forgetting_cost",
        {
            "seconds": timings,
            "cpu_seconds": cpu_times,
            "base_correct": cold["retention_base_correct"],
            "questions": cold["questions"],
            "drift_tokens": cold["drift_tokens"],
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        },
    )


if __name__ == "__main__":
    main()
