"""Preference rows -> the token-id columns TRL's preference trainers consume, tokenised by ftx.

Tokenisation is ftx's, not the trainers' (they would re-render with ``apply_chat_template`` and
lose ftx's fallback templates): each answer is rendered after its prompt exactly as
`ftx.data.masking` renders a supervised row, so the prompt ids end with the generation prompt
(``<|im_start|>assistant\\n``, Vicuna's ``ASSISTANT:``) and an answer's ids are the tokens
supervised training would train for that turn (its content plus the end-of-turn token, not the
newline a template writes after it). The prompt is the common prefix of the two tokenisations,
so ``prompt + chosen`` and ``prompt + rejected`` are each exactly the ids of a full render.

Columns, by trainer (TRL 1.16):

* ``columns="dpo"`` -> ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (answers only): what
  ``trl.DPOTrainer`` keeps (its signature columns, plus ``ref_chosen_logps``/``ref_rejected_logps``
  it may add) and what its ``DataCollatorForPreference`` concatenates;
* ``columns="cpo"`` -> ``prompt_input_ids``, ``prompt_attention_mask``, ``chosen_input_ids``,
  ``chosen_attention_mask``, ``chosen_labels``, ``rejected_input_ids``,
  ``rejected_attention_mask``, ``rejected_labels``, where ``chosen_input_ids`` is prompt + answer
  and the labels are -100 on the prompt: what ``trl.experimental.cpo.CPOTrainer`` (SimPO) and
  ``trl.experimental.orpo.ORPOTrainer`` produce in ``tokenize_row`` and their
  ``DPODataCollatorWithPadding`` pads;
* `tokenize_labelled` -> ``prompt_ids``, ``completion_ids``, ``label``: what ``trl.KTOTrainer``
  keeps and its ``DataCollatorForUnpairedPreference`` reads; `add_kl_completions` adds the
  ``KL_completion_ids`` its ``_prepare_dataset`` would add.

None of these trainers skips its own tokenisation when given ids: ``DPOTrainer`` and
``KTOTrainer`` always call ``_prepare_dataset`` (it looks for ``prompt``/``chosen``/``rejected``
text), ``CPOTrainer`` and ``ORPOTrainer`` always map ``tokenize_row``. A subclass overrides
those (return the dataset / ``{}``) to take these columns as they are.

Truncation to ``max_length`` tokens per sequence (prompt + one answer), before any trainer sees
the ids, so theirs never applies:

* ``keep_end`` (default): the prompt loses its *first* tokens (oldest context) until the longer
  answer fits, keeping at least ``min(prompt, max_length // 2)`` of its last tokens; answers
  still too long lose their last tokens;
* ``keep_start``: each sequence keeps its first ``max_length`` tokens (answers lose their end);
  a pair whose prompt alone fills ``max_length`` is dropped, as TRL drops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftx.data.conversation import Conversation
from ftx.data.masking import IGNORE_INDEX, TrainedSpans, encode, mark_trained
from ftx.data.templates import Template, template_for
from ftx.data.tokens import MAX_LISTED
from ftx.errors import BadInput

TRUNCATION_MODES = ("keep_end", "keep_start")
PAIR_COLUMNS = {
    "dpo": ("prompt_ids", "chosen_ids", "rejected_ids"),
    "cpo": (
        "prompt_input_ids",
        "prompt_attention_mask",
        "chosen_input_ids",
        "chosen_attention_mask",
        "chosen_labels",
        "rejected_input_ids",
        "rejected_attention_mask",
        "rejected_labels",
    ),
}
"""The columns of `tokenize_pairs` for each layout (``dpo``: DPOTrainer; ``cpo``: CPOTrainer,
ORPOTrainer)."""
LABELLED_COLUMNS = ("prompt_ids", "completion_ids", "label")


@dataclass
class TokenizedPairs:
    """The trainer's input and what happened on the way.

    Attributes:
        examples: one dict per kept row, in order, with the columns of the layout (see the
            module docstring).
        stats: ``rows`` (rows in), ``kept``, ``dropped`` (left out by ``keep_start``) and
            ``dropped_sources``, ``truncated`` (rows with any token cut), ``identical`` and
            ``identical_sources`` (kept pairs whose two answers have the same ids: no preference
            to learn), ``prompt_lengths`` and ``chosen_lengths``/``rejected_lengths`` (or
            ``completion_lengths``) per row before truncation, ``tokens`` (ids in the kept
            sequences, after truncation), ``max_length``, ``template``, ``truncation_mode``,
            ``columns``; labelled rows add ``desirable`` and ``undesirable``.
    """

    examples: list[dict]
    stats: dict[str, Any] = field(default_factory=dict)


def tokenize_pairs(
    pairs: list[Any],
    tokenizer: Any,
    *,
    max_length: int,
    template: str | Template = "auto",
    truncation_mode: str = "keep_end",
    columns: str = "dpo",
) -> TokenizedPairs:
    """Tokenise `ftx.data.PreferencePair`s into the `columns` layout (``"dpo"`` or ``"cpo"``).

    Raises `BadInput` for ``max_length < 2``, an unknown template, truncation mode or layout,
    or a row the model's chat template refuses (naming its ``file:line``).
    """
    if columns not in PAIR_COLUMNS:
        raise BadInput(f"unknown columns {columns!r}; expected one of: {', '.join(PAIR_COLUMNS)}")
    tmpl = _check(tokenizer, max_length, template, truncation_mode)
    convs = [p.conversation(side) for p in pairs for side in ("chosen", "rejected")]
    split = _split(convs, tokenizer, tmpl)
    examples, dropped, identical = [], [], []
    lengths: dict[str, list[int]] = {"prompt": [], "chosen": [], "rejected": []}
    truncated = tokens = 0
    for index, pair in enumerate(pairs):
        (p_c, chosen), (p_r, rejected) = split[2 * index], split[2 * index + 1]
        prompt = _common_prefix(p_c, p_r)
        chosen, rejected = p_c[len(prompt) :] + chosen, p_r[len(prompt) :] + rejected
        for key, ids in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
            lengths[key].append(len(ids))
        cut = _truncate(prompt, [chosen, rejected], max_length, truncation_mode)
        if cut is None:
            dropped.append(pair.source)
            continue
        truncated += cut != (prompt, [chosen, rejected])
        prompt, (chosen, rejected) = cut
        if chosen == rejected:
            identical.append(pair.source)
        tokens += 2 * len(prompt) + len(chosen) + len(rejected)
        examples.append(_pair_columns(prompt, chosen, rejected, columns))
    stats = _stats(pairs, examples, dropped, truncated, tokens, max_length, tmpl, truncation_mode)
    stats.update(
        identical=len(identical),
        identical_sources=identical[:MAX_LISTED],
        prompt_lengths=lengths["prompt"],
        chosen_lengths=lengths["chosen"],
        rejected_lengths=lengths["rejected"],
        columns=columns,
    )
    return TokenizedPairs(examples, stats)


def tokenize_labelled(
    rows: list[Any],
    tokenizer: Any,
    *,
    max_length: int,
    template: str | Template = "auto",
    truncation_mode: str = "keep_end",
) -> TokenizedPairs:
    """Tokenise `ftx.data.LabelledCompletion`s into ``prompt_ids``, ``completion_ids`` and
    ``label`` (KTOTrainer's columns). Raises `BadInput` as `tokenize_pairs` does."""
    tmpl = _check(tokenizer, max_length, template, truncation_mode)
    split = _split([row.conversation() for row in rows], tokenizer, tmpl)
    examples, dropped, prompt_lengths, completion_lengths = [], [], [], []
    truncated = tokens = 0
    for row, (prompt, completion) in zip(rows, split, strict=True):
        prompt_lengths.append(len(prompt))
        completion_lengths.append(len(completion))
        cut = _truncate(prompt, [completion], max_length, truncation_mode)
        if cut is None:
            dropped.append(row.source)
            continue
        truncated += cut != (prompt, [completion])
        prompt, (completion,) = cut
        tokens += len(prompt) + len(completion)
        examples.append({"prompt_ids": prompt, "completion_ids": completion, "label": row.label})
    stats = _stats(rows, examples, dropped, truncated, tokens, max_length, tmpl, truncation_mode)
    desirable = sum(1 for ex in examples if ex["label"])
    stats.update(
        prompt_lengths=prompt_lengths,
        completion_lengths=completion_lengths,
        desirable=desirable,
        undesirable=len(examples) - desirable,
        columns="kto",
    )
    return TokenizedPairs(examples, stats)


def add_kl_completions(examples: list[dict], batch_size: int) -> list[dict]:
    """Copies of KTO `examples` with ``KL_completion_ids``: within each run of `batch_size`
    consecutive examples the completions rotated by one, ``(x_1, y_n), (x_2, y_1), …``, as
    ``KTOTrainer._prepare_dataset`` adds them (its KL losses need them and sequential sampling,
    ``train_sampling_strategy="sequential"``, with this batch size)."""
    if batch_size < 1:
        raise BadInput(f"batch_size must be at least 1, got {batch_size}")
    out = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        rotated = [chunk[-1]["completion_ids"]] + [ex["completion_ids"] for ex in chunk[:-1]]
        out.extend({**ex, "KL_completion_ids": kl} for ex, kl in zip(chunk, rotated, strict=True))
    return out


def _check(tokenizer: Any, max_length: int, template: str | Template, mode: str) -> Template:
    if max_length < 2:
        raise BadInput(
            f"max_length must be at least 2 tokens for preference data, got {max_length}",
            hint="a sequence needs a prompt token and an answer token",
        )
    if mode not in TRUNCATION_MODES:
        raise BadInput(
            f"unknown truncation_mode {mode!r}; expected one of: {', '.join(TRUNCATION_MODES)}"
        )
    return template if isinstance(template, Template) else template_for(tokenizer, template)


def _split(convs: list[Conversation], tokenizer: Any, tmpl: Template) -> list[tuple[list, list]]:
    """``(prompt ids, answer ids)`` of each conversation's last assistant turn, tokenised as
    `ftx.data.masking` tokenises the whole conversation (the text ends with that turn's span)."""
    marked = []
    for conv in convs:
        full = mark_trained(conv, tokenizer, tmpl, "assistant")
        start, end = full.spans[-1]
        marked.append(TrainedSpans(full.text[:end], [(start, end)], full.prefix_ids))
    out = []
    for ids, labels in encode(marked, tokenizer):
        first = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), len(ids))
        out.append((ids[:first], ids[first:]))
    return out


def _truncate(
    prompt: list[int], answers: list[list[int]], max_length: int, mode: str
) -> tuple[list[int], list[list[int]]] | None:
    """`prompt` and `answers` cut so that prompt + each answer fits `max_length` (module
    docstring); None when ``keep_start`` leaves no answer token."""
    longest = max(len(a) for a in answers)
    if len(prompt) + longest <= max_length:
        return prompt, answers
    if mode == "keep_start":
        if len(prompt) >= max_length:
            return None
        return prompt, [a[: max_length - len(prompt)] for a in answers]
    keep = max(max_length - longest, min(len(prompt), max(1, max_length // 2)))
    prompt = prompt[len(prompt) - keep :]
    return prompt, [a[: max_length - keep] for a in answers]


def _common_prefix(a: list[int], b: list[int]) -> list[int]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _pair_columns(prompt: list[int], chosen: list[int], rejected: list[int], columns: str) -> dict:
    if columns == "dpo":
        return {"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected}
    out = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side, answer in (("chosen", chosen), ("rejected", rejected)):
        out[f"{side}_input_ids"] = prompt + answer
        out[f"{side}_attention_mask"] = [1] * (len(prompt) + len(answer))
        out[f"{side}_labels"] = [IGNORE_INDEX] * len(prompt) + answer
    return out


def _stats(
    rows: list[Any],
    examples: list[dict],
    dropped: list[str],
    truncated: int,
    tokens: int,
    max_length: int,
    tmpl: Template,
    mode: str,
) -> dict[str, Any]:
    return {
        "rows": len(rows),
        "kept": len(examples),
        "dropped": len(dropped),
        "dropped_sources": dropped[:MAX_LISTED],
        "truncated": truncated,
        "tokens": tokens,
        "max_length": max_length,
        "template": tmpl.name,
        "truncation_mode": mode,
    }
