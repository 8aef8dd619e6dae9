"""Drift: mean per-token KL(p_base ‖ p_tuned) in nats, teacher-forced on general text.

The text (``general_text.jsonl``, a few short paragraphs in English, French, Spanish, German and
Japanese written for ftx, from no task) is tokenised once per paragraph, each cut to
:data:`MAX_TOKENS_PER_TEXT` tokens (about 1k tokens in all for SmolLM2's tokenizer). At every
position both models predict the next token; the KL of the tuned model's distribution from the
base model's is averaged over all positions. 0.0 means the tuned model predicts exactly as the
base does.

Memory: the base and the tuned model are both in memory during the measurement (the models ftx
measures this way are small); for a PEFT model pass ``base=None`` and the base is the same model
with its adapter disabled (one copy). The logits of one paragraph per model (tokens x vocabulary
x 4 bytes, about 40 MB for SmolLM2) are the only other large tensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEXT_FILE = Path(__file__).resolve().parent / "general_text.jsonl"
MAX_TOKENS_PER_TEXT = 256


def general_texts(path: Path = TEXT_FILE) -> list[str]:
    """The shipped paragraphs, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def mean_kl(tuned: Any, tokenizer: Any, *, base: Any = None) -> dict[str, Any]:
    """``{"drift_nats": mean KL(p_base ‖ p_tuned) per token, "drift_tokens": positions}`` on
    the shipped text. ``base=None`` requires a PEFT ``tuned`` (its ``disable_adapter()`` gives
    the base)."""
    import torch

    if base is None and not hasattr(tuned, "disable_adapter"):
        raise ValueError("mean_kl needs base= unless the tuned model is a PEFT model")
    total, count = 0.0, 0
    with torch.no_grad():
        for text in general_texts():
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:MAX_TOKENS_PER_TEXT]
            if len(ids) < 2:
                continue
            batch = torch.tensor([ids], device=tuned.device)
            tuned_logp = _log_probs(tuned, batch)
            if base is None:
                with tuned.disable_adapter():
                    base_logp = _log_probs(tuned, batch)
            else:
                base_logp = _log_probs(base, batch.to(base.device)).to(tuned_logp.device)
            kl = (base_logp.exp() * (base_logp - tuned_logp)).sum(-1)
            total += float(kl.sum())
            count += kl.numel()
    # Rounding noise can leave a hair below zero for identical models.
    return {"drift_nats": max(total / max(count, 1), 0.0), "drift_tokens": count}


def _log_probs(model: Any, ids: Any) -> Any:
    """log-softmax of the next-token logits at every position but the last, in float32."""
    import torch

    logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
    return torch.log_softmax(logits, dim=-1)
