"""Run configuration: YAML file + CLI flags + ``--set [PLUGIN:]section.key=value``, resolved.

A config has four sections:

* ``model``: where the weights come from and how to load them (``name``, ``dtype``, …);
* ``data``: the data files and how to turn them into tokens (``path``, ``eval``, ``max_length``, …);
* ``train``: any TrainingArguments/SFTConfig field of the installed TRL, plus the seed's names
  (``model_max_length``, ``max_seq_length``, ``warmup_ratio``, ``evaluation_strategy``, …) mapped
  onto what the installed version expects, plus ftx's own evaluation keys (:data:`TRAIN_FIELDS`:
  ``select_best``, ``early_stopping_patience`` …, resolved by :mod:`ftx.config.evaluation`);
* ``method``: the selected plugin's own options, validated against what it declares.

Precedence, lowest first: core defaults < plugin ``train_defaults`` < config file < CLI flags
(``--model``, ``--data``) < ``--set``. Unknown keys are errors with a did-you-mean; values are
coerced to the field's type (``--set train.learning_rate=1e-4`` is a float).

:func:`resolve` then checks what a value may be, so that nothing wrong reaches the trainer: one
table of valid ranges (:data:`RANGES`) for the ``data`` and ``train`` keys (the plugin's own
options carry theirs, ``Option.min``/``max``), the precision flags against the device, the
``train.report_to`` trackers against what is installed, the data paths, the model directory's
tokenizer files (:func:`ftx.model_files.check_tokenizer_files`), and finally the real
arguments object, built the way the trainer will build it (:func:`check_training_arguments`).
Every problem is a :class:`BadInput` naming the key, the value, the valid range and the fix.
"""

from __future__ import annotations

from ftx.config.checks import (
    check_data_paths,
    check_optimizer,
    check_optimizer_name,
    check_precision,
    check_ranges,
    check_trackers,
    check_training_arguments,
    training_arguments_kwargs,
)
from ftx.config.resolution import ResolvedConfig, coerce_train_value, resolve, train_fields
from ftx.config.sources import (
    SET_SYNTAX,
    Setting,
    load_file,
    load_yaml,
    merge,
    parse_set,
    plugins_for,
)
from ftx.config.tables import (
    CHOICES,
    CORE_TRAIN_DEFAULTS,
    DATA_FIELDS,
    DATA_PATHS,
    EXPORT_FIELDS,
    MODEL_FIELDS,
    RANGES,
    SECTIONS,
    TRACKERS,
    TRAIN_ALIASES,
    TRAIN_FIELDS,
    TRAIN_OWNED,
)

__all__ = [
    "CHOICES",
    "CORE_TRAIN_DEFAULTS",
    "DATA_FIELDS",
    "DATA_PATHS",
    "EXPORT_FIELDS",
    "MODEL_FIELDS",
    "RANGES",
    "SECTIONS",
    "SET_SYNTAX",
    "TRACKERS",
    "TRAIN_ALIASES",
    "TRAIN_FIELDS",
    "TRAIN_OWNED",
    "ResolvedConfig",
    "Setting",
    "check_data_paths",
    "check_optimizer",
    "check_optimizer_name",
    "check_precision",
    "check_ranges",
    "check_trackers",
    "check_training_arguments",
    "coerce_train_value",
    "load_file",
    "load_yaml",
    "merge",
    "parse_set",
    "plugins_for",
    "resolve",
    "train_fields",
    "training_arguments_kwargs",
]
