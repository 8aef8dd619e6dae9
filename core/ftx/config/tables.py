"""What a run config may contain: sections, keys with types and defaults, choices, valid ranges,
trackers, old names, keys ftx owns and the core's training defaults. Data only."""

from __future__ import annotations

from typing import Any

from ftx.data.collate import PACKING_SETTINGS
from ftx.forgetting import FORGETTING_SETTINGS
from ftx.gguf_export import QUANTS
from ftx.options import AUTO, Range

SECTIONS = ("model", "data", "train", "method", "objective", "export")

# name -> (type, default, help). Types as in ftx.options.coerce; "str?" = nullable string.
MODEL_FIELDS: dict[str, tuple[str, Any, str]] = {
    "name": ("str?", None, "model: a HF directory, a .gguf file, a cached hub id; null = demo"),
    "dtype": ("str", AUTO, "weights dtype: auto | float32 | bfloat16 | float16"),
    "attn_implementation": ("str", AUTO, "auto | sdpa | eager | flash_attention_2"),
    "trust_remote_code": ("bool", False, "run the model repository's own Python code (unsafe)"),
    "allow_pickle": ("bool", False, "allow pickle (.bin) weights; safetensors only otherwise"),
}
DATA_FIELDS: dict[str, tuple[str, Any, str]] = {
    "path": ("str?", None, "training data file or directory; null = the demo data"),
    "eval": ("str?", None, "held-out file: scored before and after training"),
    "eval_ratio": ("float", 0.0, "hold out this fraction of the training rows instead"),
    "format": ("str", AUTO, "auto | vicuna | openai | alpaca | prompt_completion | text"),
    "template": ("str", AUTO, "auto (the tokenizer's chat template) | vicuna_v1.1 | chatml"),
    "max_length": ("int", 512, "tokens per example; longer ones are truncated"),
    "packing": ("str", AUTO, "auto | true | false: padding-free batches"),
    "train_on": ("str", "assistant", "assistant (mask everything else) | all"),
    "token_cache": (
        "bool",
        True,
        "keep the tokenised rows in $FTX_CACHE/tokens (keyed by rows, tokenizer, template, "
        "max_length, masking and objective) so the next run on the same data skips "
        "tokenisation; false tokenises in memory every time",
    ),
    "num_proc": (
        "int",
        AUTO,
        "worker processes that render the rows through the chat template while tokenising: "
        "auto (none below 4 cores: on 2 cores they cost more than they save, measured; from 4 "
        "cores half the cores, given two chunks of 1,024 rows each) | N (1 = none); the "
        "tokens are the same either way",
    ),
    "eval_metric": (
        "str",
        AUTO,
        "held-out metric: auto (the objective's first) | exact | json | loss | pairwise",
    ),
    "eval_max_new_tokens": ("int", 64, "generation budget for exact/json scoring"),
    "eval_limit": ("int?", None, "score only the first N held-out rows"),
    "task_eval": (
        "str?",
        None,
        "held-out conversations also scored with the default objective's metric (exact "
        "match) before and after: the task score of a preference-tuned run",
    ),
    "eval_forgetting": (
        "str",
        AUTO,
        "after training also measure forgetting against the base model: retention on ftx's "
        "general questions and drift (KL) on general text, into summary.json's forgetting: "
        "true | false | auto (= false in ftx run: on the demo it costs more than 10% of the run; "
        "ftx compare sets true). Cost on SmolLM2, 2 CPU cores: ~18 s (35 CPU-s) per run once "
        "the base's answers are cached (0.63x the held-out scoring), ~55 s (108 CPU-s) the "
        "first time (bench/forgetting_cost.py)",
    ),
}
EXPORT_FIELDS: dict[str, tuple[str, Any, str]] = {
    "gguf": (
        "str?",
        None,
        "at the end of the run also write RUN/export-gguf-TYPE/ (a .gguf for llama.cpp and an "
        "Ollama Modelfile) in this type: f32 | f16 | bf16 | q8_0 | q5_1 | q5_0 | q4_1 | q4_0, "
        "as ftx export --format gguf --quant TYPE; null = none",
    ),
}
TRAIN_FIELDS: dict[str, tuple[str, Any, str]] = {
    "select_best": (
        "str",
        AUTO,
        "which evaluated checkpoint model/ (and adapter/) are exported from: metric (the best "
        "held-out task metric, data.eval_metric on train.eval_metric_rows rows, then the "
        "lowest validation loss; a change of at most train.early_stopping_min_delta is none) | "
        "loss (the lowest validation loss, the same way) | last (the end of training) | auto "
        "(= metric with held-out data, else last). Measured on the demo (SmolLM2 QLoRA, "
        "default budget, BENCHMARKS.md §10): checkpoints at steps 23/46/69/92/115 scored "
        "0.738/0.975/1.000/0.913/0.988 on all 80 held-out rows (32-row sample: "
        "0.844/1.000/1.000/0.938/1.000); metric and loss keep step 69 (one epoch: 1.000); the "
        "sample costs about as much per evaluation as the validation loss",
    ),
    "early_stopping_patience": (
        "int?",
        AUTO,
        "stop after this many evaluations in a row in which neither the validation loss nor "
        "(select_best: metric) the task metric improved by more than "
        "train.early_stopping_min_delta; null = never; auto = 2 when ftx chooses "
        "the budget (neither train.max_steps nor train.num_train_epochs set), else null",
    ),
    "early_stopping_min_delta": (
        "float",
        0.001,
        "the smallest change of the criterion that counts as an improvement",
    ),
    "eval_metric_every": (
        "int?",
        AUTO,
        "score the task metric (data.eval_metric: exact/json by generation, pairwise for "
        "preference objectives) every N evaluations; auto = 1 when select_best is metric, "
        "else null (never during training)",
    ),
    "eval_metric_rows": (
        "int",
        32,
        "held-out rows the task metric scores during training (the first N)",
    ),
    "eval_loss_rows": (
        "int",
        256,
        "held-out rows the validation loss is computed on (the first N)",
    ),
}
"""ftx's own ``train`` keys (evaluation during training, the best checkpoint, early stopping;
resolved by :mod:`ftx.config.evaluation`): in ``config.yaml``, never passed to the arguments
class. ``train.eval_steps`` (a TrainingArguments field) also takes ``auto``: every eighth of the
run (0.125) when the run has held-out data, else no evaluation."""

CHOICES = {
    ("model", "dtype"): (AUTO, "float32", "bfloat16", "float16"),
    ("model", "attn_implementation"): (AUTO, "sdpa", "eager", "flash_attention_2"),
    ("data", "packing"): PACKING_SETTINGS,
    ("data", "train_on"): ("assistant", "all"),
    ("data", "eval_forgetting"): FORGETTING_SETTINGS,
    ("export", "gguf"): QUANTS,
    ("train", "select_best"): (AUTO, "metric", "loss", "last"),
}

# Valid ranges of numeric keys, checked in one loop by `check_ranges` (train keys the installed
# TRL lacks are skipped). ``fix`` is the hint the error prints.
_STEPS_FIX = "every N optimizer steps (N >= 1), or a fraction of the run below 1 (0.1 = 10%)"
RANGES: dict[tuple[str, str], Range] = {
    ("data", "max_length"): Range(
        min=8, fix="tokens per example (the chat template alone takes several): e.g. 512"
    ),
    ("data", "eval_ratio"): Range(
        min=0, max=1, max_exclusive=True, fix="the fraction of rows held out, e.g. 0.1; 0 = none"
    ),
    ("data", "eval_limit"): Range(min=1, fix="null scores every held-out row"),
    ("data", "num_proc"): Range(min=1, fix="N >= 1 worker processes (1 = none), or auto"),
    ("data", "eval_max_new_tokens"): Range(min=1, fix="tokens generated per held-out row: e.g. 64"),
    ("train", "learning_rate"): Range(
        min=0,  # 0 is allowed: it measures the initialisation (e.g. of LoRA adapters)
        fix="a step size >= 0: about 1e-5 to 1e-4 for full fine-tuning, 1e-4 to 1e-3 for LoRA",
    ),
    ("train", "num_train_epochs"): Range(
        min=0,
        min_exclusive=True,
        fix="passes over the data, e.g. 1 or 3 (a fraction trains part of one); for a fixed "
        "number of steps set train.max_steps",
    ),
    ("train", "max_steps"): Range(
        min=1,
        also=(-1,),
        fix="-1 (the default) trains for train.num_train_epochs; N >= 1 stops after N steps",
    ),
    ("train", "per_device_train_batch_size"): Range(
        min=1,
        fix="rows per step on each device; to save memory lower it and raise "
        "train.gradient_accumulation_steps",
    ),
    ("train", "per_device_eval_batch_size"): Range(min=1, fix="rows per evaluation step: e.g. 8"),
    ("train", "gradient_accumulation_steps"): Range(
        min=1, fix="1 = no accumulation; the effective batch is the batch size times this"
    ),
    ("train", "eval_accumulation_steps"): Range(min=1, fix="null keeps every prediction batch"),
    ("train", "warmup_steps"): Range(
        min=0, fix="a fraction of the run below 1 (0.05 = 5%), or a number of steps; 0 = none"
    ),
    ("train", "weight_decay"): Range(min=0, fix="0 turns it off; 0.01 to 0.1 is usual"),
    ("train", "max_grad_norm"): Range(min=0, fix="0 turns gradient clipping off; 1.0 is usual"),
    ("train", "adam_beta1"): Range(min=0, max=1, max_exclusive=True, fix="0.9 is usual"),
    ("train", "adam_beta2"): Range(min=0, max=1, max_exclusive=True, fix="0.999 is usual"),
    ("train", "adam_epsilon"): Range(min=0, min_exclusive=True, fix="1e-8 is usual"),
    ("train", "label_smoothing_factor"): Range(min=0, max=1, max_exclusive=True),
    ("train", "logging_steps"): Range(min=0, min_exclusive=True, fix=f"log {_STEPS_FIX}"),
    ("train", "save_steps"): Range(min=0, min_exclusive=True, fix=f"save {_STEPS_FIX}"),
    ("train", "eval_steps"): Range(min=0, min_exclusive=True, fix=f"evaluate {_STEPS_FIX}"),
    ("train", "early_stopping_patience"): Range(
        min=1, fix="evaluations without improvement before stopping (>= 1); null never stops"
    ),
    ("train", "early_stopping_min_delta"): Range(min=0, fix="0.001 is usual; 0 = any improvement"),
    ("train", "eval_metric_every"): Range(min=1, fix="every N evaluations (N >= 1); null = never"),
    ("train", "eval_metric_rows"): Range(min=1, fix="held-out rows scored, e.g. 32"),
    ("train", "eval_loss_rows"): Range(min=1, fix="held-out rows for the validation loss: 256"),
    ("train", "save_total_limit"): Range(
        min=1, fix="keep the N newest checkpoints (N >= 1); null keeps them all"
    ),
    ("train", "seed"): Range(min=0, max=2**32 - 1, fix="any integer in [0, 2^32 - 1]: e.g. 42"),
    ("train", "dataloader_num_workers"): Range(min=0, fix="0 loads batches in the main process"),
    ("train", "dataloader_prefetch_factor"): Range(min=1),
    ("train", "torch_empty_cache_steps"): Range(min=1, fix="null never empties the cache"),
    ("train", "neftune_noise_alpha"): Range(min=0, min_exclusive=True, fix="null turns it off"),
}

# train.report_to values -> (modules it needs: one of each group, the pip package to install).
# Mirrors transformers.integrations' is_*_available; checked with find_spec (imports nothing).
# The four trackers ftx also logs its own numbers to (ftx.trackers) are ftx-core extras.
TRACKERS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "tensorboard": ((("tensorboard", "tensorboardX"),), "'ftx-core[tensorboard]'"),
    "wandb": ((("wandb",),), "'ftx-core[wandb]'"),
    "mlflow": ((("mlflow",),), "'ftx-core[mlflow]'"),
    "comet_ml": ((("comet_ml",),), "comet-ml"),
    "neptune": ((("neptune", "neptune_client"),), "neptune"),
    "clearml": ((("clearml",),), "clearml"),
    "dagshub": ((("dagshub",), ("mlflow",)), "dagshub mlflow"),
    "dvclive": ((("dvclive",),), "dvclive"),
    "swanlab": ((("swanlab",),), "swanlab"),
    "trackio": ((("trackio",),), "'ftx-core[trackio]'"),
    "codecarbon": ((("codecarbon",),), "codecarbon"),
    "azure_ml": ((("azureml.core.run",),), "azureml-core"),
    "flyte": ((("flytekit",), ("flytekitplugins.deck",)), "flytekit flytekitplugins-deck-standard"),
    "kubeflow": ((), ""),
}

# Seed / older-version names -> (section, key) in this version.
TRAIN_ALIASES: dict[str, tuple[str, str]] = {
    "model_max_length": ("data", "max_length"),
    "max_seq_length": ("data", "max_length"),
    "max_length": ("data", "max_length"),
    "warmup_ratio": ("train", "warmup_steps"),
    "evaluation_strategy": ("train", "eval_strategy"),
    "packing": ("data", "packing"),
    "gradient_checkpointing": ("train", "activation_checkpointing"),
    "gradient_checkpointing_kwargs": ("train", "activation_checkpointing_kwargs"),
}
# Keys ftx sets itself; a user value would break the contract with the data layer / run dir.
TRAIN_OWNED = {
    "output_dir": "use --output",
    "dataset_kwargs": "ftx tokenises the data itself",
    "remove_unused_columns": "ftx passes only model inputs",
    "padding_free": "use data.packing",
    "completion_only_loss": "use data.train_on",
    "assistant_only_loss": "use data.train_on",
    "dataset_text_field": "use data.format",
    "load_best_model_at_end": "use train.select_best",
    "metric_for_best_model": "use train.select_best",
    "greater_is_better": "use train.select_best",
}

CORE_TRAIN_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": AUTO,  # ftx.config.evaluation: 3 with early stopping, else 1
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 2e-5,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "weight_decay": 0.0,
    "logging_steps": 5,
    "logging_first_step": True,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 2,
    "seed": 42,
    "report_to": "none",
    "bf16": AUTO,
    "fp16": AUTO,
    "activation_checkpointing": AUTO,
    "dataloader_num_workers": 0,
    "disable_tqdm": True,
    "logging_nan_inf_filter": False,
}

DATA_PATHS = {
    "path": "pass an existing file or directory with --data (data.path in a config file)",
    "eval": "point data.eval at an existing held-out file (--set data.eval=PATH), or drop it "
    "and hold out rows with --set data.eval_ratio=0.1",
    "task_eval": "point data.task_eval at an existing file of held-out conversations",
}
