"""ftx-qlora: QLoRA — a frozen 4-bit (NF4) base via bitsandbytes, trainable LoRA adapters via PEFT.

Hooks: ``load_model`` (quantise on load), ``select_trainable`` (k-bit preparation + LoRA),
``trainer_ready`` (fp32 adapter weights), ``export`` (``adapter/`` and a merged ``model/`` built
on the unquantised base). The trainer is the core default (TRL ``SFTTrainer``). Importing this
module imports no torch.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.engine import FSDP_OPTIONS
from ftx.options import AUTO, Option
from ftx_qlora.settings import ALL_LINEAR, PAGED_OPTIMIZER, compute_dtype, target_modules

OPTIONS = [
    Option("bits", "int", 4, "quantisation of the frozen base", choices=(4, 8)),
    Option("quant_type", "str", "nf4", "4-bit data type", choices=("nf4", "fp4")),
    Option("double_quant", "bool", True, "also quantise the quantisation constants"),
    Option(
        "compute_dtype",
        "str",
        AUTO,
        "matmul dtype: auto = bf16 where supported, else fp32",
        choices=(AUTO, "bfloat16", "float16", "float32"),
    ),
    Option("r", "int", 16, "LoRA rank", min=1),
    Option(
        "lora_alpha",
        "int",
        32,
        "LoRA scaling numerator (scale = alpha / r)",
        min=0,
        min_exclusive=True,
    ),
    Option(
        "lora_dropout",
        "float",
        0.0,
        "dropout on the LoRA input (0, as LLaMA-Factory and Unsloth: a mask per LoRA input "
        "costs ~30% step time on the CPU)",
        min=0,
        max=1,
        max_exclusive=True,
    ),
    Option(
        "target_modules",
        "str",
        ALL_LINEAR,
        f"'{ALL_LINEAR}' or a comma list of module names (q_proj,v_proj,…)",
        alternatives=("list",),
    ),
    Option(
        "modules_to_save",
        "list",
        None,
        "extra modules trained in full (e.g. lm_head)",
        nullable=True,
    ),
    Option("use_dora", "bool", False, "DoRA: weight-decomposed LoRA"),
    Option("use_rslora", "bool", False, "rank-stabilised LoRA scaling (alpha / sqrt(r))"),
    *FSDP_OPTIONS,
]


@hookimpl
def method_options() -> list[Option]:
    return OPTIONS


LEARNING_RATES = {
    **dict.fromkeys(("supervised", "orpo", "simpo"), 1e-3),
    "dpo": 1e-4,
    "kto": 3e-4,
}
"""Per objective (the others: None, the objective's own). LoRA on a small model needs a larger
step than full fine-tuning. Measured on the demo (SmolLM2-135M, batch 8): supervised, 98.8%
held-out exact match in 60 steps. Preference tuning, 12 steps, held-out pairwise accuracy from
0.775 (40 pairs; mean margin 3.8 nats): DPO 1e-4 -> 0.800 (4.4), 3e-4 -> 0.775 (5.8), 1e-3 ->
0.925 (14.2), 3e-3 -> 0.925 (28.0); ORPO 1e-3 -> 0.875, SimPO 1e-3 -> 0.875; KTO 1e-4 -> 0.800
(4.0), 3e-4 -> 0.800 (4.4), 1e-3 -> 0.575 (1.1: the loss saturates, gradients vanish). DPO's
default is what does not undo a supervised run DPO usually follows: 8 steps from a 60-step
supervised qlora run (held-out exact 1.000, n=40) kept 1.000 at 1e-4 and 3e-4 but fell to
0.425 at 1e-3; the larger steps above pay off from the base model only."""


@hookimpl
def train_defaults(device: Any, objective: str) -> dict[str, Any] | None:
    """Learning rate per objective (:data:`LEARNING_RATES`); supervised: **1e-3**, cosine,
    5% warm-up (LoRA on a small model needs a larger step than 7B recipes' 2e-4); the paged
    optimizer on CUDA.

    Evidence, SmolLM2-135M-Instruct, batch 8, one epoch, held-out exact match (BENCHMARKS.md
    §10): the demo (60 steps, 80 rows) 1.000 at 1e-3; the multi-turn task
    (``bench/eval_budget.py``: 40 steps, 40 rows) 0.025 at 3e-4, **0.150 at 1e-3**, 0.375 at
    3e-3, but the demo at 3e-3 0.863 (1.000 at 1e-3): the larger step does not generalise.
    The default budget (up to 3 epochs, the best checkpoint, early stopping) takes the
    multi-turn task at 1e-3 to 0.725."""
    rate = LEARNING_RATES.get(objective)
    out: dict[str, Any] = {}
    if rate is not None:
        out = {"learning_rate": rate, "lr_scheduler_type": "cosine", "warmup_steps": 0.05}
    if device.kind == "cuda":  # the QLoRA paper's paged optimizer (CUDA-only paging)
        out["optim"] = PAGED_OPTIMIZER
    return out or None


def require(package: str) -> None:
    """Raise a clear BadInput if an optional dependency of this plugin is missing."""
    import importlib.util

    from ftx.errors import BadInput

    if importlib.util.find_spec(package) is None:
        raise BadInput(
            f"the qlora plugin needs the '{package}' package, which is not installed",
            hint="pip install ftx-qlora   (it brings bitsandbytes and peft)",
        )


@hookimpl
def load_model(run: Any) -> Any:
    require("bitsandbytes")
    require("peft")
    from ftx_qlora.settings import check_fsdp_qlora

    check_fsdp_qlora(run.options, run.device)
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from ftx.loading import from_pretrained_kwargs, torch_dtype
    from ftx_qlora.settings import DTYPE_KEYS, load_dtype, quantization_settings

    settings = quantization_settings(run.options, run.device)
    quant = BitsAndBytesConfig(
        **{k: torch_dtype(v) if k in DTYPE_KEYS else v for k, v in settings.items() if v}
    )
    kwargs = from_pretrained_kwargs(run)
    kwargs["dtype"] = torch_dtype(load_dtype(run.options, run.device))
    if run.device.kind == "cuda":
        from ftx.ranks import local_rank

        kwargs["device_map"] = {"": local_rank()}
    model = AutoModelForCausalLM.from_pretrained(
        str(run.model_path), quantization_config=quant, **kwargs
    )
    model.config.use_cache = False
    return model


@hookimpl
def select_trainable(run: Any, model: Any) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from ftx.errors import BadInput
    from ftx.layers import linear_module_names

    opts = run.options
    from ftx_qlora.settings import fsdp_qlora

    checkpointing = bool(run.train_args.get("activation_checkpointing"))
    sharded = fsdp_qlora(opts, run.device)
    if sharded:  # FSDP: no fp32 upcast of the unquantised parts (one dtype to flatten)
        for param in model.parameters():
            param.requires_grad_(False)
        if checkpointing:
            model.enable_input_require_grads()
    else:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs=run.train_args.get("activation_checkpointing_kwargs"),
        )
    known = set(linear_module_names(model))
    targets = target_modules(opts["target_modules"])
    if targets is None:
        targets = linear_module_names(model)
    unknown = [t for t in targets if t not in known]
    if unknown or not targets:
        raise BadInput(
            f"method.target_modules: {', '.join(unknown) or '(empty)'} matches no linear layer; "
            f"this model has: {', '.join(sorted(known))}"
        )
    config = LoraConfig(
        r=opts["r"],
        lora_alpha=opts["lora_alpha"],
        lora_dropout=opts["lora_dropout"],
        target_modules=targets,
        modules_to_save=opts["modules_to_save"],
        use_dora=opts["use_dora"],
        use_rslora=opts["use_rslora"],
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    if sharded:
        _hold_in(model, compute_dtype(opts["compute_dtype"], run.device))
    lean = ""
    if run.device.kind == "cpu":  # measured there (bench/floor.py); GPUs keep PEFT's forward
        from ftx.lora_forward import use_lean_forward

        lean = f" (update added in one addmm in {use_lean_forward(model)} layers)"
    run.log(f"LoRA r={opts['r']} alpha={opts['lora_alpha']} on {', '.join(targets)}{lean}")
    return model


def _hold_in(model: Any, dtype: str) -> None:
    """Cast every floating-point parameter that is not a packed 4-bit weight to ``dtype``."""
    from ftx.loading import torch_dtype

    target = torch_dtype(dtype)
    for param in model.parameters():
        if param.is_floating_point() and type(param).__name__ != "Params4bit":
            param.data = param.data.to(target)


@hookimpl
def trainer_ready(run: Any, model: Any) -> None:
    from ftx_qlora.settings import fsdp_qlora

    if fsdp_qlora(run.options, run.device):
        run.report(adapter_dtype=compute_dtype(run.options["compute_dtype"], run.device))
        return  # FSDP flattens one dtype: the adapters stay in the compute dtype
    # TRL casts the adapters of quantised models to bf16. ftx keeps fp32 master weights for the
    # adapters (bf16 compute still comes from autocast): small LoRA updates survive rounding.
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()


@hookimpl
def training_arguments(run: Any, model: Any) -> dict[str, Any]:
    from ftx.engine import engine_arguments

    overrides, engine = engine_arguments(run, model, quantized=True)
    run.report(engine=engine)
    run.log(f"engine: {engine}")
    return overrides


@hookimpl
def export(run: Any, model: Any, tokenizer: Any) -> dict[str, str]:
    from ftx.adapters import export_adapter_method

    return export_adapter_method(run, model, tokenizer)


@hookimpl
def estimate_memory(
    model_config, seq_len, batch_size, options, device, dtype, objective=None, optim=None
):
    from ftx_qlora.estimate import estimate

    return estimate(model_config, seq_len, batch_size, options, device, dtype, objective, optim)
