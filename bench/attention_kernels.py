"""Which SDPA kernel is fastest on this CPU, by sequence length: the case for ``ftx_sdpa``'s rule 2.

Under bf16 autocast (ftx's CPU training default) torch's SDPA runs its CPU flash-attention kernel
in bf16. For every length in ``--lengths``, with SmolLM2's attention shapes (9 query heads, 3
key/value heads, head dim 64) and the query in fp32 as Llama's rotary embedding leaves it, this
script times one forward+backward of

* ``transformers sdpa``: transformers' ``sdpa_attention_forward`` (bf16 kernel via autocast);
* ``ftx_sdpa``: ftx's ``sdpa_forward`` (``core/ftx/attention.py``): fp32 kernel up to
  ``FP32_MAX_LENGTH`` tokens, transformers' path above;
* ``bf16 math``: torch's math backend in bf16 (the other candidate for short rows);

for a padded batch (8 rows, boolean padding mask) and for causal rows without a mask (as packed
examples run), alternating variants, median of ``--repeats``. Results:
``bench/results/attention_kernels.json``.

Usage::

    python bench/attention_kernels.py [--lengths 32,64,128,192,256,512,1024] [--repeats 10]
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from common import bench_parser, log, markdown_table, ratio, save_results

HEADS, KV_HEADS, HEAD_DIM = 9, 3, 64


class Attention:
    """What transformers' SDPA function reads off an attention module."""

    num_key_value_groups = HEADS // KV_HEADS
    is_causal = True
    training = True


def inputs(length: int, masked: bool) -> tuple[Any, ...]:
    """q (fp32, as after the rotary embedding), k (fp32), v (bf16 under autocast) and a mask;
    a padded batch of 8 rows when ``masked``, else rows of ~512 tokens in all, no mask."""
    import torch

    batch = 8 if masked else max(1, 512 // length)
    gen = torch.Generator().manual_seed(length)
    q, k, v = (
        torch.randn(batch, n, length, HEAD_DIM, generator=gen).requires_grad_()
        for n in (HEADS, KV_HEADS, KV_HEADS)
    )
    mask = None
    if masked:
        mask = torch.ones(batch, 1, length, length, dtype=torch.bool).tril()
        mask[0, :, :, : length // 4] = False  # one left-padded row
        mask[0, :, torch.arange(length), torch.arange(length)] = True
    return q, k, v, mask


def variants() -> dict[str, Any]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from ftx.attention import sdpa_forward

    def bf16_math(module: Any, q: Any, k: Any, v: Any, mask: Any) -> Any:
        with sdpa_kernel(SDPBackend.MATH):
            return sdpa_attention_forward(module, q, k, v, mask)

    return {
        "transformers sdpa": sdpa_attention_forward,
        "ftx_sdpa": sdpa_forward,
        "bf16 math": bf16_math,
    }


def time_one(fn: Any, args: tuple[Any, ...]) -> float:
    import torch

    q, k, v, mask = args
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = fn(Attention(), q, k, v.to(torch.bfloat16), mask)
    out.float().square().mean().backward()
    elapsed = time.perf_counter() - start
    for t in (q, k, v):
        t.grad = None
    return elapsed


def main() -> None:
    parser = bench_parser(
        __doc__, quick="lengths 64,512, 2 repeats", ignore=("steps", "eval-limit")
    )
    parser.add_argument("--lengths", default="32,64,128,192,256,512,1024")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.lengths, args.repeats = "64,512", 2
    from ftx.process_env import configure_command_process

    configure_command_process()  # before torch loads, as the ftx command
    from ftx.attention import FP32_MAX_LENGTH

    fns = variants()
    names = list(fns)
    results: dict[str, dict[str, Any]] = {}
    rows = []
    for masked in (True, False):
        for length in [int(x) for x in args.lengths.split(",")]:
            data = inputs(length, masked)
            times: dict[str, list[float]] = {n: [] for n in names}
            for i in range(args.repeats + 1):
                for name in names[i % 3 :] + names[: i % 3]:
                    elapsed = time_one(fns[name], data)
                    if i:  # round 0 warms up
                        times[name].append(elapsed)
            med = {n: statistics.median(t) for n, t in times.items()}
            case = f"{'padded batch of 8' if masked else 'causal, no mask'} L={length}"
            results[case] = {n: round(1000 * m, 3) for n, m in med.items()}
            base = med["transformers sdpa"]
            rows.append(
                [
                    case,
                    *(round(1000 * med[n], 2) for n in names),
                    ratio(med["ftx_sdpa"], base),
                    "fp32" if length <= FP32_MAX_LENGTH else "bf16",
                ]
            )
            log(f"{case}: " + ", ".join(f"{n} {1000 * m:.2f} ms" for n, m in med.items()))
    text = markdown_table(
        ["case", *(f"{n} ms" for n in names), "ftx_sdpa / transformers", "ftx_sdpa kernel"],
        rows,
    )
    print(text)
    save_results(
        "attention_kernels",
        {
            "settings": vars(args),
            "fp32_max_length": FP32_MAX_LENGTH,
            "median_ms": results,
            "tables_markdown": text,
        },
    )


if __name__ == "__main__":
    main()
