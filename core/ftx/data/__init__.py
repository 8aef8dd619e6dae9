"""The data layer: files -> conversations -> token ids with labels -> batches.

Pipeline (each step one module):

* `readers`: JSON / JSONL / CSV / Parquet files or a directory of them -> raw rows with their
  file and line/row number;
* `formats`: detect the format (vicuna, openai, alpaca, prompt_completion, text) and normalise
  every row to a `Conversation`, validating it (`load_conversations`);
* `templates`: render messages with the tokenizer's chat template or a named fallback
  (``vicuna_v1.1``, ``chatml``) and find the assistant's output in the text;
* `masking`: tokenise with labels = -100 on everything but assistant output (`render`,
  `prompt_for_generation`);
* `encoding`: marked texts -> flat numpy ids and labels, chunk by chunk, a chunk encoding
  while the next renders (`encode_flat`, `encode_chunks`);
* `columns`: truncation, dropping and counts per chunk, kept rows as Arrow columns, written
  straight into the token cache's file on a miss (`ColumnBuilder`, `spill_to`);
* `tokens`: a whole data set with truncation and counts (`tokenize_dataset`);
* `token_cache`: the trainer's dataset of a run's rows, kept across runs (`tokenized_dataset`);
* `split`: deterministic held-out split (`split_eval`);
* `collate`: padded or padding-free batches (`PackingCollator`, `resolve_packing`);
* `stats`: the numbers behind ``ftx data check`` (`data_check_report`);
* `checking`: ``ftx data check`` as a function (`check`, also ``ftx.data.check``);
* `demo`: the built-in demo data sets (`demo_data_paths`, `demo_preference_paths`, and
  `demo_paths_for` an objective's kind of rows).

Preference data (DPO, ORPO, SimPO, KTO) has its own three steps:

* `preference_formats`: the shapes (preference, preference_implicit, sharegpt_preference, kto)
  and a cheap recogniser the supervised loader uses to say "use --objective dpo";
* `preference`: normalise rows to `PreferencePair` / `LabelledCompletion`
  (`load_preference_pairs`, `load_labelled_completions`);
* `preference_tokens`: the token-id columns TRL's trainers consume, tokenised by ftx
  (`tokenize_pairs`, `tokenize_labelled`, `add_kl_completions`).

Every user mistake raises `ftx.errors.BadInput` naming the file and the line or row. Importing
this package never imports torch, transformers or datasets.
"""

from __future__ import annotations

from ftx.data.checking import check
from ftx.data.collate import PackingCollator, resolve_packing
from ftx.data.conversation import ROLES, Conversation
from ftx.data.demo import demo_data_paths, demo_paths_for, demo_preference_paths
from ftx.data.formats import FORMATS, detect_format, load_conversations
from ftx.data.masking import IGNORE_INDEX, TRAIN_ON, prompt_for_generation, render
from ftx.data.preference import (
    LabelledCompletion,
    PreferencePair,
    data_kind,
    detect_preference_format,
    load_labelled_completions,
    load_preference_pairs,
)
from ftx.data.preference_formats import (
    LABELLED_FORMATS,
    PAIR_FORMATS,
    PREFERENCE_FORMATS,
    looks_like_preference,
)
from ftx.data.preference_tokens import (
    PAIR_COLUMNS,
    TRUNCATION_MODES,
    TokenizedPairs,
    add_kl_completions,
    tokenize_labelled,
    tokenize_pairs,
)
from ftx.data.split import split_eval
from ftx.data.stats import data_check_report
from ftx.data.templates import TEMPLATES, Template, end_of_turn_text, template_for
from ftx.data.tokens import TokenizedData, tokenize_dataset

DEFAULT_MAX_LENGTH = 512
"""Tokens per example unless the user says otherwise (``data.max_length``, ``--max-length``)."""

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "FORMATS",
    "IGNORE_INDEX",
    "LABELLED_FORMATS",
    "PAIR_COLUMNS",
    "PAIR_FORMATS",
    "PREFERENCE_FORMATS",
    "ROLES",
    "TEMPLATES",
    "TRAIN_ON",
    "TRUNCATION_MODES",
    "Conversation",
    "LabelledCompletion",
    "PackingCollator",
    "PreferencePair",
    "Template",
    "TokenizedData",
    "TokenizedPairs",
    "add_kl_completions",
    "check",
    "data_check_report",
    "data_kind",
    "demo_data_paths",
    "demo_paths_for",
    "demo_preference_paths",
    "detect_format",
    "detect_preference_format",
    "end_of_turn_text",
    "load_conversations",
    "load_labelled_completions",
    "load_preference_pairs",
    "looks_like_preference",
    "prompt_for_generation",
    "render",
    "resolve_packing",
    "split_eval",
    "template_for",
    "tokenize_dataset",
    "tokenize_labelled",
    "tokenize_pairs",
]
