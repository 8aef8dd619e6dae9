"""How a run is spread over processes (FSDP or DeepSpeed), defined once for every method that
offers it (fft, qlora): the options, the Trainer arguments, the engine summary line and the
sharded export. Torch-free at import.

Accelerate does not switch FSDP on for CPU backends (an ``fsdp`` setting silently runs DDP
there), so :func:`engine_arguments` only passes FSDP settings where they take effect and
reports the engine that will actually run. On a CUDA GPU, FSDP with one process is real: the
run is relaunched under torchrun with one process (:func:`needs_launcher`), so accelerate builds
a process group and shards (over one rank: nothing is saved, but the code path is the one
several GPUs run, and a single GPU can test it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ftx.errors import BadInput
from ftx.options import Option

FSDP_CHOICES = ("off", "full_shard", "shard_grad_op", "hybrid_shard")

FSDP_OPTIONS = [
    Option(
        "fsdp",
        "str",
        "off",
        "FSDP sharding (CUDA; one process is relaunched under torchrun, several with --nproc)",
        choices=FSDP_CHOICES,
    ),
    Option("fsdp_offload", "bool", False, "offload FSDP parameters/optimizer state to the CPU"),
]
"""The options of a method that shards with FSDP: ``method.fsdp``, ``method.fsdp_offload``."""

DEEPSPEED_OPTION = Option(
    "deepspeed", "str", None, "path to a DeepSpeed JSON config (instead of FSDP)", nullable=True
)


def wants_fsdp(options: dict[str, Any]) -> bool:
    """True when the run's method options ask for FSDP."""
    return options.get("fsdp", "off") not in (None, "off")


def needs_launcher(options: dict[str, Any], device: Any) -> bool:
    """True when a single-process run must still start under torchrun: FSDP on a CUDA GPU
    (accelerate shards only inside a process group)."""
    return wants_fsdp(options) and device.kind == "cuda"


def fsdp_settings(
    option: str, layer_cls: str, *, offload: bool, quantized: bool = False
) -> dict[str, Any]:
    """``fsdp``/``fsdp_config`` Trainer arguments for a sharding choice and a block class.

    ``quantized`` (FSDP + QLoRA, as Answer.AI and PEFT run it): 4-bit weights are stored in
    the compute dtype (``bnb_4bit_quant_storage``) so they shard like the rest; the flat
    parameters mix frozen and trained tensors, so ``use_orig_params`` stays on, and each rank
    loads the weights on the CPU once (``cpu_ram_efficient_loading``)."""
    words = [option, "auto_wrap"] + (["offload"] if offload else [])
    config: dict[str, Any] = {
        "transformer_layer_cls_to_wrap": [layer_cls],
        "use_orig_params": True,
        "sync_module_states": True,
    }
    if quantized:
        config["cpu_ram_efficient_loading"] = True
    return {"fsdp": " ".join(words), "fsdp_config": config}


def engine_arguments(
    run: Any, model: Any, *, quantized: bool = False
) -> tuple[dict[str, Any], str]:
    """Return ``(trainer argument overrides, engine description)`` for this run
    (``run.options``: :data:`FSDP_OPTIONS`, optionally ``deepspeed``)."""
    from ftx.layers import decoder_blocks
    from ftx.ranks import world_size

    opts = run.options
    n = world_size()
    if opts.get("deepspeed"):
        path = Path(opts["deepspeed"])
        if not path.is_file():
            raise BadInput(f"method.deepspeed: config file not found: {path}")
        return {"deepspeed": str(path)}, f"deepspeed ({path.name}) × {n}"
    # DDP: a full fine-tune gives every parameter a gradient; skip the unused-parameter scan.
    ddp = {"ddp_find_unused_parameters": False} if n > 1 and not quantized else {}
    if not wants_fsdp(opts):
        return ddp, ("ddp" if n > 1 else "single process") + f" × {n} on {run.device.kind}"
    _, blocks = decoder_blocks(model)
    layer = type(blocks[0]).__name__
    settings = fsdp_settings(
        opts["fsdp"], layer, offload=bool(opts.get("fsdp_offload")), quantized=quantized
    )
    if run.device.kind != "cuda":
        return ddp, (
            f"{'ddp' if n > 1 else 'single process'} × {n} on {run.device.kind} (FSDP "
            f"{settings['fsdp']!r} requested, wrapping {layer}; accelerate runs FSDP only on GPUs)"
        )
    return settings, f"fsdp {settings['fsdp']} × {n} (wrap {layer})"


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
