"""Cheap checks of a local model directory's files, before anything is loaded.

:func:`check_tokenizer_files` is the tokenizer's counterpart of
:func:`ftx.models.check_model_spec`: a directory with weights and ``config.json`` but no
tokenizer would otherwise fail with a traceback from ``AutoTokenizer`` after the run started.
Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path

from ftx.errors import BadInput

VOCABULARY_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "tekken.json",
)
"""Files that hold a vocabulary ``AutoTokenizer`` can build a tokenizer from (``tokenizer.json``
for fast tokenizers; SentencePiece models; GPT-2 style ``vocab.json`` with ``merges.txt``;
WordPiece ``vocab.txt``; Mistral's ``tekken.json``); ``*.tiktoken`` files count too.
``tokenizer_config.json`` alone is not enough: it names a class, not a vocabulary."""


def check_tokenizer_files(spec: str | None) -> None:
    """Raise BadInput if ``spec`` is a local model directory without tokenizer files.

    Only local model directories (``config.json`` or ``adapter_config.json``) are checked, and
    a run directory's ``model/``; the demo, ``.gguf`` files (their tokenizer is inside), hub
    ids and anything :func:`ftx.models.check_model_spec` rejects pass. Reads file names only.
    """
    from ftx.models import is_demo

    if is_demo(spec) or spec is None or spec.endswith(".gguf"):
        return
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        path = path / "model"
    if not any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
        return  # not a model directory (or a hub id): check_model_spec says what is wrong
    if any((path / name).is_file() for name in VOCABULARY_FILES) or any(path.glob("*.tiktoken")):
        return
    has_config = (path / "tokenizer_config.json").is_file()
    found = "only tokenizer_config.json, which names no vocabulary" if has_config else "none"
    raise BadInput(
        f"model directory {spec} has no tokenizer files: expected tokenizer.json (or "
        f"tokenizer.model, vocab.json + merges.txt, …) and tokenizer_config.json; found {found}",
        hint="copy them from the model it was made from, e.g. in Python: "
        f"AutoTokenizer.from_pretrained(BASE).save_pretrained({str(path)!r})",
    )
