"""Which method to use, given every method's peak and the usable memory."""

from __future__ import annotations

from typing import Any

from ftx.estimates import format_bytes, format_count


def _rank_key(row: dict[str, Any]) -> tuple[int, int]:
    # More trainable parameters first (more capacity to adapt), then the smaller peak.
    est = row["estimate"]
    return (-est["trainable_params"], row["peak_bytes"])


def recommend(rows: list[dict[str, Any]], usable: int | None, checkpointing: bool) -> dict:
    """Pick the method to use: among those that fit (without turning on checkpointing if it is
    off by default, else with it), the one that trains the most parameters — full fine-tuning
    before partial before adapters, since more trainable capacity adapts better when memory
    allows. If none fits, the one with the smallest peak, with what to change.

    Returns ``{"method": name or None, "checkpointing": bool, "reason": text}``."""
    known = [r for r in rows if r["estimate"] is not None]
    if not known:
        return {"method": None, "checkpointing": checkpointing, "reason": "no method estimate"}
    if usable is None:
        return {
            "method": None,
            "checkpointing": checkpointing,
            "reason": "the memory budget is unknown: pass --gpu-mem SIZE",
        }
    fits = sorted((r for r in known if r["fits"]), key=_rank_key)
    if fits:
        best = fits[0]
        what = (
            "trains every weight"
            if best["estimate"]["trainable_params"] >= best["estimate"]["total_params"]
            else f"trains {format_count(best['estimate']['trainable_params'])} parameters"
        )
        others = [r["name"] for r in fits[1:]]
        tail = f"; {', '.join(others)} also fit{'s' if len(others) == 1 else ''}" if others else ""
        return {
            "method": best["name"],
            "checkpointing": checkpointing,
            "reason": (
                f"fits ({format_bytes(best['peak_bytes'])} of {format_bytes(usable)} usable) "
                f"and {what}: the most capacity that fits{tail}"
            ),
        }
    if not checkpointing:
        with_ckpt = sorted((r for r in known if r["fits_checkpointed"]), key=_rank_key)
        if with_ckpt:
            best = with_ckpt[0]
            return {
                "method": best["name"],
                "checkpointing": True,
                "reason": (
                    f"fits only with activation checkpointing "
                    f"({format_bytes(best['peak_checkpointed_bytes'])} of "
                    f"{format_bytes(usable)} usable): add --set train.gradient_checkpointing=true"
                ),
            }
    smallest = min(known, key=lambda r: r["peak_checkpointed_bytes"])
    return {
        "method": smallest["name"],
        "checkpointing": True,
        "reason": (
            f"nothing fits in {format_bytes(usable)} usable; {smallest['name']} needs the least "
            f"({format_bytes(smallest['peak_checkpointed_bytes'])} with checkpointing): lower "
            "--batch-size/--seq-len, or use a machine with more memory"
        ),
    }
