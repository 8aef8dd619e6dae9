"""Which layers IA3 scales, for any decoder-only architecture.

IA3 scales the attention keys and values (the *output* of the key/value projections) and the
intermediate activations of the MLP (the *input* of its output projection, a "feed-forward"
target in PEFT's terms). The layer names differ per architecture, so they are found in this
order: the ``method.target_modules`` option; PEFT's table for the model type; a structural
search of the decoder blocks (key/value projections by name inside an attention module, the MLP
output projection as the linear layer inside an MLP module that maps a wider input back to the
hidden size).
"""

from __future__ import annotations

import re
from typing import Any

from ftx.errors import BadInput

_ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
_MLP = re.compile(r"mlp|ffn|feed_?forward", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"^(k|v|key|value|wk|wv|k_proj|v_proj|key_proj|value_proj|qkv|qkv_proj|wqkv|c_attn"
    r"|query_key_value)$",
    re.IGNORECASE,
)


def resolve_targets(
    model: Any, targets: list[str] | None, feedforward: list[str] | None
) -> tuple[list[str], list[str]]:
    """Return ``(target_modules, feedforward_modules)`` for ``IA3Config``.

    ``targets``/``feedforward`` are the user's options (``None``: find them). Raises BadInput
    when a named module matches no layer, when ``feedforward`` is not a subset of ``targets``,
    or when nothing suitable is found (naming the option to set).
    """
    auto_targets, auto_ff = (
        find_targets(model) if targets is None or feedforward is None else ([], [])
    )
    if targets is None:
        if not auto_targets:
            raise BadInput(
                f"cannot find attention key/value or MLP output projections in "
                f"{type(model).__name__}",
                hint="set method.target_modules (and method.feedforward_modules) by name",
            )
        targets = auto_targets
    names = [name for name, _ in model.named_modules()]
    unknown = [t for t in targets if not any(_matches(n, t) for n in names)]
    if unknown or not targets:
        from ftx.layers import linear_module_names

        raise BadInput(
            f"method.target_modules: {', '.join(unknown) or '(empty)'} matches no layer; "
            f"linear layers of this model: {', '.join(linear_module_names(model))}"
        )
    if feedforward is None:
        feedforward = [t for t in targets if t in auto_ff]
    outside = [f for f in feedforward if f not in targets]
    if outside:
        raise BadInput(
            f"method.feedforward_modules: {', '.join(outside)} not in method.target_modules "
            f"({', '.join(targets)}); feed-forward modules must be a subset of the targets"
        )
    return list(targets), list(feedforward)


def find_targets(model: Any) -> tuple[list[str], list[str]]:
    """``(targets, feedforward)`` from PEFT's table for the model type, else :func:`guess_targets`.

    A table entry is used only if every name in it matches a layer of this model.
    """
    from peft.utils import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
    )
    from peft.utils import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
    )

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    targets, feedforward = TARGETS.get(model_type), FEEDFORWARD.get(model_type)
    if targets and feedforward is not None:
        names = [name for name, _ in model.named_modules()]
        if all(any(_matches(n, t) for n in names) for t in targets):
            return list(targets), list(feedforward)
    return guess_targets(model)


def guess_targets(model: Any) -> tuple[list[str], list[str]]:
    """Find the targets structurally, as dotted suffixes relative to a decoder block
    (e.g. ``self_attn.k_proj``, ``mlp.down_proj``). Empty lists when nothing fits."""
    from ftx.layers import block_index, decoder_blocks

    prefix, _ = decoder_blocks(model)
    hidden = _hidden_size(model)
    key_value: set[str] = set()
    feedforward: set[str] = set()
    for name, module in model.named_modules():
        index = block_index(name, prefix)
        if index is None or not _is_linear(module):
            continue
        local = name.split(f"{prefix}.{index}.", 1)[-1]
        parent, _, leaf = local.rpartition(".")
        if _ATTENTION.search(parent) and _KEY_VALUE.match(leaf):
            key_value.add(local)
        elif _MLP.search(parent) and _maps_back_to_hidden(module, hidden):
            feedforward.add(local)
    if not key_value and not feedforward:
        return [], []
    return sorted(key_value) + sorted(feedforward), sorted(feedforward)


def _matches(module_name: str, target: str) -> bool:
    """PEFT's rule for a list of target names: equal, or a dotted suffix."""
    return module_name == target or module_name.endswith(f".{target}")


def _is_linear(module: Any) -> bool:
    kind = type(module).__name__
    return kind in {"Linear", "Conv1D"} or kind.startswith(("Linear4bit", "Linear8bit"))


def _features(module: Any) -> tuple[int, int] | None:
    """``(in_features, out_features)`` of a Linear, or of a GPT-2 style Conv1D."""
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return int(module.in_features), int(module.out_features)
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and weight is not None:
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def _maps_back_to_hidden(module: Any, hidden: int | None) -> bool:
    shape = _features(module)
    if shape is None:
        return False
    fan_in, fan_out = shape
    return fan_in > fan_out and (hidden is None or fan_out == hidden)


def _hidden_size(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for key in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None
