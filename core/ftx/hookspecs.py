"""The contract between the ftx host and method plugins.

A run walks one method plugin through four hooks, in this order::

    load_model -> select_trainable -> build_trainer -> (trainer.train()) -> export

Rules that hold for every hook:

* Calls are keyword-only. An implementation may accept any *subset* of the arguments named in
  the spec, in any order; accepting a name that is not in the spec is an error reported by
  ``ftx plugins`` against the plugin and hook.
* The four method hooks are ``firstresult``: the host stops at the first implementation that
  returns something other than ``None``. Returning ``None`` means "not mine, ask the next one".
* For a run the host registers only the core defaults (``ftx.defaults``, all ``trylast``) and the
  *selected* plugin, so a plugin overrides exactly the hooks where its method differs and the
  defaults answer the rest. Which implementation answered each hook is recorded in
  ``summary.json`` under ``hooks``.
* ``run`` is an :class:`ftx.context.RunContext`: the resolved config, the plugin's validated
  options (``run.options``), the device, the model path and the run directory.
* Entry-point modules must not import torch/transformers/peft/trl/bitsandbytes at import time;
  import them inside the hook bodies.
"""

from __future__ import annotations

from typing import Any

import pluggy

from ftx import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec(firstresult=True)
def method_options() -> list[Any] | None:
    """Declare the plugin's own options (the ``method:`` section of a run config).

    Called by ``ftx plugins show``, by config validation and by ``ftx run`` before anything heavy
    is imported, so it must stay cheap: no torch, no model.

    Returns a list of :class:`ftx.options.Option` (name, type, default, help, choices). A default
    of ``"auto"`` means "decided from the hardware at run time" and is shown as ``auto``.
    ``None`` (or no implementation) means the plugin takes no options; any ``method.*`` key is
    then an error.
    """


@hookspec(firstresult=True)
def train_defaults(device: Any) -> dict[str, Any] | None:
    """Return the plugin's preferred training-argument defaults, e.g. ``{"learning_rate": 2e-4}``.

    ``device`` is an :class:`ftx.context.DeviceInfo`. Called once per run, before the config is
    resolved: the user's ``train:`` values and ``--set train.*`` always win over these, and these
    win over the core's defaults. Keys are TrainingArguments/SFTConfig field names. Must be cheap.
    ``None`` keeps the core defaults.
    """


@hookspec(firstresult=True)
def load_model(run: Any) -> Any | None:
    """Load the model to be trained and return it (a ``transformers.PreTrainedModel``).

    Called once, after the data has been validated and tokenised and the run directory created,
    and after the host has seeded Python, NumPy and torch with ``train.seed`` (so any random
    initialisation here and in ``select_trainable`` is reproducible). The model weights live at
    ``run.model_path`` (always a local Hugging Face directory: GGUF files and the demo are
    converted by the host). Use ``run.dtype`` and ``run.attn_implementation`` unless the method
    needs otherwise (QLoRA quantises here).
    Core default: ``AutoModelForCausalLM.from_pretrained`` with those settings.
    ``None`` means "use the next implementation" (ultimately the core default).
    """


@hookspec(firstresult=True)
def select_trainable(run: Any, model: Any) -> Any | None:
    """Decide what trains: freeze, unfreeze or wrap (e.g. PEFT adapters) and return the model.

    Called once, right after ``load_model`` with its result. Must leave at least one parameter
    with ``requires_grad=True``; the host reports trainable/total parameter counts from the
    returned model and rejects an empty selection. Raise :class:`ftx.errors.BadInput` for an
    option value that selects nothing (naming the option, the value and the valid range).
    Core default: every parameter trainable (full fine-tuning).
    """


@hookspec(firstresult=True)
def build_trainer(
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    data_collator: Any,
    callbacks: list[Any],
) -> Any | None:
    """Build and return a ``transformers.Trainer`` (or subclass) ready for ``.train()``.

    Called once, after ``select_trainable``. ``train_dataset``/``eval_dataset`` are
    ``datasets.Dataset`` objects of already tokenised rows (``input_ids``, ``labels``; labels are
    -100 on every token that must not be trained); ``eval_dataset`` may be ``None``.
    ``data_collator`` batches them (padding-free packing or padding, per ``data.packing``).
    ``callbacks`` are the host's (metrics log, progress, NaN guard, interrupt handling): pass
    them all to the trainer. ``run.train_args`` holds the resolved TrainingArguments/SFTConfig
    keyword arguments. Core default: ``ftx.trainer``'s ``SFTTrainer`` subclass (TRL's, with a
    lean loss off CUDA) with ``SFTConfig(**run.train_args)``; ``ftx.defaults.make_sft_trainer``
    builds it for plugins that only change arguments.
    """


@hookspec
def training_arguments(run: Any, model: Any) -> dict[str, Any] | None:
    """Return training-argument overrides this method needs for this run, e.g. FSDP settings.

    Called once, after ``select_trainable`` and before ``build_trainer``, with the model it
    returned. Every implementation is called (not ``firstresult``); the dicts are merged over
    ``run.train_args`` (the selected plugin's win over the core's), so the trainer — the core
    default's or a plugin's own — sees them in ``run.train_args``. Keys are fields of the
    run's arguments class. Use this instead of restating ``build_trainer`` when only arguments
    differ. ``None`` or ``{}``: nothing to change.
    """


@hookspec
def trainer_ready(run: Any, model: Any, trainer: Any) -> None:
    """Adjust the built trainer or model before training starts (e.g. recast adapter weights).

    Called once, right after ``build_trainer``, with its result; every implementation is
    called. Return value ignored. Use this instead of restating ``build_trainer`` when only a
    step after construction differs.
    """


@hookspec(firstresult=True)
def export(run: Any, model: Any, tokenizer: Any, trainer: Any) -> dict[str, str] | None:
    """Write the trained artifacts into ``run.output_dir`` and return ``{kind: path}``.

    Called once, only after training finished (never for an interrupted or failed run).
    Every run must produce ``model/``: a directory that plain
    ``AutoModelForCausalLM.from_pretrained`` loads (full weights, or adapters merged into the
    unquantised base) with the tokenizer and chat template. Adapter methods also write
    ``adapter/``. Write to a temporary sibling and rename (``ftx.artifacts.atomic_dir``), so a
    crash never leaves a half-written artifact. Core default: ``save_pretrained`` of the model
    and tokenizer into ``model/``.
    """


@hookspec(firstresult=True)
def estimate_memory(
    model_config: Any, seq_len: int, batch_size: int, options: dict, device: Any, dtype: str
) -> Any | None:
    """Estimate this method's peak training memory without loading weights (``ftx plan``).

    ``model_config`` is the model's ``transformers`` config (read from ``config.json`` or GGUF
    metadata; any object with the usual attribute names); ``seq_len``/``batch_size`` the padded
    tokens per row and rows per step; ``options`` the plugin's resolved options (defaults plus
    the user's ``--set PLUGIN.KEY=VALUE``); ``device`` the :class:`ftx.context.DeviceInfo`
    planned for (``kind``, ``bf16``); ``dtype`` the weights dtype a run would load
    (``"float32"``, ``"bfloat16"`` …, i.e. ``run.dtype``; bf16 autocast is on when
    ``device.bf16`` and the weights are fp32).

    Must be cheap (no torch, no weights). Return an :class:`ftx.plan.MemoryEstimate` built
    with the shared helpers in :mod:`ftx.plan` (``model_shape``, ``precision_for``,
    ``estimate_dense``, ``activation_bytes``, ``lora_params`` …). Raise
    :class:`ftx.errors.BadInput` for an option value that makes no sense for this model.
    ``None``: the method has no estimate and ``ftx plan`` shows it as unknown.
    """
