"""Batches for the trainer: padded, or padding-free (packed into one row).

Padding-free batches carry ``position_ids`` that restart at 0 for each example and no
``attention_mask``. transformers 5 (``masking_utils.find_packed_sequence_indices``) detects the
restarts and masks attention to a block-diagonal causal mask for sdpa and eager attention, and
flash-attention 2/3 use the same position_ids as variable-length boundaries, so no token attends
across examples. That detection only runs when the model is called **without a cache**: the
model must be called with ``use_cache=False`` (TRL's SFTTrainer does so in ``compute_loss``;
a plain loop must pass it). With a cache (the default ``use_cache=True`` of most configs),
transformers skips the detection and every example attends to the ones before it.
"""

from __future__ import annotations

from typing import Any

from ftx.data.masking import IGNORE_INDEX
from ftx.errors import BadInput

PACKING_SETTINGS = ("auto", "true", "false")
"""The values of ``data.packing`` (config validation takes its choices from here)."""
# Attention implementations that honour packed position_ids without an attention mask.
PACKED_ATTENTION = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")
# Those that run packed rows as variable-length sequences (no quadratic mask at all).
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")


class PackingCollator:
    """Collate ``{"input_ids": [...], "labels": [...]}`` examples into torch tensors.

    ``padding_free=True``: ``input_ids``, ``labels`` and ``position_ids`` of shape
    ``[1, total_tokens]``; the first label of every example is -100, so no token is predicted
    across an example boundary; no ``attention_mask`` (see the module docstring: call the model
    with ``use_cache=False``).

    ``padding_free=False``: right-padded ``input_ids`` (with `pad_token_id`), ``attention_mask``
    (1 on tokens, 0 on padding) and ``labels`` (-100 on padding), shape ``[batch, longest]``,
    the length rounded up to `pad_to_multiple_of` when given.
    """

    def __init__(
        self, pad_token_id: int | None, *, padding_free: bool, pad_to_multiple_of: int | None = None
    ) -> None:
        if not padding_free and pad_token_id is None:
            raise BadInput(
                "padded batches need a pad token and the tokenizer has none",
                hint="set tokenizer.pad_token (ftx.models.load_tokenizer uses eos)",
            )
        self.pad_token_id = pad_token_id
        self.padding_free = padding_free
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids = [_as_list(e["input_ids"]) for e in examples]
        labels = [_as_list(e.get("labels", e["input_ids"])) for e in examples]
        if self.padding_free:
            flat_ids: list[int] = []
            flat_labels: list[int] = []
            positions: list[int] = []
            for row_ids, row_labels in zip(ids, labels, strict=True):
                flat_ids += row_ids
                flat_labels += [IGNORE_INDEX, *row_labels[1:]]
                positions += range(len(row_ids))
            return {
                "input_ids": torch.tensor([flat_ids], dtype=torch.long),
                "labels": torch.tensor([flat_labels], dtype=torch.long),
                "position_ids": torch.tensor([positions], dtype=torch.long),
            }
        width = max(len(row) for row in ids)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        target = torch.full((len(ids), width), IGNORE_INDEX, dtype=torch.long)
        for i, (row_ids, row_labels) in enumerate(zip(ids, labels, strict=True)):
            n = len(row_ids)
            input_ids[i, :n] = torch.tensor(row_ids, dtype=torch.long)
            attention[i, :n] = 1
            target[i, :n] = torch.tensor(row_labels, dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": target}


def resolve_packing(
    setting: str | bool,
    *,
    attn_implementation: str,
    batch_size: int = 1,
    device: str | None = None,
) -> bool:
    """Decide whether batches are padding-free (True) or padded (False).

    ``True``/``"true"`` and ``False``/``"false"`` are taken as given; True raises `BadInput` for
    an attention implementation that cannot honour packed position_ids (see `PACKED_ATTENTION`).

    ``"auto"`` is padding-free exactly when the attention implementation is flash-attention 2 or
    3 and ``batch_size > 1``. Those kernels run a packed row as variable-length sequences: no
    padding tokens are computed and no attention is spent across examples, a pure win. With
    sdpa a packed row runs example by example through ``ftx_sdpa`` (``ftx.attention``):
    a clear win on rows of very different lengths (``bench/packing.py``), but on short rows of
    similar length the per-example calls cost what the padding saved: on SmolLM2-135M, CPU, bf16
    autocast, batches of 8 demo rows, one forward+backward took 1.57 s padded and 1.60 s
    padding-free (FFT; QLoRA 1.67 / 1.69 s; same loss). So auto keeps padded batches there and
    ``packing: true`` is the setting for variable-length data. ``batch_size == 1`` has nothing
    to pad.

    `device` (``"cpu"``, ``"cuda"``, ...) is accepted for callers that know it; the rule above
    does not depend on it (flash-attention kernels exist only on GPUs anyway).
    """
    if isinstance(setting, str):
        lowered = setting.strip().lower()
        if lowered not in PACKING_SETTINGS:
            *first, last = PACKING_SETTINGS
            raise BadInput(f"data.packing must be {', '.join(first)} or {last}, got {setting!r}")
        setting = "auto" if lowered == "auto" else lowered == "true"
    if setting is True:
        if attn_implementation not in PACKED_ATTENTION:
            raise BadInput(
                f"padding-free batches need one of {', '.join(PACKED_ATTENTION)} attention, "
                f"got {attn_implementation!r}",
                hint="set data.packing=false or model.attn_implementation=sdpa",
            )
        return True
    if setting is False:
        return False
    return batch_size > 1 and attn_implementation in VARLEN_ATTENTION


def _as_list(value: Any) -> list[int]:
    return value.tolist() if hasattr(value, "tolist") else list(value)
