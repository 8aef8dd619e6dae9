"""What the four preference objectives share: rows, tokens, collators, the reference, the
trainer, the held-out metric. Each objective module (``dpo``, ``orpo``, ``simpo``, ``kto``) is a
:class:`Recipe` — which TRL classes, which fixed arguments, which defaults — handed to
:class:`PreferenceObjective`, whose methods are the objective hooks; the entry point is that
instance. Importing this module imports no torch: TRL is imported inside the hooks.

* **Rows**: pairs (``prompt``/``chosen``/``rejected``, implicit-prompt and ShareGPT pairs) from
  :func:`ftx.data.load_preference_pairs`; KTO also takes unpaired ``prompt``/``completion``/
  ``label`` rows (:func:`ftx.data.load_labelled_completions`) and unpairs pair files itself,
  keeping a held-out pair file as pairs for the pairwise metric.
* **Tokens** are ftx's (:func:`ftx.data.tokenize_pairs` / ``tokenize_labelled``: the chat
  template or a fallback template, ftx's truncation), in the columns each trainer consumes. TRL
  would tokenise again — ``DPOTrainer``/``KTOTrainer`` always run ``_prepare_dataset``,
  ``CPOTrainer``/``ORPOTrainer`` always map ``tokenize_row`` — so the trainers are subclassed
  with those two steps returning the data unchanged (:func:`trainer_class`).
* **Reference** (DPO, KTO): a PEFT model (qlora, ia3, any adapter method) is its own reference
  with the adapters disabled — TRL adds a ``ref`` copy of a PEFT model's adapter, which ftx
  deletes, so the reference costs no parameter at all; a model that trains its own weights
  (fft, sft) gets ``objective.reference``: a frozen copy, or log-probabilities precomputed once
  (TRL's ``precompute_ref_log_probs``), ``auto`` choosing by memory (:data:`COPY_SHARE`). The
  choice is recorded as ``reference`` in ``summary.json``. The starting model is the reference,
  so ``--model RUN_DIR`` makes the finished run's ``model/`` the reference.
* **Held-out metric**: ``pairwise`` (:func:`ftx.evaluate_pairwise.pairwise_scores`: share of
  held-out pairs whose chosen answer has the higher log-probability, and the mean margin) or
  ``exact`` (exact match of the generated answer against each pair's chosen answer, the task
  score). KTO's labelled held-out rows are paired by prompt (one desirable with one
  undesirable completion) for ``pairwise``.
* **Arguments**: ``train:`` is checked against the objective's TRL config class, with
  ``loss_type`` limited to the values the installed TRL's trainer implements and ``beta`` (and
  the KTO weights) kept positive (:func:`checked_config`).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ftx import checked_arguments, hookimpl
from ftx.checked_arguments import load
from ftx.context import ObjectiveTraits
from ftx.errors import BadInput
from ftx.options import AUTO, Option

METRICS = ("pairwise", "exact")
COPY_SHARE = 0.25
"""``objective.reference: auto`` keeps a frozen copy when its weights take at most this share of
the memory available when the trainer is built (free GPU memory, or ``MemAvailable`` on the
CPU), and precomputes the reference log-probabilities otherwise."""

REFERENCE_OPTION = Option(
    "reference",
    "str",
    AUTO,
    "the reference policy when the method trains the model's own weights (fft, sft): copy = a "
    "frozen copy of the starting model; precompute = its log-probabilities computed once "
    "before training, no copy kept; auto = copy if its weights take at most a quarter of the "
    "memory free when training starts, else precompute. Adapter methods (qlora, ia3) always use "
    "the model with its adapters disabled: no copy",
    choices=(AUTO, "copy", "precompute"),
)

COLLATORS = {
    "dpo": "trl.trainer.dpo_trainer:DataCollatorForPreference",
    "kto": "trl.trainer.kto_trainer:DataCollatorForUnpairedPreference",
    "cpo": "trl.experimental.utils:DPODataCollatorWithPadding",
}
"""The collator TRL's trainer of each column layout builds for itself (ftx passes it in)."""

LEARNING_RATE = 5e-5
"""The objectives' own learning rate, for a method that gives none for them (ftx's methods do):
full fine-tuning's, measured with DPO on the demo (``ftx_fft.LEARNING_RATES``)."""

COMMON_FIXED = {"remove_unused_columns": False}
"""Arguments every preference objective fixes: ftx's columns reach the collator as they are."""


@dataclass(frozen=True, eq=False)
class Recipe:
    """One preference objective: its TRL classes (``"module:Name"``), column ``layout``
    (``"dpo"``, ``"cpo"`` for CPO/ORPO, ``"kto"``), whether it has a reference model, the
    arguments it fixes, the lower bounds its arguments keep (``{key: (bound, exclusive)}``;
    ``beta > 0`` unless said otherwise), its ``train_defaults`` and its smallest batch."""

    name: str
    config: str
    trainer: str
    layout: str
    reference: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, tuple[float, bool]] = field(default_factory=lambda: {"beta": (0.0, True)})
    defaults: dict[str, Any] = field(default_factory=lambda: {"learning_rate": LEARNING_RATE})
    min_batch_size: int = 1

    @property
    def data(self) -> str:
        """Its rows, as ``ObjectiveTraits.data`` names them (KTO takes pairs too)."""
        return "labelled completions" if self.layout == "kto" else "preference pairs"


class PreferenceObjective:
    """The objective hooks of one :class:`Recipe` (the entry point is an instance)."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def __repr__(self) -> str:
        return f"<ftx-preference objective {self.recipe.name}>"

    @hookimpl
    def objective_options(self) -> list[Option] | None:
        return [REFERENCE_OPTION] if self.recipe.reference else None

    @hookimpl
    def objective_traits(self) -> ObjectiveTraits:
        return ObjectiveTraits(
            metrics=METRICS,
            sequences_per_row=2,  # chosen + rejected; KTO: the completion + its KL completion
            reference="policy" if self.recipe.reference else "none",
            min_batch_size=self.recipe.min_batch_size,
            data=self.recipe.data,
        )

    @hookimpl
    def arguments_class(self) -> tuple[type, dict[str, Any]]:
        return checked_config(self.recipe), {**COMMON_FIXED, **self.recipe.fixed}

    @hookimpl
    def train_defaults(self, device: Any, objective: str) -> dict[str, Any]:
        return dict(self.recipe.defaults)

    @hookimpl
    def load_rows(self, path: str, fmt: str) -> list[Any]:
        from ftx.data import data_kind, load_labelled_completions, load_preference_pairs

        if self.recipe.layout == "kto" and data_kind(path, fmt) != "pairs":
            return load_labelled_completions(path, fmt)
        return load_preference_pairs(path, fmt)

    @hookimpl
    def tokenize_rows(self, rows: list[Any], tokenizer: Any, data: dict[str, Any]) -> Any:
        from ftx.data import tokenize_labelled, tokenize_pairs
        from ftx.data.preference_tokens import TokenizedPairs

        common = {"max_length": data["max_length"], "template": data["template"]}
        if self.recipe.layout == "kto":
            tokenized = tokenize_labelled(unpaired(rows), tokenizer, **common)
        else:
            tokenized = tokenize_pairs(rows, tokenizer, columns=self.recipe.layout, **common)
        # Per-row length lists are for `ftx data check`; the summary keeps the counts.
        stats = {k: v for k, v in tokenized.stats.items() if not k.endswith("_lengths")}
        return TokenizedPairs(tokenized.examples, stats)

    @hookimpl
    def data_collator(self, run: Any, tokenizer: Any) -> Any:
        from ftx.evaluate_pairwise import pad_id

        collator = load(COLLATORS[self.recipe.layout])
        run.report(packing="padded")
        return collator(pad_token_id=pad_id(tokenizer))

    @hookimpl
    def build_trainer(
        self,
        run: Any,
        model: Any,
        tokenizer: Any,
        train_dataset: Any,
        eval_dataset: Any,
        data_collator: Any,
        callbacks: list[Any],
    ) -> Any:
        from ftx.config import training_arguments_kwargs

        recipe = self.recipe
        # ftx truncated every sequence to data.max_length already: the collators' cut is a no-op.
        overrides: dict[str, Any] = {"max_length": run.config["data"]["max_length"]}
        reference, ref_model = choose_reference(recipe, run, model)
        if recipe.reference:
            overrides["precompute_ref_log_probs"] = reference == "precomputed"
        config = load(recipe.config)  # the plain TRL class: checked_config's checks ran already
        args = config(
            **training_arguments_kwargs(
                run.train_args,
                use_cpu=run.device.kind == "cpu",
                output_dir=run.output_dir / "checkpoints",
                fixed={**COMMON_FIXED, **recipe.fixed, **overrides},
            )
        )
        if recipe.layout == "kto":
            train_dataset = with_kl_completions(train_dataset, args, "train")
            eval_dataset = with_kl_completions(eval_dataset, args, "eval")
        kwargs = {"ref_model": ref_model} if recipe.reference else {}
        run.log(f"reference: {reference}")
        with quiet_progress():
            trainer = trainer_class(recipe.trainer)(
                model=model,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=tokenizer,
                data_collator=data_collator,
                callbacks=callbacks,
                **kwargs,
            )
        if reference == "adapters disabled":
            drop_reference_adapter(model)
        run.report(reference=reference)
        return trainer

    @hookimpl
    def score_heldout(self, run: Any, model: Any, tokenizer: Any, rows: list[Any]) -> dict:
        from ftx.data import LabelledCompletion
        from ftx.evaluate import score_for_run
        from ftx.evaluate_pairwise import pairwise_scores

        data = run.config["data"]
        labelled = bool(rows) and isinstance(rows[0], LabelledCompletion)
        if data["eval_metric"] == "exact":
            convs = (
                [r.conversation() for r in rows if r.label]
                if labelled
                else [pair.conversation("chosen") for pair in rows]
            )
            return score_for_run(run, model, tokenizer, convs, metric="exact")
        pairs = pairs_by_prompt(rows, data.get("eval")) if labelled else rows
        return pairwise_scores(
            model,
            tokenizer,
            pairs,
            max_length=data["max_length"],
            template=data["template"],
            batch_size=int(run.train_args.get("per_device_eval_batch_size", 8)),
        )


# --- helpers (torch and TRL only inside) ----------------------------------------------------------


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """No progress bars from TRL (its reference precompute) or datasets (its ``map``) while
    the trainer is built: ftx prints its own lines."""
    import os

    from datasets.utils import logging as datasets_logging

    enabled = datasets_logging.is_progress_bar_enabled()
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous
        if enabled:
            datasets_logging.enable_progress_bar()


def checked_config(recipe: Recipe) -> type:
    """The recipe's TRL config class checked as :func:`ftx.checked_arguments.checked_config`
    checks it: ``loss_type`` among the installed trainer's, arguments within the recipe's
    bounds."""
    bounds = tuple((key, bound, exclusive) for key, (bound, exclusive) in recipe.bounds.items())
    return checked_arguments.checked_config(recipe.config, recipe.trainer, bounds)


PAIR_MASKS = ("chosen_attention_mask", "rejected_attention_mask")
"""The CPO/ORPO batch columns whose sum is the tokens a step runs (prompt + answer, twice)."""


@functools.cache
def trainer_class(path: str) -> type:
    """TRL's trainer at ``path``, taking ftx's tokenised columns as they are: its dataset
    preparation (``_prepare_dataset``: DPO, KTO) and row tokenisation (``tokenize_row``: CPO,
    ORPO) return their input unchanged. CPO and ORPO, which count no tokens, log this process's
    running ``num_tokens`` as DPO and KTO do (the summary's tokens/s comes from it)."""
    base = load(path)

    def _prepare_dataset(self: Any, dataset: Any, *args: Any, **kwargs: Any) -> Any:
        return dataset

    def tokenize_row(self: Any, feature: Any, model: Any = None) -> dict:
        return {}  # `Dataset.map` keeps the columns it has

    def training_step(self: Any, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        masks = [inputs[k] for k in PAIR_MASKS if k in inputs]
        if masks:
            self.ftx_tokens = getattr(self, "ftx_tokens", 0) + int(sum(m.sum() for m in masks))
        return base.training_step(self, model, inputs, *args, **kwargs)

    def log(self: Any, logs: dict, *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and hasattr(self, "ftx_tokens"):
            logs = {**logs, "num_tokens": float(self.ftx_tokens)}
        return base.log(self, logs, *args, **kwargs)

    methods = {"_prepare_dataset": _prepare_dataset, "tokenize_row": tokenize_row}
    methods.update(training_step=training_step, log=log)
    return type(f"Ftx{base.__name__}", (base,), methods)


def choose_reference(recipe: Recipe, run: Any, model: Any) -> tuple[str, Any]:
    """``(how, ref_model)``: ``"none"`` (reference-free), ``"adapters disabled"`` (a PEFT model),
    ``"precomputed"`` or ``"copy"`` (with the frozen copy, loaded as the run loads its model)."""
    if not recipe.reference:
        return "none", None
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return "adapters disabled", None
    choice = run.objective_options.get("reference", AUTO)
    if choice == AUTO:
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        free = free_memory(run.device)
        choice = "copy" if free is None or weights <= COPY_SHARE * free else "precompute"
    if choice == "precompute":
        return "precomputed", None
    from transformers import AutoModelForCausalLM

    from ftx.loading import from_pretrained_kwargs

    ref = AutoModelForCausalLM.from_pretrained(str(run.model_path), **from_pretrained_kwargs(run))
    ref.requires_grad_(False)
    return "copy", ref.eval()


def free_memory(device: Any) -> int | None:
    """Bytes free now on the training device (None if unknown)."""
    if device.kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    from ftx.planner.budget import memory_budget

    return memory_budget(device, None)[0]


def drop_reference_adapter(model: Any) -> None:
    """Delete the ``ref`` adapter TRL copies from a PEFT model's adapter: the reference is then
    the model with its adapters disabled (TRL's fallback), which is the starting model as long
    as the adapter starts as the identity (LoRA's zero B, IA3's ones), as ftx's methods do."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")


def with_kl_completions(dataset: Any, args: Any, split: str) -> Any:
    """KTO rows in a fixed shuffled order (seeded by ``train.seed``; the KL pairing needs
    TRL's sequential sampler) with their ``KL_completion_ids`` (the completions rotated by one
    within each batch of the ``split``'s size), for the loss types that estimate the KL term."""
    if dataset is None or args.loss_type != "kto":
        return dataset
    import random

    from datasets import Dataset

    from ftx.data import add_kl_completions

    rows = dataset.to_list()
    random.Random(args.seed).shuffle(rows)
    batch_size = getattr(args, f"per_device_{split}_batch_size")
    return Dataset.from_list(add_kl_completions(rows, batch_size))


def unpaired(rows: list[Any]) -> list[Any]:
    """KTO rows: labelled completions as they are, each pair as a desirable (chosen) and an
    undesirable (rejected) completion, as TRL's KTOTrainer unpairs them."""
    from ftx.data import LabelledCompletion, PreferencePair

    out = []
    for row in rows:
        if isinstance(row, PreferencePair):
            for answer, label in ((row.chosen, True), (row.rejected, False)):
                out.append(LabelledCompletion(row.id, row.prompt, answer, label, row.source))
        else:
            out.append(row)
    return out


def pairs_by_prompt(rows: list[Any], where: str | None) -> list[Any]:
    """Pairs from labelled completions: per prompt, its desirable and undesirable completions
    matched in order. BadInput if no prompt has both."""
    from ftx.data import PreferencePair

    groups: dict[str, tuple[list[Any], list[Any]]] = {}
    for row in rows:
        good, bad = groups.setdefault(json.dumps(row.prompt, sort_keys=True), ([], []))
        (good if row.label else bad).append(row)
    pairs = [
        PreferencePair(g.id, g.prompt, g.completion, b.completion, g.source)
        for good, bad in groups.values()
        for g, b in zip(good, bad, strict=False)
    ]
    if not pairs:
        raise BadInput(
            f"{where or 'the held-out data'}: no prompt has both a desirable and an undesirable "
            "completion, so pairwise accuracy has nothing to compare",
            hint="hold out preference pairs (prompt/chosen/rejected) instead, or "
            "--set data.eval_metric=exact",
        )
    return pairs
