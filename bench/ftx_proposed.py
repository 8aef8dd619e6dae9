"""``ftx`` with the CPU changes proposed in BENCHMARKS.md applied from the outside, to measure
them end to end before they are made in ftx itself. Same arguments as ``ftx``::

    python bench/ftx_proposed.py run --plugin qlora ... [--set method.lora_dropout=0]

Applied here (each one measured on its own by ``bench/ablations.py``):

1. **LM head on trained tokens only**: TRL 1.16's fused LM head projects only the positions that
   have a label on Triton devices (``compact = _use_triton(device)`` in ``trl.trainer.utils``)
   and every position elsewhere; here it is compact on the CPU too. Same loss, same gradients.
2. **frozen weights in bf16** (qlora, sft): after ``select_trainable``, frozen floating-point
   weights that are not 4-bit packed are stored in bf16 (as a bf16 load keeps them), instead of
   the fp32 that ``prepare_model_for_kbit_training`` upcasts them to; and (qlora) the 4-bit
   weights dequantise straight to bf16 (``quant_state.dtype``) instead of to fp32 and then a
   cast, as they do when the model is loaded in bf16 before quantising (ftx loads fp32 on CPUs).
3. **freed memory goes back to the OS after each step** (``FTX_BENCH_MALLOC=trim``, the
   default): ``malloc_trim(0)`` at every step end. glibc's heap otherwise keeps the freed
   activations of each step (its mmap threshold rises to 32 MiB) and the resident set grows
   step after step. ``FTX_BENCH_MALLOC=mmap`` instead sets ``mallopt(M_MMAP_THRESHOLD,
   128 KiB)`` at start-up: lowest memory, but every large tensor is a fresh mmap whose pages
   fault in again (system time doubled here); ``FTX_BENCH_MALLOC=off`` leaves glibc alone.

4. **per-example attention for padding-free batches** (``varlen``, only when
   ``FTX_BENCH_ONLY`` names it): transformers runs a packed ``[1, total]`` row through sdpa with
   a block-diagonal mask over ``total**2`` query/key pairs; here sdpa runs once per example
   (found from ``position_ids`` restarting at 0), causal, without a mask: the CPU analogue of
   flash-attention's variable-length kernel. Rows that are not packed take the normal sdpa path.

LoRA dropout 0 on the CPU is an option, not a patch: the harness passes
``--set method.lora_dropout=0``.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def return_freed_memory(threshold: int = 128 * 1024) -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, threshold)
    )


def trim_after_each_step() -> None:
    from transformers import TrainerCallback

    import ftx.runner

    libc = ctypes.CDLL("libc.so.6")

    class Trim(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            libc.malloc_trim(0)

    build = ftx.runner._build_trainer

    def patched(*args, **kwargs):
        trainer, guard, stopper = build(*args, **kwargs)
        trainer.add_callback(Trim())
        return trainer, guard, stopper

    ftx.runner._build_trainer = patched


def varlen_sdpa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """SDPA per example of a packed ``[1, total]`` row (example starts: ``position_ids == 0``)."""
    import itertools

    import torch
    import torch.nn.functional as F

    positions = kwargs["position_ids"][0]
    starts = [*torch.nonzero(positions == 0).flatten().tolist(), positions.numel()]
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    pieces = [
        F.scaled_dot_product_attention(
            query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True, scale=scaling
        )
        for a, b in itertools.pairwise(starts)
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def varlen_attention() -> None:
    """Route packed rows (batch 1, several examples) through `varlen_sdpa`; all else to sdpa."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def sdpa_or_varlen(module, query, key, value, attention_mask, **kwargs):
        positions = kwargs.get("position_ids")
        packed = (
            positions is not None
            and query.shape[0] == 1
            and query.shape[2] == positions.shape[-1]
            and int((positions[0] == 0).sum()) > 1
        )
        if packed:
            return varlen_sdpa(module, query, key, value, None, **kwargs)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("sdpa", sdpa_or_varlen)


def compact_lm_head() -> None:
    import trl.trainer.utils as trl_utils

    # In TRL 1.16 this module-level name is read only to decide `compact`; the kernels keep
    # their own reference, so the CPU still runs TRL's torch tiles, not Triton.
    trl_utils._use_triton = lambda device: True


def frozen_weights_in_bf16() -> None:
    import ftx.runner

    call_first = ftx.runner.call_first

    def patched(pm, hook, **kwargs):
        result, who = call_first(pm, hook, **kwargs)
        if hook == "select_trainable" and kwargs["run"].train_args.get("bf16"):
            import torch

            for param in result.parameters():
                state = getattr(param, "quant_state", None)
                if state is not None:
                    state.dtype = torch.bfloat16
                elif not param.requires_grad and param.dtype == torch.float32:
                    param.data = param.data.to(torch.bfloat16)
        return result, who

    ftx.runner.call_first = patched


def main() -> None:
    # FTX_BENCH_ONLY=head,bf16,malloc applies only those (to measure one change end to end).
    only = set(os.environ.get("FTX_BENCH_ONLY", "head,bf16,malloc").split(","))
    malloc = os.environ.get("FTX_BENCH_MALLOC", "trim") if "malloc" in only else "off"
    if malloc == "mmap":
        return_freed_memory()
    import ftx  # noqa: F401  (sets OMP_WAIT_POLICY before torch, as the ftx command does)

    if "head" in only:
        compact_lm_head()
    if "bf16" in only:
        frozen_weights_in_bf16()
    if malloc == "trim":
        trim_after_each_step()
    if "varlen" in only:
        varlen_attention()
    from ftx.cli import cli

    cli(sys.argv[1:], prog_name="ftx")


if __name__ == "__main__":
    main()
