"""Translate the fft plugin's options into Trainer arguments for FSDP/DeepSpeed, honestly.

Accelerate does not switch FSDP on for CPU backends (an ``fsdp`` setting silently runs DDP
there), so :func:`engine_arguments` only passes FSDP settings where they take effect and
reports the engine that will actually run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ftx.errors import BadInput
from ftx.ranks import world_size


def fsdp_settings(option: str, layer_cls: str, *, offload: bool) -> dict[str, Any]:
    """``fsdp``/``fsdp_config`` Trainer arguments for a sharding choice and a block class."""
    words = [option, "auto_wrap"] + (["offload"] if offload else [])
    return {
        "fsdp": " ".join(words),
        "fsdp_config": {
            "transformer_layer_cls_to_wrap": [layer_cls],
            "use_orig_params": True,
            "sync_module_states": True,
        },
    }


def engine_arguments(run: Any, model: Any) -> tuple[dict[str, Any], str]:
    """Return ``(trainer argument overrides, engine description)`` for this run."""
    from ftx.layers import decoder_blocks

    opts = run.options
    n = world_size()
    if opts["deepspeed"]:
        path = Path(opts["deepspeed"])
        if not path.is_file():
            raise BadInput(f"method.deepspeed: config file not found: {path}")
        return {"deepspeed": str(path)}, f"deepspeed ({path.name}) × {n}"
    # DDP: every parameter of a full fine-tune gets a gradient; skip the unused-parameter scan.
    ddp = {"ddp_find_unused_parameters": False} if n > 1 else {}
    if opts["fsdp"] == "off":
        return ddp, ("ddp" if n > 1 else "single process") + f" × {n} on {run.device.kind}"
    _, blocks = decoder_blocks(model)
    settings = fsdp_settings(opts["fsdp"], type(blocks[0]).__name__, offload=opts["fsdp_offload"])
    if run.device.kind != "cuda":
        return ddp, (
            f"ddp × {n} on {run.device.kind} (FSDP {settings['fsdp']!r} requested, wrapping "
            f"{type(blocks[0]).__name__}; accelerate runs FSDP only on GPUs)"
        )
    if n == 1:
        return {}, "single process (FSDP needs more than one process: use --nproc)"
    return settings, f"fsdp {settings['fsdp']} × {n} (wrap {type(blocks[0]).__name__})"


def export_sharded(run: Any, tokenizer: Any, trainer: Any) -> dict[str, str] | None:
    """Gather a sharded model (FSDP/DeepSpeed) with ``trainer.save_model`` on every rank;
    ``None`` for unsharded runs, which the core default exports."""
    if not (getattr(trainer, "is_fsdp_enabled", False) or trainer.is_deepspeed_enabled):
        return None
    final = run.output_dir / "model"
    staging = run.output_dir / ".tmp-model-gather"
    trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    if run.is_main_process:
        tokenizer.save_pretrained(str(staging))
        os.replace(staging, final)
    trainer.accelerator.wait_for_everyone()
    return {"model": str(final)}
