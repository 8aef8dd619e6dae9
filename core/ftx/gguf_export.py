"""``ftx export RUN --format gguf``: one ``.gguf`` for llama.cpp (and Ollama, LM Studio) from a
finished run's merged ``model/``, plus an Ollama ``Modelfile`` beside it.

Written with the ``gguf`` package (its writer, tensor-name maps, quantisers and special-vocab
helper; no llama.cpp needed): architecture and hyper-parameters (:mod:`ftx.gguf_arch`), the
tokenizer, end-of-turn id and chat template (:mod:`ftx.gguf_vocab`), and the weights streamed
one tensor at a time from ``model/`` (:func:`ftx.merging.merged_tensors`): the header is
written from the safetensors headers first, then each tensor is converted, quantised and
appended, so memory holds about one tensor.

Quantisation (``--quant``): ``f32``, ``f16``, ``bf16``, ``q8_0``, ``q5_1``, ``q5_0``,
``q4_1``, ``q4_0`` (what the installed ``gguf`` can write; k-quants need llama.cpp's
``llama-quantize`` on the f16 file). 1-D tensors (norms, biases) stay F32; a 2-D tensor whose
rows do not divide into the type's 32-value blocks stays F16.

Everything :func:`check_gguf_export` can know is checked before a byte is written (exit 2); the
file is written under a temporary name and renamed, so a failed or interrupted export (a full
disk: exit 1) never leaves a ``.gguf`` under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftx.errors import BadInput, RunFailed

QUANTS = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0")
"""``--quant`` values, best quality first."""

MODELFILE = "Modelfile"


@dataclass
class GgufPlan:
    """A checked GGUF export: where from, where to, and what the checks read."""

    run: Path
    model_dir: Path
    quant: str
    target: Path
    config: dict[str, Any]
    source: Path | None

    @property
    def modelfile(self) -> Path:
        return self.target.parent / MODELFILE


def default_target(run: Path, quant: str) -> Path:
    """``RUN/export-gguf-QUANT/RUNNAME-QUANT.gguf``."""
    return run / f"export-gguf-{quant}" / f"{run.resolve().name}-{quant}.gguf"


def check_gguf_export(
    run: Path, quant: str, target: Path | None = None, *, overwrite: bool = False
) -> GgufPlan:
    """Every check that needs no weights (BadInput, exit 2): a finished run, a known quant
    type, a ``.gguf`` target that does not exist (or ``overwrite``), a supported architecture
    and tokenizer."""
    from ftx.artifact_formats import check_run
    from ftx.gguf_arch import gguf_architecture
    from ftx.gguf_vocab import check_tokenizer

    check_run(run)
    quant = quant.lower() if isinstance(quant, str) else quant  # Q8_0, as llama.cpp writes it
    if quant not in QUANTS:
        raise BadInput(
            f"--quant {quant!r} is not a GGUF type ftx writes",
            hint=f"choose one of {', '.join(QUANTS)}; for k-quants (q4_k_m, …) export f16 and "
            "run llama.cpp's llama-quantize on it",
        )
    target = Path(target) if target is not None else default_target(run, quant)
    if target.suffix != ".gguf":
        raise BadInput(f"--out {target} must end in .gguf")
    for path in (target, target.parent / MODELFILE):
        if path.exists() and not overwrite:
            raise BadInput(f"{path} already exists", hint="pass --overwrite or choose --out")
    model_dir = run / "model"
    config = json.loads((model_dir / "config.json").read_text())
    gguf_architecture(config)
    source = _source_of(run, model_dir)
    check_tokenizer(model_dir, source)
    return GgufPlan(run, model_dir, quant, target, config, source)


def check_model_for_gguf(spec: str | None) -> None:
    """For a run with ``export.gguf`` set, before anything is loaded: BadInput unless the
    model ``spec`` (as ``--model`` takes it) has an architecture and a tokenizer ftx can write
    as GGUF. Reads the config and, for a model not from a GGUF, the tokenizer."""
    from ftx.gguf_arch import gguf_architecture
    from ftx.gguf_vocab import check_tokenizer, source_gguf
    from ftx.models import is_demo, read_model_config, resolve_model

    config, _ = read_model_config(spec)
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    try:
        gguf_architecture(data)
    except BadInput as exc:
        raise BadInput(f"export.gguf: {exc.message}", hint=exc.hint) from None
    if is_demo(spec) or str(spec).endswith(".gguf"):
        return  # the tokenizer is copied from that file
    directory = resolve_model(spec)
    check_tokenizer(directory, source_gguf([directory], spec))


def _source_of(run: Path, model_dir: Path) -> Path | None:
    from ftx.gguf_vocab import source_gguf

    dirs = [model_dir]
    adapter = run / "adapter" / "adapter_config.json"
    if adapter.is_file():
        dirs.insert(0, Path(json.loads(adapter.read_text())["base_model_name_or_path"]))
    spec = None
    config = run / "config.yaml"
    if config.is_file():
        import yaml

        spec = ((yaml.safe_load(config.read_text()) or {}).get("model") or {}).get("name")
    return source_gguf(dirs, spec)


def run_system_prompt(run: Path) -> str | None:
    """The system prompt of a run: the system message every training conversation starts
    with, when they all share one; None otherwise (or when the data is gone or not chat)."""
    config = run / "config.yaml"
    if not config.is_file():
        return None
    import yaml

    data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
    path = data.get("path")
    if not path or not Path(path).exists():
        return None  # the demo data has no system prompt
    from ftx.data import load_conversations

    try:
        convs = load_conversations(path, data.get("format") or "auto")
    except BadInput:
        return None
    firsts = {
        c.messages[0]["content"] if c.messages and c.messages[0]["role"] == "system" else None
        for c in convs
    }
    return firsts.pop() if len(firsts) == 1 else None


def export_gguf(plan: GgufPlan, *, system: str | None = None) -> Path:
    """Write ``plan.target`` and the Modelfile beside it (with ``system``, default the run's
    own: :func:`run_system_prompt`); return the ``.gguf`` path."""
    from ftx.artifacts import write_text
    from ftx.gguf_vocab import end_of_turn
    from ftx.models import load_tokenizer
    from ftx.ollama import modelfile

    tokenizer = load_tokenizer(plan.model_dir)
    plan.target.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.target.with_name(f".tmp-{plan.target.name}-{os.getpid()}")
    try:
        _write(plan, tokenizer, tmp)
        os.replace(tmp, plan.target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _raise_if_disk_full(exc, plan.target)
        raise
    turn = end_of_turn(tokenizer)
    system = system if system is not None else run_system_prompt(plan.run)
    text = modelfile(plan.target.name, tokenizer.chat_template, turn and turn[1], system)
    write_text(plan.modelfile, text)
    return plan.target


def _raise_if_disk_full(exc: BaseException, target: Path) -> None:
    from ftx.runner.failures import disk_full_cause

    cause = disk_full_cause(exc, target.parent)
    if cause is not None:
        raise RunFailed(
            f"could not write {target}: {cause}; nothing was left under that name "
            "(free some space, or choose --out on another disk, and export again)"
        ) from exc


def tensor_type(quant: str, shape: tuple[int, ...]) -> Any:
    """The GGML type a tensor of ``shape`` is written in under ``--quant quant``."""
    import gguf

    types = gguf.GGMLQuantizationType
    if len(shape) < 2:
        return types.F32
    qtype = types[quant.upper()]
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if shape[-1] % block:
        return types.F16
    return qtype


def _file_type(quant: str) -> Any:
    import gguf

    if quant == "f32":
        return gguf.LlamaFileType.ALL_F32
    return gguf.LlamaFileType[f"MOSTLY_{quant.upper()}"]


def _write(plan: GgufPlan, tokenizer: Any, path: Path) -> None:
    import gguf
    import numpy as np

    from ftx.gguf_arch import TensorNames, add_hyperparameters, extra_tensors
    from ftx.gguf_vocab import add_tokenizer
    from ftx.merging import merged_tensors
    from ftx.tensor_stream import tensor_specs

    names = TensorNames(plan.config)
    writer = gguf.GGUFWriter(None, names.arch)
    _add_general(writer, plan)
    add_hyperparameters(writer, plan.config)
    add_tokenizer(writer, plan.model_dir, tokenizer, plan.source, plan.config["vocab_size"])

    extras = extra_tensors(plan.config)
    layout: dict[str, tuple[str, Any]] = {}
    for name, array in extras.items():
        writer.add_tensor_info(name, array.shape, array.dtype, array.nbytes)
    for spec in tensor_specs(plan.model_dir):
        gguf_name = names.gguf_name(spec.name)
        if gguf_name is None:
            continue
        qtype = tensor_type(plan.quant, spec.shape)
        layout[spec.name] = (gguf_name, qtype)
        if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            dtype = np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.float16
            nbytes = int(np.prod(spec.shape)) * np.dtype(dtype).itemsize
            writer.add_tensor_info(gguf_name, spec.shape, np.dtype(dtype), nbytes)
        else:
            shape = gguf.quant_shape_to_byte_shape(spec.shape, qtype)
            nbytes = int(np.prod(shape))
            writer.add_tensor_info(gguf_name, shape, np.dtype(np.uint8), nbytes, raw_dtype=qtype)

    writer.write_header_to_file(path)
    try:
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for array in extras.values():
            writer.write_tensor_data(array)
        for name, tensor in merged_tensors(plan.model_dir):
            if name not in layout:
                continue
            gguf_name, qtype = layout[name]
            array = names.prepare(gguf_name, tensor.float().numpy())
            writer.write_tensor_data(gguf.quants.quantize(array, qtype))
            del tensor, array
        writer.flush()
        assert writer.fout is not None
        for fout in writer.fout:
            os.fsync(fout.fileno())
    finally:
        writer.close()


_GENERAL_FROM_SOURCE = (
    "general.basename",
    "general.organization",
    "general.license",
    "general.languages",
    "general.size_label",
)


def _add_general(writer: Any, plan: GgufPlan) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(plan.run.resolve().name)
    writer.add_file_type(_file_type(plan.quant))
    if plan.quant not in ("f32", "f16"):
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if plan.source is None:
        return
    from ftx.gguf_vocab import copy_fields

    fields = gguf.GGUFReader(str(plan.source)).fields
    copy_fields(writer, {key: fields[key] for key in _GENERAL_FROM_SOURCE if key in fields})
