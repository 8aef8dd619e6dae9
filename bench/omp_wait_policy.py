"""OpenMP's wait policy for a QLoRA step on the CPU, on an idle and on a shared machine.

torch ships its own ``libgomp``; bitsandbytes' CPU library links the system ``libgomp``: once
both are loaded there are two OpenMP runtimes, each with a thread per core. Under the default
wait policy an idle OpenMP thread spins for a while before it sleeps: on an otherwise idle
machine that saves wake-ups, on a shared one the spinning threads burn the cores that the other
runtime's and the other processes' busy threads need. ``ftx/openmp.py`` picks per run from
this measurement: the default when no other task is runnable at start, ``PASSIVE`` otherwise.

For each policy (``unset``: the libgomp default, as a plain TRL/PEFT/LLaMA-Factory script runs;
``PASSIVE``; ``ACTIVE``; or any ``NAME=VALUE`` such as ``GOMP_SPINCOUNT=10000``) a fresh child
process sets the variable *before* importing torch, then measures

* a small fp32 matmul (``[256, 576] @ [576, 576]``, SmolLM2's hidden size) 200 times, after
  bitsandbytes is imported;
* QLoRA training steps on SmolLM2-135M: 4-bit NF4 base, LoRA r16 on every linear layer, bf16
  autocast, no gradient checkpointing, batch 8 demo rows, AdamW; one warm-up step, then
  ``--steps`` timed steps (median reported).

Each policy is measured on the idle machine and again with ``--busy`` processes spinning beside
it (another job on the machine); the policies alternate across ``--rounds`` rounds. Results:
``bench/results/omp_wait_policy.json``.

Usage::

    python bench/omp_wait_policy.py [--steps 4] [--rounds 2] [--batch 8] [--busy 1]
                                    [--policies unset,PASSIVE,ACTIVE] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

POLICIES = ("unset", "PASSIVE", "ACTIVE")


def worker(model_dir: str, data: str, steps: int, batch: int) -> None:
    """Child process: env already set by the parent; torch is imported here for the first time."""
    import bitsandbytes  # noqa: F401  (the second OpenMP runtime)
    import torch

    a, b = torch.randn(256, 576), torch.randn(576, 576)
    for _ in range(10):
        a @ b
    start = time.perf_counter()
    for _ in range(200):
        a @ b
    matmul_ms = (time.perf_counter() - start) / 200 * 1000

    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=quant, dtype=torch.float32
    )
    model.config.use_cache = False
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [json.loads(line) for line in Path(data).read_text().splitlines()[:batch]]
    texts = [
        tokenizer.apply_chat_template(
            [
                {"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]}
                for t in row["conversations"]
            ],
            tokenize=False,
        )
        for row in rows
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**enc, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        if i:  # the first step warms up (allocations, bitsandbytes repacking)
            times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "matmul_ms": round(matmul_ms, 3),
                "step_s": [round(t, 3) for t in times],
                "tokens_per_step": int(enc["attention_mask"].sum()),
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


def run_policy(policy: str, args: argparse.Namespace, model: str, data: str) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if "=" in policy:  # e.g. GOMP_SPINCOUNT=10000: another OpenMP variable, wait policy unset
        name, _, value = policy.partition("=")
        env[name] = value
    elif policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--worker", model, data, str(args.steps), str(args.batch)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"worker ({policy}) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(policy=policy, wall_s=round(wall, 2), load=[round(x, 2) for x in os.getloadavg()])
    return result


def summarise(by_policy: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    out = {}
    for policy, results in by_policy.items():
        steps = [t for r in results for t in r["step_s"]]
        out[policy] = {
            "step_s_median": round(statistics.median(steps), 3),
            "matmul_ms_median": round(statistics.median(r["matmul_ms"] for r in results), 3),
            "tokens_per_step": results[0]["tokens_per_step"],
        }
    return out


@contextlib.contextmanager
def busy_processes(n: int):
    """``n`` processes spinning on a core each (another job on the machine) while active."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    from common import (
        bench_parser,
        demo_data,
        demo_model,
        loadavg,
        log,
        markdown_table,
        save_results,
    )

    parser = bench_parser(__doc__, quick="1 round of 1 step", ignore=("eval-limit",))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--policies",
        default="unset,PASSIVE",
        help="comma-separated OMP_WAIT_POLICY values (unset, PASSIVE, ACTIVE) or NAME=VALUE "
        "settings (e.g. GOMP_SPINCOUNT=10000)",
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=1,
        help="also measure with N busy processes competing for the cores (0: idle only)",
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 1, 1
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    model, (train, _) = str(demo_model()), demo_data()
    load_start = loadavg()
    conditions = {"idle": 0, **({f"{args.busy} busy": args.busy} if args.busy else {})}
    runs: dict[str, dict[str, list[dict]]] = {}
    for condition, hogs in conditions.items():
        runs[condition] = {p: [] for p in policies}
        with busy_processes(hogs):
            for r in range(args.rounds):
                for policy in policies if r % 2 == 0 else policies[::-1]:
                    result = run_policy(policy, args, model, str(train))
                    runs[condition][policy].append(result)
                    log(
                        f"{condition}, {policy}: steps {result['step_s']} s, "
                        f"matmul {result['matmul_ms']} ms"
                    )
    summary = {c: summarise(by_policy) for c, by_policy in runs.items()}
    rows = []
    for condition, by_policy in summary.items():
        ref = by_policy.get("PASSIVE") or next(iter(by_policy.values()))
        rows += [
            [
                condition,
                policy,
                s["step_s_median"],
                round(s["tokens_per_step"] / s["step_s_median"], 1),
                round(s["step_s_median"] / ref["step_s_median"], 2),
                s["matmul_ms_median"],
                round(s["matmul_ms_median"] / ref["matmul_ms_median"], 1),
            ]
            for policy, s in by_policy.items()
        ]
    text = markdown_table(
        [
            "machine",
            "OMP_WAIT_POLICY",
            "QLoRA step s (median)",
            "tokens/s",
            "step time / PASSIVE",
            "small matmul ms",
            "matmul / PASSIVE",
        ],
        rows,
    )
    print(text)
    save_results(
        "omp_wait_policy",
        {
            "settings": vars(args),
            "runs": runs,
            "summary": summary,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "tables_markdown": text,
        },
    )


if __name__ == "__main__":
    main()
