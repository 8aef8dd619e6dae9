"""torch.profiler over a few LLaMA-Factory training steps, to set its CPU path beside ftx's.

Runs *inside* LLaMA-Factory's venv (``bench/.venv-llamafactory/bin/python``): it calls LF's own
``run_exp`` with one of the YAMLs in ``bench/llamafactory/`` (the settings ``vs_tools.py`` uses:
no gradient checkpointing, bf16, ``use_cpu``) and a callback that profiles steps
``warmup .. warmup + steps``. Prints the step times and the top operators by self CPU time, and
writes them as JSON. ``bench/profile_plugins.py`` does the same for ftx.

Usage::

    OMP_WAIT_POLICY=PASSIVE bench/.venv-llamafactory/bin/python bench/profile_llamafactory.py \
        MODE MODEL_DIR DATA_JSONL OUT_DIR [--steps 6] [--warmup 2] [--profile-steps 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("qlora", "full", "freeze"))
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).resolve()
    (out / "dataset_info.json").write_text(
        json.dumps(
            {
                "demo_subset": {
                    "file_name": str(data),
                    "formatting": "sharegpt",
                    "columns": {"messages": "conversations"},
                }
            }
        )
    )
    config = yaml.safe_load(
        (Path(__file__).resolve().parent / "llamafactory" / f"{args.mode}.yaml").read_text()
    )
    config.update(
        model_name_or_path=args.model,
        dataset_dir=str(out),
        output_dir=str(out / "run"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=args.lr,
        disable_gradient_checkpointing=True,
        save_steps=10_000,
    )
    import torch
    from llamafactory.train.tuner import run_exp
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    report: dict = {"mode": args.mode, "step_s": []}

    class Profile(TrainerCallback):
        prof = None
        t0 = 0.0

        def on_step_begin(self, a, state, control, **kwargs):
            if state.global_step == args.warmup and self.prof is None:
                self.prof = profile(activities=[ProfilerActivity.CPU])
                self.prof.__enter__()
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kwargs):
            report["step_s"].append(round(time.perf_counter() - self.t0, 3))
            if self.prof is not None and state.global_step == args.warmup + args.profile_steps:
                self.prof.__exit__(None, None, None)
                averages = self.prof.key_averages()
                report["ops"] = [
                    {"name": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6, "calls": e.count}
                    for e in sorted(averages, key=lambda e: -e.self_cpu_time_total)[:40]
                ]
                (out / "ops.txt").write_text(
                    averages.table(sort_by="self_cpu_time_total", row_limit=30)
                )
                self.prof = None

    run_exp(args=config, callbacks=[Profile()])
    report["torch_threads"] = torch.get_num_threads()
    (out / "profile.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({"step_s": report["step_s"]}))
    print((out / "ops.txt").read_text() if (out / "ops.txt").exists() else "")


if __name__ == "__main__":
    main()
