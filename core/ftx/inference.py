"""Loading a trained artifact for use, and batched greedy generation.

``RUN_OR_MODEL`` arguments of ``ftx generate/eval/chat`` resolve here: a run directory (its
``model/``), a model directory (``config.json``), a PEFT adapter directory
(``adapter_config.json``, loaded on its base model), or a ``.gguf`` file (dequantised once
into ftx's cache by :func:`ftx.models.convert_gguf`, as ``--model FILE.gguf`` is for training:
an exported GGUF is scored with the same commands as the run it came from).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftx.errors import BadInput


@dataclass
class Loaded:
    """A model ready for inference, its tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    source: str


def resolve_artifact(path: str | Path) -> tuple[Path, str]:
    """Return ``(path, kind)`` with kind ``model``, ``adapter`` or ``gguf`` (the file itself:
    nothing is converted here); BadInput otherwise."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"not found: {path}", hint="pass a run directory or a model directory")
    if path.is_file() and path.suffix == ".gguf":
        from ftx.models import check_model_spec

        check_model_spec(str(path))
        return path, "gguf"
    if (path / "summary.json").is_file() or (path / "config.yaml").is_file():
        if (path / "model" / "config.json").is_file():
            return path / "model", "model"
        status = _run_status(path)
        raise BadInput(
            f"run {path} has no model/ (status: {status}); only a finished run has one",
            hint=f"resume it with: ftx run --resume --output {path}",
        )
    if (path / "config.json").is_file():
        return path, "model"
    if (path / "adapter_config.json").is_file():
        return path, "adapter"
    raise BadInput(
        f"{path} is neither a run, a model directory, an adapter directory nor a .gguf file"
    )


def _run_status(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "summary.json").read_text()).get("status", "unknown")
    except (OSError, ValueError):
        return "unknown"


def load_for_inference(path: str | Path, *, dtype: str = "float32") -> Loaded:
    """Load a model (or base + adapter) and its tokenizer in eval mode with the KV cache on."""
    from ftx.quiet import quiet_libraries

    quiet_libraries()
    from transformers import AutoModelForCausalLM

    from ftx.loading import torch_dtype
    from ftx.models import load_tokenizer

    directory, kind = resolve_artifact(path)
    if kind == "gguf":
        from ftx.models import convert_gguf

        directory = convert_gguf(directory)
    if kind == "adapter":
        from peft import PeftModel

        base = json.loads((directory / "adapter_config.json").read_text())[
            "base_model_name_or_path"
        ]
        model = AutoModelForCausalLM.from_pretrained(
            base, dtype=torch_dtype(dtype), local_files_only=True
        )
        model = PeftModel.from_pretrained(model, str(directory), local_files_only=True)
        tok_dir = directory if (directory / "tokenizer_config.json").is_file() else Path(base)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            str(directory), dtype=torch_dtype(dtype), local_files_only=True
        )
        tok_dir = directory
    model.eval()
    model.config.use_cache = True
    # No global torch.set_grad_enabled(False): it would outlive the call (an in-process caller,
    # a notebook, the next test). generate() and ftx's scoring run under no_grad themselves.
    source = str(path) if kind == "gguf" else str(directory)
    return Loaded(model=model, tokenizer=load_tokenizer(tok_dir), source=source)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: eos plus ChatML's ``<|im_end|>`` when present."""
    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "</s>"):
        if token in vocab:
            ids.add(vocab[token])
    return sorted(i for i in ids if i is not None)


def check_generation_settings(
    max_new_tokens: int, *, temperature: float = 1.0, top_p: float = 1.0
) -> None:
    """BadInput unless ``max_new_tokens`` ≥ 1, ``temperature`` > 0 and 0 < ``top_p`` ≤ 1 (what
    ``generate`` accepts); the commands and the Python API check before loading a model."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise BadInput(f"max_new_tokens={max_new_tokens!r}: expected a whole number ≥ 1")
    if max_new_tokens < 1:
        raise BadInput(f"--max-new-tokens {max_new_tokens}: must be at least 1", hint="e.g. 64")
    if not temperature > 0:
        raise BadInput(f"--temperature {temperature}: must be above 0", hint="e.g. 0.7")
    if not 0 < top_p <= 1:
        raise BadInput(f"--top-p {top_p}: must be above 0 and at most 1", hint="e.g. 0.9")


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> list[str]:
    """Complete each prompt (token ids); return the decoded new text, special tokens removed.

    Greedy by default. Prompts are left-padded in batches sorted by length (so padding is
    minimal) and returned in the original order. Generation stops at the end-of-turn token.
    """
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stops = stop_token_ids(tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    sampling = {"temperature": temperature, "top_p": top_p} if do_sample else {}
    check_generation_settings(max_new_tokens, **sampling)  # greedy ignores the other two
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in idx)
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids = prompts[i]
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=mask.to(model.device),
                max_new_tokens=max_new_tokens,
                eos_token_id=stops,
                pad_token_id=pad_id,
                do_sample=do_sample,
                **sampling,
            )
        for row, i in enumerate(idx):
            outputs[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True)
    return outputs
