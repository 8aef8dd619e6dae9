"""bitsandbytes' 8-bit AdamW against torch's AdamW on the CPU, side by side in one process.

The QLoRA paper's paged 8-bit optimizers page through CUDA unified memory; on the CPU only the
8-bit state remains, and bitsandbytes ships CPU kernels for it. ftx would adopt it for CPU runs
only if a step measured faster (its memory saving is irrelevant next to a CPU's RAM). Timed:
``optimizer.step()`` with fixed random gradients, on (1) qlora's trainable LoRA matrices on
SmolLM2-135M (r=16 on the seven linears of each of 30 blocks) and (2) full-size MLP weights of
those blocks (what fft or sft would step). Prints ms per step and the 8-bit / torch ratio.
Results: ``bench/results/cpu_optimizers.json``.

Usage::

    python bench/cpu_optimizers.py [--steps 20] [--quick]
"""

from __future__ import annotations

import time
from typing import Any

from common import bench_parser, loadavg, log, markdown_table, ratio, save_results

LINEARS = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)]
BLOCKS = 30
RANK = 16


def parameter_sets() -> dict[str, list[tuple[int, int]]]:
    """Shapes of the parameters each optimizer steps, per case."""
    lora = [shape for i, o in LINEARS for shape in ((RANK, i), (o, RANK))] * BLOCKS
    mlp = [(576, 1536), (576, 1536), (1536, 576)] * BLOCKS
    return {"qlora LoRA matrices": lora, "MLP weights (fft/sft)": mlp}


def ms_per_step(make: Any, shapes: list[tuple[int, int]], steps: int) -> float:
    """Mean wall time of ``steps`` optimizer steps after one warm-up step."""
    import torch

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(*s) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = make(params)
    optimizer.step()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = bench_parser(__doc__, quick="3 steps", ignore=("batch", "eval-limit"))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    steps = 3 if args.quick else args.steps
    import bitsandbytes as bnb
    import torch

    results, rows = {}, []
    for case, shapes in parameter_sets().items():
        log(f"{case} (load {loadavg()[0]})")
        base = ms_per_step(lambda p: torch.optim.AdamW(p, lr=1e-4), shapes, steps)
        eight = ms_per_step(lambda p: bnb.optim.AdamW8bit(p, lr=1e-4), shapes, steps)
        numel = sum(a * b for a, b in shapes)
        results[case] = {"params": numel, "torch_adamw_ms": base, "bnb_adamw8bit_ms": eight}
        rows.append(
            [case, f"{numel / 1e6:.1f}M", f"{base:.1f}", f"{eight:.1f}", ratio(eight, base)]
        )
    headers = [
        "parameters",
        "count",
        "torch AdamW ms/step",
        "bnb AdamW8bit ms/step",
        "8-bit / torch",
    ]
    text = markdown_table(headers, rows)
    print(text)
    save_results("cpu_optimizers", {"steps": steps, "cases": results, "tables_markdown": text})


if __name__ == "__main__":
    main()
