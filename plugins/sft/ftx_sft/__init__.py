"""ftx-sft: supervised fine-tuning of only the layers you choose (the rest stays frozen).

Hooks: ``select_trainable`` (freeze everything, unfreeze the selection, print what trains) and
``train_defaults``. Loading, the TRL ``SFTTrainer`` and the full-model export are the core
defaults. The selection logic lives in :mod:`ftx_sft.selection`; this module imports no torch.
"""

from __future__ import annotations

from typing import Any

from ftx import hookimpl
from ftx.options import Option

DEFAULT_LAYERS = "auto"
"""``auto`` = the top quarter of the decoder blocks (at least one; see ``selection.AUTO_SHARE``)."""

OPTIONS = [
    Option(
        "layers",
        "str",
        DEFAULT_LAYERS,
        "decoder blocks: auto (top quarter) | last:N | first:N | 10-15 | 3,5,7 | a list",
        alternatives=("int", "list"),
    ),
    Option(
        "modules",
        "list",
        None,
        "glob patterns over parameter names inside the chosen blocks, e.g. ['mlp.*']",
        nullable=True,
    ),
    Option("extra", "list", [], "also train: embed_tokens, lm_head, norm (the final norm)"),
]


@hookimpl
def method_options() -> list[Option]:
    return OPTIONS


@hookimpl
def train_defaults(device: Any) -> dict[str, Any]:
    return {"learning_rate": 1e-3}


@hookimpl
def select_trainable(run: Any, model: Any) -> Any:
    from ftx_sft.selection import apply_selection

    return apply_selection(run, model)


@hookimpl
def estimate_memory(model_config, seq_len, batch_size, options, device, dtype, objective=None):
    from ftx_sft.estimate import estimate

    return estimate(model_config, seq_len, batch_size, options, device, dtype, objective)
