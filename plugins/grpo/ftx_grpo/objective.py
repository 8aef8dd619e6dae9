"""The ``grpo`` objective: Group Relative Policy Optimization (Shao et al., 2024) with TRL's
``GRPOTrainer``/``GRPOConfig``, rewards from plugins.

* **Rows**: prompts only (:mod:`ftx.data.prompts`: text or messages ending with the user's
  turn); every other column (``reference`` …) reaches the rewards as a keyword argument.
* **Rewards**: ``objective.rewards`` names them (installed ``ftx.rewards`` entry points,
  ``module:function`` or ``file.py[:function]``: :mod:`ftx.rewards`), weighted by
  ``objective.reward_weights``. Before any model loads, each is called once on the first two
  rows with an empty completion (exit 2 naming the reward and rows when it cannot be used);
  during training a failing reward stops the run (exit 1, naming reward and row; the last
  checkpoint stays, ``--resume`` continues).
* **Arguments**: ``train:`` is checked against ``GRPOConfig``: ``num_generations`` (completions
  per prompt, ≥ 2, dividing the generation batch), ``max_completion_length``, ``temperature``,
  ``beta`` (the KL weight, default 0: no reference model), ``loss_type`` (the losses the
  installed TRL implements), ``num_iterations`` (updates per generation batch), ``use_vllm``
  (generation through vLLM on GPUs when it is installed) …
* **Generation**: the prompts are ftx's (its chat template or fallback template, as held-out
  scoring renders them); the KV cache is on for generation (ftx loads models with it off for
  training); prompts are padded, never packed.
* **Reference** (``beta > 0``): adapter methods use the model with adapters disabled (no
  copy); fft/sft get TRL's frozen copy of the starting model. Recorded in ``summary.json``.
* **Held-out metric**: ``exact``, greedy completion against the ``reference`` column
  (``objective.reference_column``), before and after, as for every run.

Importing this module imports no torch: TRL is imported inside the hooks.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.context import ObjectiveTraits
from ftx.errors import BadInput
from ftx.options import Option

CONFIG = "trl:GRPOConfig"
TRAINER = "trl:GRPOTrainer"
BOUNDS = (
    ("beta", 0.0, False),
    ("temperature", 0.0, True),
    ("num_iterations", 1.0, False),
    ("num_generations", 2.0, False),
    ("max_completion_length", 1.0, False),
)
"""``(argument, bound, exclusive)``: beta ≥ 0, temperature > 0, num_iterations ≥ 1, at least
two completions per prompt (the advantage compares them), at least one token each."""
FIXED = {"remove_unused_columns": False, "log_completions": False}
"""Arguments the objective fixes: every column reaches the rewards; ftx logs, not TRL's table."""
PLAN_KEYS = ("beta", "steps_per_generation", "gradient_accumulation_steps")
"""The ``train`` keys the traits read: the KL weight (a reference model when > 0) and how many
steps' rows one generation batch holds."""
LEARNING_RATE = 1e-5
"""The objective's learning rate for a method that gives none for grpo (TRL's GRPO default)."""

OPTIONS = [
    Option(
        "rewards",
        "list",
        [],
        "the reward functions, at least one: installed rewards (`ftx plugins`: exact, format, "
        "json_valid, json_field, length …), module:function, or path/to/file.py[:function] "
        "(runs your code)",
    ),
    Option(
        "reward_weights",
        "list",
        None,
        "one weight per reward (the reward is their weighted sum); null: all 1",
        nullable=True,
    ),
    Option(
        "reference_column",
        "str",
        "reference",
        "the data column holding each prompt's answer: the exact and json_field rewards "
        "compare against it, and the held-out exact match scores against it",
    ),
    Option(
        "format_pattern",
        "str",
        None,
        "the regular expression the format reward fully matches completions against (a "
        "format_pattern column overrides it per row)",
        nullable=True,
    ),
    Option(
        "json_field",
        "str",
        None,
        "the key of a JSON completion that the json_field reward compares with the reference "
        "(null: the whole value)",
        nullable=True,
    ),
    Option(
        "length_limit",
        "int",
        32,
        "the length reward's limit in tokens: 0 up to it, down to -1 at twice it",
        min=1,
    ),
]


@hookimpl
def objective_options() -> list[Option]:
    return OPTIONS


@hookimpl
def objective_traits(train: dict[str, Any] | None = None) -> ObjectiveTraits:
    train = train or {}
    beta = _number(train.get("beta"), 0.0)
    steps = train.get("steps_per_generation") or train.get("gradient_accumulation_steps") or 1
    return ObjectiveTraits(
        metrics=("exact",),
        reference="policy" if beta > 0 else "none",
        data="prompts",
        generation_steps=max(1, int(_number(steps, 1))),
        plan_keys=PLAN_KEYS,
    )


def _number(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default  # the arguments class reports it, naming the key


def vllm_installed(arguments: Any) -> None:
    """``use_vllm=True`` needs the ``vllm`` package (and a GPU): say so before any model loads
    instead of failing when the trainer is built."""
    import importlib.util

    if getattr(arguments, "use_vllm", False) and importlib.util.find_spec("vllm") is None:
        raise ValueError("use_vllm=True needs the vllm package: pip install vllm (GPUs only)")


@hookimpl
def arguments_class() -> tuple[type, dict[str, Any]]:
    from ftx.checked_arguments import checked_config

    return checked_config(CONFIG, TRAINER, BOUNDS, vllm_installed), FIXED


@hookimpl
def train_defaults(device: Any, objective: str) -> dict[str, Any]:
    return {"learning_rate": LEARNING_RATE}


@hookimpl
def load_rows(path: str, fmt: str, options: dict[str, Any] | None = None) -> list[Any]:
    from ftx.data.prompts import check_no_reserved_columns, load_prompt_rows, prompt_example
    from ftx.rewards import HIDDEN_COLUMNS, TRAINER_ARGUMENTS, check_rewards, load_rewards

    rows = load_prompt_rows(path)
    check_no_reserved_columns(rows, (*TRAINER_ARGUMENTS, *HIDDEN_COLUMNS))
    if options is None:  # outside a run (`ftx data check`): the rows alone
        return rows
    specs = options.get("rewards") or []
    if not specs:
        raise BadInput(
            "--objective grpo needs at least one reward: objective.rewards is empty",
            hint="e.g. --set 'objective.rewards=[exact, format]' (`ftx plugins` lists the "
            "installed rewards; module:function and path/to/file.py work too)",
        )
    weights = options.get("reward_weights")
    if weights is not None:
        if len(weights) != len(specs):
            raise BadInput(
                f"objective.reward_weights has {len(weights)} weights for {len(specs)} rewards",
                hint="give one weight per reward, in the same order (or null: all 1)",
            )
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise BadInput(f"objective.reward_weights must be numbers, got {weights!r}")
    check_rewards(load_rewards(specs), [prompt_example(r) for r in rows], options)
    return rows


@hookimpl
def tokenize_rows(rows: list[Any], tokenizer: Any, data: dict[str, Any]) -> Any:
    from ftx.data.prompts import tokenize_prompts

    return tokenize_prompts(
        rows, tokenizer, max_length=data["max_length"], template=data["template"]
    )


def rows_as_they_are(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GRPO's batches are lists of rows: the trainer generates, then pads (prompts left,
    completions right) itself. This is TRL's own ``identity`` collator, which GRPOTrainer
    always uses."""
    return features


@hookimpl
def data_collator(run: Any) -> Any:
    run.report(packing="padded")
    return rows_as_they_are


@hookimpl
def build_trainer(
    run: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    callbacks: list[Any],
) -> Any:
    from ftx_grpo.trainer import build

    return build(run, model, tokenizer, train_dataset, eval_dataset, callbacks)


@hookimpl
def score_heldout(run: Any, model: Any, tokenizer: Any, rows: list[Any]) -> dict[str, Any]:
    from ftx.evaluate import score_for_run

    column = run.objective_options.get("reference_column") or "reference"
    convs = [c for c in (row.conversation(column) for row in rows) if c is not None]
    if not convs:
        raise BadInput(
            f"the held-out prompts have no {column!r} column to score exact match against",
            hint="add the answers in that column, or set objective.reference_column",
        )
    return score_for_run(run, model, tokenizer, convs, metric="exact")
