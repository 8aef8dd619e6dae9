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
* `tokens`: a whole data set with truncation and counts (`tokenize_dataset`);
* `split`: deterministic held-out split (`split_eval`);
* `collate`: padded or padding-free batches (`PackingCollator`, `resolve_packing`);
* `stats`: the numbers behind ``ftx data check`` (`data_check_report`);
* `demo`: the built-in demo data set (`demo_data_paths`).

Every user mistake raises `ftx.errors.BadInput` naming the file and the line or row. Importing
this package never imports torch, transformers or datasets.
"""

from __future__ import annotations

from ftx.data.collate import PackingCollator, resolve_packing
from ftx.data.conversation import ROLES, Conversation
from ftx.data.demo import demo_data_paths
from ftx.data.formats import FORMATS, detect_format, load_conversations
from ftx.data.masking import IGNORE_INDEX, TRAIN_ON, prompt_for_generation, render
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
    "ROLES",
    "TEMPLATES",
    "TRAIN_ON",
    "Conversation",
    "PackingCollator",
    "Template",
    "TokenizedData",
    "data_check_report",
    "demo_data_paths",
    "detect_format",
    "end_of_turn_text",
    "load_conversations",
    "prompt_for_generation",
    "render",
    "resolve_packing",
    "split_eval",
    "template_for",
    "tokenize_dataset",
]
