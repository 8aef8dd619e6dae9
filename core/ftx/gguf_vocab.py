"""The tokenizer half of a GGUF file: vocabulary, token types, merges, pre-tokenizer name,
special token ids, end-of-turn id and chat template.

Two sources, in order:

* the GGUF the model came from (the demo, any ``--model FILE.gguf``): its ``tokenizer.ggml.*``
  keys are copied as they are, so llama.cpp tokenises exactly as the original file did
  (:func:`source_gguf` finds it from a run);
* otherwise the run's tokenizer (``tokenizer.json`` as transformers loads it), one of two
  kinds (:func:`tokenizer_kind`):

  - byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM): GGUF tokenizer model ``gpt2``, with the
    pre-tokenizer named from its structure (:func:`pre_tokenizer_name`) the way llama.cpp and
    transformers select one;
  - SentencePiece-style BPE (Llama 2, Mistral v0.1: ``byte_fallback`` and the ``"▁"``
    Metaspace or Prepend/Replace scheme): GGUF tokenizer model ``llama`` (:func:`_spm_vocab`),
    tokens and types from ``gguf``'s :class:`gguf.LlamaHfVocab`, and scores from the merge
    order, which llama.cpp's SentencePiece tokenizer merges by.

  Anything else is BadInput (exit 2) before a file is written.

The chat template is always the run's own (what it trained on). Importing this module imports
neither torch nor gguf.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftx.errors import BadInput

END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
"""Tokens that end an assistant turn, by template family (ChatML, Llama 3, Phi, Gemma)."""

_SUPPORTED_TOKENIZERS = (
    "byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM) and SentencePiece-style BPE with byte "
    "fallback (Llama 2, Mistral v0.1)"
)


def source_gguf(model_dirs: list[Path], spec: str | None) -> Path | None:
    """The GGUF file a run's model came from: a converted directory's marker among
    ``model_dirs`` (the adapter's base, the run's model), else the run's ``model.name`` when it
    is the demo or a ``.gguf`` path; None when there is none (or it is gone)."""
    from ftx.models import GGUF_SOURCE, demo_gguf_path, is_demo

    for directory in model_dirs:
        marker = directory / GGUF_SOURCE
        if marker.is_file():
            path = Path(json.loads(marker.read_text()).get("gguf") or "")
            if path.is_file():
                return path
    if is_demo(spec):
        try:
            return demo_gguf_path()
        except BadInput:
            return None
    if spec and spec.endswith(".gguf") and Path(spec).expanduser().is_file():
        return Path(spec).expanduser()
    return None


def end_of_turn(tokenizer: Any) -> tuple[int, str] | None:
    """``(id, text)`` of the token that ends an assistant turn, or None."""
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            return vocab[token], token
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id, tokenizer.eos_token
    return None


def check_tokenizer(model_dir: Path, source: Path | None) -> None:
    """BadInput unless :func:`add_tokenizer` can describe this tokenizer (no file touched)."""
    if source is None:
        from ftx.models import load_tokenizer

        model, _ = tokenizer_kind(effective_tokenizer_json(model_dir, load_tokenizer(model_dir)))
        if model == "llama":
            _llama_hf_vocab(model_dir)


def effective_tokenizer_json(model_dir: Path, tokenizer: Any) -> dict[str, Any]:
    """The tokenizer as the run used it, serialised: transformers 5 rebuilds some families'
    pre-tokenizer in the class (``Qwen2Tokenizer`` splits digits whatever ``tokenizer.json``
    says), so the saved file is not enough. BadInput for a tokenizer without a fast backend."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise BadInput(
            f"GGUF export needs a fast tokenizer for {model_dir} when the model did not come "
            "from a GGUF",
            hint=f"supported tokenizers: {_SUPPORTED_TOKENIZERS}",
        )
    return json.loads(backend.to_str())


def add_tokenizer(
    writer: Any, model_dir: Path, tokenizer: Any, source: Path | None, n_vocab: int
) -> None:
    """Write the tokenizer keys to a ``GGUFWriter`` (see module docstring)."""
    if source is not None and _copy_from_source(writer, source, len(tokenizer)):
        pass
    else:
        _from_tokenizer_json(writer, model_dir, tokenizer, n_vocab)
    turn = end_of_turn(tokenizer)
    if turn is not None:
        writer.add_eot_token_id(turn[0])
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


_COPIED_FROM_SOURCE_SKIP = ("tokenizer.chat_template",)


def _copy_from_source(writer: Any, source: Path, vocab_len: int) -> bool:
    """Copy ``tokenizer.ggml.*`` from ``source``; False (nothing written) when its vocabulary
    is not the run tokenizer's (tokens were added since)."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    fields = {k: f for k, f in reader.fields.items() if k.startswith("tokenizer.")}
    tokens = fields.get("tokenizer.ggml.tokens")
    if tokens is None or len(tokens.data) != vocab_len:
        return False
    copy_fields(writer, {k: f for k, f in fields.items() if k not in _COPIED_FROM_SOURCE_SKIP})
    return True


def copy_fields(writer: Any, fields: dict[str, Any]) -> None:
    """Copy ``GGUFReader`` fields (name -> field) to a ``GGUFWriter``, types unchanged."""
    import gguf

    for key, field in fields.items():
        main = gguf.GGUFValueType(field.types[0])
        sub = gguf.GGUFValueType(field.types[1]) if main == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), main, sub_type=sub)


def tokenizer_kind(data: dict[str, Any]) -> tuple[str, str]:
    """``(tokenizer.ggml.model, tokenizer.ggml.pre)`` for a ``tokenizer.json``: ``("llama",
    "default")`` for SentencePiece-style BPE, ``("gpt2", name)`` for byte-level BPE; BadInput
    for anything else."""
    if is_sentencepiece_bpe(data):
        return "llama", "default"
    return "gpt2", pre_tokenizer_name(data)


def is_sentencepiece_bpe(data: dict[str, Any]) -> bool:
    """Whether a ``tokenizer.json`` is a SentencePiece BPE model as transformers converts one
    (Llama 2, Mistral v0.1): BPE with ``byte_fallback`` whose spaces become ``"▁"``, through a
    Metaspace pre-tokenizer or a Prepend/Replace normaliser."""
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        return False
    return _metaspace(data) is not None or _prepends_metaspace(data)


def add_space_prefix(data: dict[str, Any]) -> bool:
    """llama.cpp's ``add_space_prefix`` for a SentencePiece-style ``tokenizer.json``: whether a
    ``"▁"`` is put before the text (Metaspace ``prepend_scheme`` other than ``never``, or a
    Prepend normaliser)."""
    metaspace = _metaspace(data)
    if metaspace is not None:
        return metaspace.get("prepend_scheme", "always") != "never"
    return _prepends_metaspace(data)


def _steps(component: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    component = component or {}
    return component.get(key, []) if component.get("type") == "Sequence" else [component]


def _metaspace(data: dict[str, Any]) -> dict[str, Any] | None:
    for step in _steps(data.get("pre_tokenizer"), "pretokenizers"):
        if step.get("type") == "Metaspace" and step.get("replacement") == "\u2581":
            return step
    return None


def _prepends_metaspace(data: dict[str, Any]) -> bool:
    kinds = {
        (step.get("type"), step.get("prepend") or step.get("content"))
        for step in _steps(data.get("normalizer"), "normalizers")
    }
    return ("Prepend", "\u2581") in kinds and ("Replace", "\u2581") in kinds


def pre_tokenizer_name(data: dict[str, Any]) -> str:
    """llama.cpp's name (``tokenizer.ggml.pre``) for a ``tokenizer.json``'s pre-tokenizer, read
    from its structure; BadInput for a tokenizer or pre-tokenizer it cannot name."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    model = data.get("model") or {}
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if model.get("type") != "BPE" or "ByteLevel" not in kinds:
        raise BadInput(
            f"GGUF export: tokenizer {model.get('type')} with pre-tokenizer {kinds} is not "
            "supported",
            hint=f"supported: {_SUPPORTED_TOKENIZERS}",
        )
    byte_level = steps[kinds.index("ByteLevel")]
    if kinds == ["ByteLevel"] and byte_level.get("use_regex", True):
        return "gpt-2"
    if (
        kinds == ["Digits", "ByteLevel"]
        and steps[0].get("individual_digits")
        and byte_level.get("use_regex", True)
    ):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not byte_level.get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        for name in ("llama-bpe", "qwen2"):
            if pattern == GGUF_PRE_TOKENIZER_SPLITS[name]:
                return name
    raise BadInput(
        f"GGUF export: this tokenizer's pre-tokenizer ({kinds}) matches none llama.cpp names",
        hint=f"supported: {_SUPPORTED_TOKENIZERS}",
    )


def _from_tokenizer_json(writer: Any, model_dir: Path, tokenizer: Any, n_vocab: int) -> None:
    import gguf

    data = effective_tokenizer_json(model_dir, tokenizer)
    model, pre = tokenizer_kind(data)
    if model == "llama":
        _spm_vocab(writer, model_dir, data, n_vocab)
        return
    vocab = tokenizer.get_vocab()
    added = tokenizer.added_tokens_decoder
    size = max(n_vocab, max(vocab.values()) + 1)
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, index in vocab.items():
        tokens[index] = text
        types[index] = gguf.TokenType.NORMAL
    for index, token in added.items():
        tokens[index] = token.content
        types[index] = gguf.TokenType.CONTROL if token.special else gguf.TokenType.USER_DEFINED
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=size)
    special.chat_template = None  # the run tokenizer's, written by add_tokenizer
    special.add_to_gguf(writer, quiet=True)


def _spm_vocab(writer: Any, model_dir: Path, data: dict[str, Any], n_vocab: int) -> None:
    """The ``llama`` (SentencePiece) vocabulary, as llama.cpp's converter writes it from a
    ``tokenizer.json`` (``_set_vocab_llama_hf``), with real scores (:func:`merge_scores`) where
    :class:`gguf.LlamaHfVocab` leaves a placeholder: llama.cpp merges the adjacent pair whose
    merged token scores highest, so the scores must follow the merge order. The unknown token
    is typed UNKNOWN, as a ``tokenizer.model`` conversion types it. No merges are written
    (llama.cpp does not read them for this model); a reader rebuilds them from the scores."""
    import gguf

    vocab = _llama_hf_vocab(model_dir)
    scores = merge_scores(data)
    unk = vocab.tokenizer.unk_token_id
    tokens, token_scores, types = [], [], []
    for index, (text, _, kind) in enumerate(vocab.all_tokens()):
        tokens.append(text)
        token_scores.append(scores.get(text.decode("utf-8"), scores[None]))
        types.append(gguf.TokenType.UNKNOWN if index == unk else kind)
    for index in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{index}]".encode())
        token_scores.append(scores[None])
        types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(token_scores)
    writer.add_token_types(types)
    writer.add_add_space_prefix(add_space_prefix(data))
    with _gguf_warnings_off():  # its guesses at Llama 2's <s> A <s> B pair template
        special = gguf.SpecialVocab(model_dir, n_vocab=len(tokens))
    special.chat_template = None  # the run tokenizer's, written by add_tokenizer
    special.add_to_gguf(writer, quiet=True)


@contextlib.contextmanager
def _gguf_warnings_off() -> Iterator[None]:
    log = logging.getLogger("gguf")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _llama_hf_vocab(model_dir: Path) -> Any:
    """``gguf.LlamaHfVocab`` of ``model_dir``; BadInput when it refuses the tokenizer."""
    import gguf

    try:
        return gguf.LlamaHfVocab(model_dir)
    except (FileNotFoundError, TypeError, KeyError) as exc:
        raise BadInput(
            f"GGUF export: the SentencePiece-style tokenizer in {model_dir} is not one "
            f"llama.cpp's converter reads ({exc})",
            hint=f"supported: {_SUPPORTED_TOKENIZERS}",
        ) from None


def merge_scores(data: dict[str, Any]) -> dict[str | None, float]:
    """Token text -> score for a SentencePiece-style BPE ``tokenizer.json``: ``-rank`` of the
    first merge that makes the token, so a higher score is an earlier merge (what llama.cpp's
    SentencePiece tokenizer and transformers' GGUF reader order merges by). Tokens no merge
    makes (characters, bytes, special tokens) score below every merge: key None."""
    merges = data["model"].get("merges") or []
    scores: dict[str | None, float] = {}
    for rank, merge in enumerate(merges):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        scores.setdefault(left + right, -float(rank))
    scores[None] = -float(len(merges))
    return scores
