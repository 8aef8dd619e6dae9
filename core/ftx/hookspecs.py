"""The contract between the ftx host and method plugins: nine hooks, one spec each.

Per-run hooks, called in this order (``run`` is the run's :class:`ftx.context.RunContext`)::

    load_model -> select_trainable -> training_arguments -> build_trainer -> trainer_ready
    -> (trainer.train()) -> export

Declarative hooks, cheap (no torch, no weights), called outside a run or before it starts:

* ``method_options``: the plugin's options schema (``ftx plugins show``, config validation);
* ``train_defaults``: its preferred training arguments, before the config is resolved;
* ``estimate_memory``: its peak training memory for ``ftx plan``, from the model's config.

Rules that hold for every hook:

* Calls are keyword-only. An implementation may accept any *subset* of the arguments named in
  the spec, in any order; accepting a name that is not in the spec is an error reported by
  ``ftx plugins`` against the plugin and hook.
* ``training_arguments`` and ``trainer_ready`` call every implementation (the core's first, the
  selected plugin's last: :func:`ftx.plugins.call_all`). The other seven are ``firstresult``:
  the host stops at the first implementation that returns something other than ``None``
  (:func:`ftx.plugins.call_first`). Returning ``None`` means "not mine, ask the next one".
* For a run the host registers only the core defaults (``ftx.defaults``, all ``trylast``) and the
  *selected* plugin, so a plugin overrides exactly the hooks where its method differs and the
  defaults answer the rest. Which implementation answered each per-run hook is recorded in
  ``summary.json`` under ``hooks`` (a name, or a list for the hooks that call every one).
* Ranks: in a distributed run (``ftx run --nproc N``, ``torchrun``) every process calls every
  per-run hook, ``export`` included (sharded engines gather the weights collectively there).
  Only the main process writes files and prints: test ``run.is_main_process``
  (:mod:`ftx.ranks`) before writing, and print with ``run.log(...)``, which is silent elsewhere.
* Facts a plugin learns during the run (the engine that ran, a layer count …) go into
  ``summary.json`` through ``run.report(key=value)``.
* The types named in the signatures (``RunContext``, ``PreTrainedModel``, ``Trainer``,
  ``datasets.Dataset`` …) are imported for type checkers only: importing this module, or a
  plugin's entry-point module, must not import torch/transformers/peft/trl/bitsandbytes;
  import them inside the hook bodies.

``scripts/doc_reference.py`` renders CONTRIBUTING.md's hook reference from these docstrings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from ftx import PROJECT

if TYPE_CHECKING:
    from collections.abc import Callable

    from datasets import Dataset
    from peft import PeftModel
    from transformers import (
        PretrainedConfig,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Trainer,
        TrainerCallback,
    )

    from ftx.context import DeviceInfo, RunContext
    from ftx.estimates import MemoryEstimate
    from ftx.options import Option

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec(firstresult=True)
def method_options() -> list[Option] | None:
    """Declare the plugin's own options (the ``method:`` section of a run config).

    Called by ``ftx plugins show``, by config validation and by ``ftx run`` before anything heavy
    is imported, so it must stay cheap: no torch, no model.

    Returns a list of :class:`ftx.options.Option` (``name, type, default, help, choices=None,
    nullable=False, alternatives=()``); types are ``str``, ``int``, ``float``, ``bool``,
    ``list``, ``any``. A default of ``"auto"`` means "decided from the hardware at run time"
    and is shown as ``auto``. ``None`` (or no implementation) means the plugin takes no
    options; any ``method.*`` key is then an error.

    Example::

        @hookimpl
        def method_options():
            return [Option("scale", "float", 1.0, "how much to scale the adapter")]
    """


@hookspec(firstresult=True)
def train_defaults(device: DeviceInfo) -> dict[str, Any] | None:
    """Return the plugin's preferred training-argument defaults, e.g. ``{"learning_rate": 2e-4}``.

    ``device`` is the :class:`ftx.context.DeviceInfo` of the run (``kind``, ``bf16``,
    ``count``). Called once per run, before the config is resolved: the user's ``train:``
    values and ``--set train.*`` always win over these, and these win over the core's
    defaults. Keys are TrainingArguments/SFTConfig field names. Must be cheap. ``None`` keeps
    the core defaults.

    Example::

        @hookimpl
        def train_defaults(device):
            return {"learning_rate": 3e-4}
    """


@hookspec(firstresult=True)
def load_model(run: RunContext) -> PreTrainedModel | None:
    """Load the model to be trained and return it (a ``transformers.PreTrainedModel``).

    Called once, after the data has been validated and tokenised and the run directory created,
    and after the host has seeded Python, NumPy and torch with ``train.seed`` (so any random
    initialisation here and in ``select_trainable`` is reproducible). The model weights live at
    ``run.model_path`` (always a local Hugging Face directory: GGUF files and the demo are
    converted by the host). Use ``run.dtype`` and ``run.attn_implementation`` unless the method
    needs otherwise (QLoRA quantises here). Raise :class:`ftx.errors.BadInput` for a missing
    optional package, naming the ``pip install`` that brings it.
    Core default: ``AutoModelForCausalLM.from_pretrained`` with those settings.
    ``None`` means "use the next implementation" (ultimately the core default).

    Example::

        @hookimpl
        def load_model(run):
            from transformers import AutoModelForCausalLM

            return AutoModelForCausalLM.from_pretrained(run.model_path, dtype="auto")
    """


@hookspec(firstresult=True)
def select_trainable(run: RunContext, model: PreTrainedModel) -> PreTrainedModel | PeftModel | None:
    """Decide what trains: freeze, unfreeze or wrap (e.g. PEFT adapters) and return the model.

    Called once, right after ``load_model`` with its result. Must leave at least one parameter
    with ``requires_grad=True``; the host reports trainable/total parameter counts from the
    returned model and rejects an empty selection. Raise :class:`ftx.errors.BadInput` for an
    option value that selects nothing (naming the option, the value and the valid range).
    Core default: every parameter trainable (full fine-tuning).

    Example::

        @hookimpl
        def select_trainable(run, model):
            for name, p in model.named_parameters():
                p.requires_grad_("mlp" in name)
            return model
    """


@hookspec
def training_arguments(
    run: RunContext, model: PreTrainedModel | PeftModel
) -> dict[str, Any] | None:
    """Return training-argument overrides this method needs for this run, e.g. FSDP settings.

    Called once, after ``select_trainable`` and before ``build_trainer``, with the model it
    returned. Every implementation is called (not ``firstresult``); the dicts are merged over
    ``run.train_args`` (the selected plugin's win over the core's), so the trainer — the core
    default's or a plugin's own — sees them in ``run.train_args``. Keys are fields of the
    run's arguments class. Use this instead of restating ``build_trainer`` when only arguments
    differ (the fft plugin passes its FSDP/DeepSpeed settings this way, and records the engine
    that will run with ``run.report(engine=...)``). ``None`` or ``{}``: nothing to change.

    Example::

        @hookimpl
        def training_arguments(run, model):
            return {"max_grad_norm": 0.3}
    """


@hookspec(firstresult=True)
def build_trainer(
    run: RunContext,
    model: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    train_dataset: Dataset,
    eval_dataset: Dataset | None,
    data_collator: Callable[[list[dict[str, Any]]], dict[str, Any]],
    callbacks: list[TrainerCallback],
) -> Trainer | None:
    """Build and return a ``transformers.Trainer`` (or subclass) ready for ``.train()``.

    Called once, after ``training_arguments``. ``train_dataset`` is a ``datasets.Dataset`` of
    already tokenised rows (``input_ids``, ``labels``; labels are -100 on every token that must
    not be trained). ``eval_dataset`` holds the run's held-out rows (``data.eval`` or
    ``data.eval_ratio``), tokenised the same way, or is ``None`` when the run has no held-out
    split; passing it on lets ``train.eval_strategy`` log a held-out loss during training (the
    host's before/after scoring with ``data.eval_metric`` runs on its own).
    ``data_collator`` batches rows (padding-free packing or padding, per ``data.packing``).
    ``callbacks`` are the host's (metrics log, progress, NaN guard, interrupt handling): pass
    them all to the trainer. ``run.train_args`` holds the resolved TrainingArguments/SFTConfig
    keyword arguments, ``training_arguments`` overrides included. Core default: ``ftx.trainer``'s
    ``SFTTrainer`` subclass (TRL's, with a lean loss off CUDA) with ``SFTConfig(**run.train_args)``,
    built by ``ftx.trainer.build_sft_trainer``. A method that needs other *arguments* implements
    ``training_arguments`` instead; one that needs another *trainer class* passes it here.

    Example (a trainer subclass; everything else as the core builds it)::

        @hookimpl
        def build_trainer(
            run, model, tokenizer, train_dataset, eval_dataset, data_collator, callbacks
        ):
            from ftx.trainer import build_sft_trainer, trainer_class

            class ClippedTrainer(trainer_class()):
                ...

            return build_sft_trainer(
                run=run,
                model=model,
                tokenizer=tokenizer,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                data_collator=data_collator,
                callbacks=callbacks,
                trainer_cls=ClippedTrainer,
            )
    """


@hookspec
def trainer_ready(run: RunContext, model: PreTrainedModel | PeftModel, trainer: Trainer) -> None:
    """Adjust the built trainer or model before training starts (e.g. recast adapter weights).

    Called once, right after ``build_trainer``, with its result; every implementation is
    called. Return value ignored. Use this instead of restating ``build_trainer`` when only a
    step after construction differs (the qlora plugin keeps its adapters fp32 here, after TRL
    cast them to bf16).

    Example::

        @hookimpl
        def trainer_ready(model):
            for param in model.parameters():
                if param.requires_grad:
                    param.data = param.data.float()
    """


@hookspec(firstresult=True)
def export(
    run: RunContext,
    model: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    trainer: Trainer,
) -> dict[str, str] | None:
    """Write the trained artifacts into ``run.output_dir`` and return ``{kind: path}``.

    Called once, only after training finished (never for an interrupted or failed run), on
    every rank: a sharded engine gathers its weights collectively here, and only the main
    process (``run.is_main_process``) writes; other ranks return ``{}``.
    Every run must produce ``model/``: a directory that plain
    ``AutoModelForCausalLM.from_pretrained`` loads (full weights, or adapters merged into the
    unquantised base: ``ftx.adapters.export_adapter_method``) with the tokenizer and chat
    template. Adapter methods also write ``adapter/``. Write to a temporary sibling and rename
    (``ftx.artifacts.atomic_dir``), so a crash never leaves a half-written artifact. Core
    default: ``save_pretrained`` of the model and tokenizer into ``model/``.

    Example::

        @hookimpl
        def export(run, model, tokenizer):
            from ftx.adapters import export_adapter_method

            return export_adapter_method(run, model, tokenizer)
    """


@hookspec(firstresult=True)
def estimate_memory(
    model_config: PretrainedConfig,
    seq_len: int,
    batch_size: int,
    options: dict[str, Any],
    device: DeviceInfo,
    dtype: str,
) -> MemoryEstimate | None:
    """Estimate this method's peak training memory without loading weights (``ftx plan``).

    ``model_config`` is the model's ``transformers`` config (read from ``config.json`` or GGUF
    metadata; any object with the usual attribute names); ``seq_len``/``batch_size`` the padded
    tokens per row and rows per step; ``options`` the plugin's resolved options (defaults plus
    the user's ``--set [PLUGIN:]method.KEY=VALUE``); ``device`` the :class:`ftx.context.DeviceInfo`
    planned for (``kind``, ``bf16``); ``dtype`` the weights dtype a run would load
    (``"float32"``, ``"bfloat16"`` …, i.e. ``run.dtype``; bf16 autocast is on when
    ``device.bf16`` and the weights are fp32).

    Must be cheap (no torch, no weights). Return an :class:`ftx.estimates.MemoryEstimate` built
    with the shared helpers in :mod:`ftx.estimates` (``model_shape``, ``precision_for``,
    ``estimate_dense``, ``activation_bytes``, ``lora_params`` …). Raise
    :class:`ftx.errors.BadInput` for an option value that makes no sense for this model.
    ``None``: the method has no estimate and ``ftx plan`` shows it as unknown.
    """
