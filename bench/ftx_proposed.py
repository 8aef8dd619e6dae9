"""``ftx`` with the CPU changes proposed in BENCHMARKS.md applied from the outside, to measure
them end to end before they are made in ftx itself. Same arguments as ``ftx``::

    python bench/ftx_proposed.py run --plugin qlora ... [--set method.lora_dropout=0]

Applied here (each one measured on its own by ``bench/ablations.py``):

1. **LM head on trained tokens only**: TRL 1.16's fused LM head projects only the positions that
   have a label on Triton devices (``compact = _use_triton(device)`` in ``trl.trainer.utils``)
   and every position elsewhere; here it is compact on the CPU too. Same loss, same gradients.
2. **frozen weights in bf16** (qlora, sft): after ``select_trainable``, frozen floating-point
   weights that are not 4-bit packed are stored in bf16 (as a bf16 load keeps them), instead of
   the fp32 that ``prepare_model_for_kbit_training`` upcasts them to.
3. **glibc returns freed memory**: ``mallopt(M_MMAP_THRESHOLD, 128 KiB)`` and
   ``M_TRIM_THRESHOLD`` at start-up, so large tensors freed after a step go back to the OS
   instead of piling up in the heap (glibc's dynamic threshold otherwise rises to 32 MiB and
   peak RSS grows step after step).

The fourth proposal, LoRA dropout 0 on the CPU, is an option: the harness passes
``--set method.lora_dropout=0``.
"""

from __future__ import annotations

import ctypes
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
                packed = type(param).__name__ == "Params4bit"
                if not param.requires_grad and param.dtype == torch.float32 and not packed:
                    param.data = param.data.to(torch.bfloat16)
        return result, who

    ftx.runner.call_first = patched


def main() -> None:
    return_freed_memory()
    import ftx  # noqa: F401  (sets OMP_WAIT_POLICY before torch, as the ftx command does)

    compact_lm_head()
    frozen_weights_in_bf16()
    from ftx.cli import cli

    cli(sys.argv[1:], prog_name="ftx")


if __name__ == "__main__":
    main()
