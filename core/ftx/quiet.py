"""Library chatter off: what ftx does before it loads models, in every command that does."""

from __future__ import annotations


def quiet_libraries() -> None:
    """Silence library chatter a user cannot act on (deprecation notices, per-load progress
    bars); ftx prints its own progress. Real errors still surface."""
    import warnings

    from transformers.utils import logging as hf_logging

    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*use_cache=True.*")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
