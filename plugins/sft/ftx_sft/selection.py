"""Which parameters an SFT run trains: layer selectors, module globs, extras.

``layers`` accepts ``last:N``, ``first:N``, ranges ``"10-15"``, lists ``"3,5,7"`` or
``[3, "10-12"]``, or a single index; negative indices count from the end. Blocks are found
generically (:func:`ftx.layers.decoder_blocks`), not by Llama-only attribute names.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ftx.errors import BadInput
from ftx.loading import hold_frozen_in_autocast_dtype

EXTRAS = ("embed_tokens", "lm_head", "norm")
AUTO_SHARE = 4
"""``layers: auto`` trains the top ``1/AUTO_SHARE`` of the decoder blocks (at least one): 8 of
SmolLM2's 30. Measured on the demo (60 steps, lr 1e-3): the last 4 blocks reached 37.5%
held-out exact match, the last 8 reached 82.5%."""


def parse_layers(spec: Any, n_blocks: int) -> list[int]:
    """Resolve a layer selector to sorted block indices in ``[0, n_blocks)``; BadInput if not."""
    valid = f"this model has {n_blocks} decoder blocks (0-{n_blocks - 1})"
    if spec == "auto":
        return list(range(n_blocks - max(1, -(-n_blocks // AUTO_SHARE)), n_blocks))
    items = spec if isinstance(spec, list) else [spec]
    chosen: set[int] = set()
    for item in items:
        for part in str(item).split(","):
            chosen.update(_parse_one(part.strip(), n_blocks, valid))
    if not chosen:
        raise BadInput(f"method.layers: {spec!r} selects no block; {valid}")
    return sorted(chosen)


def _parse_one(part: str, n: int, valid: str) -> list[int]:
    def index(text: str) -> int:
        try:
            i = int(text)
        except ValueError:
            raise BadInput(
                f"method.layers: {part!r} is not last:N, first:N, A-B or an index; {valid}"
            ) from None
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise BadInput(f"method.layers: index {i} is out of range; {valid}")
        return j

    for word in ("last", "first"):
        if part.startswith(f"{word}:"):
            count = part.split(":", 1)[1]
            if not count.isdigit() or not 1 <= int(count) <= n:
                raise BadInput(f"method.layers: {part!r} needs N between 1 and {n}; {valid}")
            k = int(count)
            return list(range(n - k, n)) if word == "last" else list(range(k))
    if "-" in part[1:]:
        lo, hi = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
        a, b = index(lo), index(hi)
        if a > b:
            raise BadInput(f"method.layers: range {part!r} is backwards; {valid}")
        return list(range(a, b + 1))
    return [index(part)]


def _extra_params(model: Any, extras: list[str]) -> dict[str, Any]:
    from ftx.layers import outer_norm_parameters

    out: dict[str, Any] = {}
    for extra in extras:
        if extra not in EXTRAS:
            raise BadInput(f"method.extra: {extra!r} is not one of {', '.join(EXTRAS)}")
        if extra == "embed_tokens":
            module = model.get_input_embeddings()
        elif extra == "lm_head":
            module = model.get_output_embeddings()
        else:
            module = None
        if module is not None:
            out.update({f"{extra}:{n}": p for n, p in module.named_parameters()})
            continue
        norms = outer_norm_parameters(model)
        if not norms:
            raise BadInput(f"method.extra: this model has no {extra!r} outside the decoder blocks")
        out.update(norms)
    return out


def apply_selection(run: Any, model: Any) -> Any:
    """Freeze all parameters, then unfreeze the selection; print a compact table; return model."""
    from ftx.layers import block_index, decoder_blocks

    opts = run.options
    prefix, blocks = decoder_blocks(model)
    layer_ids = parse_layers(opts["layers"], len(blocks))
    patterns = opts["modules"]
    for param in model.parameters():
        param.requires_grad_(False)

    matched_patterns: set[str] = set()
    per_block: dict[int, int] = {}
    for name, param in model.named_parameters():
        block = block_index(name, prefix)
        if block not in layer_ids:
            continue
        inner = name.split(f"{prefix}.{block}.", 1)[-1]
        if patterns:
            hits = [p for p in patterns if fnmatch.fnmatch(inner, p) or fnmatch.fnmatch(name, p)]
            if not hits:
                continue
            matched_patterns.update(hits)
        param.requires_grad_(True)
        per_block[block] = per_block.get(block, 0) + param.numel()
    if patterns:
        missing = [p for p in patterns if p not in matched_patterns]
        if missing:
            example = next(n for n, _ in model.named_parameters() if block_index(n, prefix) == 0)
            raise BadInput(
                f"method.modules: {', '.join(map(repr, missing))} matches no parameter in the "
                f"chosen blocks; names look like {example.split(f'{prefix}.0.', 1)[-1]!r}"
            )
    extras = _extra_params(model, list(opts["extra"] or []))
    for param in extras.values():
        param.requires_grad_(True)

    _upcast_trainable(run, model)
    hold_frozen_in_autocast_dtype(run, model)
    _print_table(run, model, per_block, extras, prefix)
    if run.train_args.get("activation_checkpointing"):
        # Frozen lower blocks produce inputs without grad; checkpointed blocks above need them.
        model.enable_input_require_grads()
    return model


def _upcast_trainable(run: Any, model: Any) -> None:
    """With autocast on, keep fp32 master weights for trained parameters of a half checkpoint.

    Without autocast the whole model keeps one dtype (mixing would fail in the matmuls), which is
    the case LLaMA-Factory's freeze mode crashes on.
    """
    import torch

    if not (run.train_args.get("bf16") or run.train_args.get("fp16")):
        return
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()


def _print_table(run: Any, model: Any, per_block: dict[int, int], extras: dict, prefix: str):
    """A compact table of what trains: the chosen blocks, the extras, the share of the model."""
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    blocks = sorted(per_block)
    rows = [(f"{prefix} {_ranges(blocks)}", f"{len(blocks)} blocks", sum(per_block.values()))]
    for name in sorted({k.split(":")[0] for k in extras}):
        count = sum(p.numel() for k, p in extras.items() if k.split(":")[0] == name)
        rows.append((name, "extra", count))
    if getattr(run, "console", None) is not None:
        from rich.table import Table

        table = Table(title="SFT: what trains", title_justify="left")
        for column in ("part", "what", "parameters", "share"):
            table.add_column(
                column, justify="right" if column in ("parameters", "share") else "left"
            )
        for part, what, count in rows:
            table.add_row(part, what, f"{count:,}", f"{100 * count / total:.2f}%")
        table.add_row("total", "trainable", f"{trained:,}", f"{100 * trained / total:.2f}%")
        run.console.print(table)
    else:
        run.log(f"SFT trains {rows}: {trained:,} of {total:,} parameters")
    tied = getattr(model.config, "tie_word_embeddings", False)
    if tied and any(k.startswith(("lm_head", "embed_tokens")) for k in extras):
        run.log("note: lm_head and embed_tokens are tied: training one trains both")


def _ranges(ids: list[int]) -> str:
    out, start = [], None
    for i, j in enumerate(ids):
        if start is None:
            start = j
        if i + 1 == len(ids) or ids[i + 1] != j + 1:
            out.append(str(start) if start == j else f"{start}-{j}")
            start = None
    return ",".join(out) or "none"
