"""The contract between the ftx host and its plugins: sixteen hooks, one spec each.

A run is one **method** (what trains, how the model loads and exports: fft, sft, qlora …; entry
points ``ftx.plugins``) under one **objective** (what it learns from: which rows, how they
become tensors, which trainer and arguments class, the held-out metric: supervised, dpo …;
entry points ``ftx.objectives``). Methods implement the method hooks, objectives the objective
hooks; ``train_defaults`` and ``build_trainer`` are for both (a method's answer wins).

Per-run hooks, called in this order (``run`` is the run's :class:`ftx.context.RunContext`)::

    score_heldout -> load_model -> select_trainable -> training_arguments -> data_collator
    -> build_trainer -> trainer_ready -> (trainer.train()) -> export -> score_heldout

Data hooks of the objective, called before the run directory is claimed: ``load_rows`` (when
the run is prepared, for training and held-out files) and ``tokenize_rows`` (once the tokenizer
is loaded).

Declarative hooks, cheap (no torch, no weights), called outside a run or before it starts:

* ``method_options``: the method's options schema (``ftx plugins show``, config validation);
* ``objective_options``: the objective's options schema (the ``objective:`` section);
* ``objective_traits``: the objective's metrics, sequences per row, reference policy …;
* ``arguments_class``: the objective's arguments class, against which ``train:`` is checked;
* ``train_defaults``: preferred training arguments, before the config is resolved;
* ``estimate_memory``: the method's peak training memory for ``ftx plan``, from the config.

Rules that hold for every hook:

* Calls are keyword-only. An implementation may accept any *subset* of the arguments named in
  the spec, in any order; accepting a name that is not in the spec is an error reported by
  ``ftx plugins`` against the plugin and hook.
* ``train_defaults``, ``training_arguments`` and ``trainer_ready`` call every implementation (the
  core's first, the objective's, the method's last: :func:`ftx.plugins.call_all`). The other
  thirteen are ``firstresult``: the host stops at the first implementation that returns
  something other than ``None`` (:func:`ftx.plugins.call_first`). Returning ``None`` means
  "not mine, ask the next one".
* For a run the host registers only the core defaults (``ftx.defaults``, all ``trylast``), the
  *selected* objective and the *selected* method, in that order, so the method overrides what
  it must (even ``build_trainer``), the objective answers its hooks, and the defaults the
  rest. Which implementation answered each per-run hook is recorded in ``summary.json`` under
  ``hooks`` (a name, or a list for the hooks that call every one).
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
This module is longer than the 400 lines a core module gets because it is the whole contract,
one spec per hook with its rules and an example, kept in one file so that it reads in one
place.
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
        TrainingArguments,
    )

    from ftx.context import DeviceInfo, ObjectiveTraits, RunContext
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


@hookspec
def train_defaults(device: DeviceInfo, objective: str) -> dict[str, Any] | None:
    """Return preferred training-argument defaults, e.g. ``{"learning_rate": 2e-4}``.

    Implemented by methods and by objectives; every implementation is called and the dicts are
    merged in this order, later winning: core < objective < method. ``objective`` is the run's
    objective name (``"supervised"``, ``"dpo"`` …): a method's learning rate measured for one
    objective need not suit another, so a method answers for the objectives it knows and
    returns ``None`` for the rest. ``device`` is the :class:`ftx.context.DeviceInfo` of the run
    (``kind``, ``bf16``, ``count``). Called once per run, before the config is resolved: the
    user's ``train:`` values and ``--set train.*`` always win over these. Keys are fields of
    the objective's arguments class. Must be cheap. ``None``: nothing to add.

    Example::

        @hookimpl
        def train_defaults(device, objective):
            return {"learning_rate": 3e-4} if objective == "supervised" else None
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
    ``data.eval_ratio``; its first ``train.eval_loss_rows``), tokenised the same way, or is
    ``None`` when the run has no held-out split: pass it on, the run evaluates on it during
    training (``train.eval_steps``; ``run.train_args`` carries the evaluation, best-checkpoint
    and early-stopping arguments; the host's callbacks score the task metric). The host's
    before/after scoring with ``data.eval_metric`` runs on its own.
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
    objective: ObjectiveTraits,
    optim: str | None,
) -> MemoryEstimate | None:
    """Estimate this method's peak training memory without loading weights (``ftx plan``).

    ``model_config`` is the model's ``transformers`` config (read from ``config.json`` or GGUF
    metadata; any object with the usual attribute names); ``seq_len``/``batch_size`` the padded
    tokens per row and rows per step; ``options`` the plugin's resolved options (defaults plus
    the user's ``--set [PLUGIN:]method.KEY=VALUE``); ``device`` the :class:`ftx.context.DeviceInfo`
    planned for (``kind``, ``bf16``); ``dtype`` the weights dtype a run would load
    (``"float32"``, ``"bfloat16"`` …, i.e. ``run.dtype``; bf16 autocast is on when
    ``device.bf16`` and the weights are fp32); ``objective`` the
    :class:`ftx.context.ObjectiveTraits` of the objective planned for
    (``ftx plan --objective``, supervised's by default): ``sequences_per_row`` sequences per
    row go through the model each step (2 for a chosen/rejected pair) and
    ``reference == "policy"`` needs a reference model. Hand it on to
    :class:`ftx.estimates.EstimateRequest` (``@estimator`` does), whose ``dense`` and
    ``activations`` account for both once: activations for every sequence, and a frozen copy
    of the weights for a method that trains the model's own weights (``dense``); an adapter
    method's reference is the model with its adapters disabled, no copy. An implementation
    that does not take ``objective`` is planned as if supervised. ``optim`` is the
    ``train.optim`` the run sets (``ftx plan --optim``), ``None`` when it keeps the method's own
    default for ``device``: an 8-bit optimizer keeps a quarter of AdamW's fp32 state
    (:func:`ftx.estimates.optimizer_state_bytes`, which ``EstimateRequest.dense`` applies). An
    implementation that does not take ``optim`` is planned with its own default, and its row
    says so.

    Must be cheap (no torch, no weights). Return an :class:`ftx.estimates.MemoryEstimate` built
    with the shared helpers in :mod:`ftx.estimates` (``model_shape``, ``precision_for``,
    ``estimate_dense``, ``activation_bytes``, ``lora_params`` …). Raise
    :class:`ftx.errors.BadInput` for an option value that makes no sense for this model.
    ``None``: the method has no estimate and ``ftx plan`` shows it as unknown.
    """


# --- objective hooks: what a run learns from ----------------------------------------------------


@hookspec(firstresult=True)
def objective_options() -> list[Option] | None:
    """Declare the objective's own options (the ``objective:`` section of a run config).

    The objective's counterpart of ``method_options``, with the same rules: cheap, a list of
    :class:`ftx.options.Option`; ``None`` means it takes none and any ``objective.*`` key is an
    error.

    Example::

        @hookimpl
        def objective_options():
            return [Option("beta", "float", 0.1, "strength of the KL penalty", min=0)]
    """


@hookspec(firstresult=True)
def objective_traits(train: dict[str, Any]) -> ObjectiveTraits | None:
    """Describe the objective for the host, ``ftx plan`` and ``ftx compare``: its held-out
    metrics, sequences per row, reference policy, smallest batch, kind of data and whether it
    generates while training (:class:`ftx.context.ObjectiveTraits`). Cheap: no torch. Every
    objective answers.

    ``train`` holds the ``train:`` settings as the user gave them (config file and ``--set``,
    not yet validated; ``{}`` when none), for traits that depend on them: GRPO needs a reference
    model only when ``train.beta > 0``.

    Example::

        @hookimpl
        def objective_traits():
            return ObjectiveTraits(metrics=("pairwise",), sequences_per_row=2, reference="policy")
    """


@hookspec(firstresult=True)
def arguments_class() -> tuple[type[TrainingArguments], dict[str, Any]] | None:
    """Return ``(arguments class, fixed keyword arguments)`` for this objective's trainer:
    e.g. ``(trl.SFTConfig, {"remove_unused_columns": False, …})``.

    ``train:`` keys are validated against the class's fields (a ``train.beta`` under an
    objective whose class has no ``beta`` is an unknown key with a did-you-mean), and the real
    object is built once during validation, as the trainer will build it: the run's
    ``train_args``, then the fixed arguments, which the user cannot set. Imports the trainer
    library (TRL); called once per run, before any model is loaded.

    Example::

        @hookimpl
        def arguments_class():
            from trl import DPOConfig

            return DPOConfig, {"remove_unused_columns": False}
    """


@hookspec(firstresult=True)
def load_rows(path: str, fmt: str, options: dict[str, Any] | None) -> list[Any] | None:
    """Read and validate the data rows at ``path`` (a file or directory of JSON, JSONL, CSV or
    Parquet) in format ``fmt`` (``data.format``; ``"auto"`` = detect) and return them
    normalised (:class:`ftx.data.Conversation` for supervised, a preference pair …).

    ``options`` are the objective's validated options (the ``objective:`` section) when the
    rows are read for a run, ``None`` outside one (``ftx data check``): an objective whose
    options name code to run on the rows (GRPO's rewards) checks it here, before any model
    loads.

    Called for the training data and for the held-out data, before any model is loaded. Raise
    :class:`ftx.errors.BadInput` naming the file, the row and the fix for anything wrong,
    including data of another objective's shape ("this looks like preference data: use
    --objective dpo"). Must not import torch.

    Example::

        @hookimpl
        def load_rows(path, fmt):
            from ftx.data import load_conversations

            return load_conversations(path, fmt)
    """


@hookspec(firstresult=True)
def tokenize_rows(
    rows: list[Any], tokenizer: PreTrainedTokenizerBase, data: dict[str, Any]
) -> Any | None:
    """Turn rows from ``load_rows`` into token ids: return an object with ``examples`` (a list
    of dicts, the columns the objective's trainer consumes, e.g. ``input_ids``/``labels`` or
    ``prompt_ids``/``chosen_ids``/``rejected_ids`` for TRL's DPO trainer) and ``stats`` (a
    dict of counts for the summary: ``kept``, ``tokens``, ``truncated``, ``dropped`` …). It may
    also have ``table``, the same examples as a ``pyarrow.Table``, which the run's dataset is
    then built from without reading ``examples`` (``ftx.data.tokenize_dataset`` returns one,
    and writes it straight into the token cache: :mod:`ftx.data.token_cache`).

    ``data`` is the run's resolved ``data`` section (``max_length``, ``template``,
    ``train_on`` …). Tokenisation is ftx's (chat template or fallback template, ftx's
    masking), never the trainer's own. Called for training and held-out rows after the
    tokenizer is loaded, before the run directory is claimed: a training set with no usable
    row is a :class:`ftx.errors.BadInput`.

    Example::

        @hookimpl
        def tokenize_rows(rows, tokenizer, data):
            from ftx.data import tokenize_dataset

            return tokenize_dataset(
                rows, tokenizer, max_length=data["max_length"], template=data["template"]
            )
    """


@hookspec(firstresult=True)
def data_collator(run: RunContext, tokenizer: PreTrainedTokenizerBase) -> Callable | None:
    """Return the collator that batches this objective's examples (``None``: the trainer's own
    default). Called once per run, before ``build_trainer``, which receives it."""


@hookspec(firstresult=True)
def score_heldout(
    run: RunContext, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: list[Any]
) -> dict[str, Any] | None:
    """Score ``model`` on the held-out ``rows`` (from ``load_rows``) with ``data.eval_metric``;
    return ``{"metric": name, "score": float, "n": rows scored, …}``.

    Called on the main process for the base model before training and for ``model/`` after
    export, each loaded for inference (no adapters, plain weights); the two results become
    ``eval_before``/``eval_after`` in ``summary.json``.

    Example::

        @hookimpl
        def data_collator(tokenizer):
            from transformers import DataCollatorWithPadding

            return DataCollatorWithPadding(tokenizer)

    Example::

        @hookimpl
        def score_heldout(run, model, tokenizer, rows):
            from ftx.evaluate import score

            return score(model, tokenizer, rows, metric=run.config["data"]["eval_metric"])
    """
