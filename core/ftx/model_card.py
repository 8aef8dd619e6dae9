"""Model cards: ``model/README.md`` and ``adapter/README.md`` in the Hugging Face format.

YAML front matter (``base_model``, ``library_name``, ``pipeline_tag``, ``tags`` with the method
and objective, ``license`` and ``language`` when the base says them), then what the run trained
on (files, hashes, rows), how (method, objective, their options, steps, learning rate), the
held-out score before and after, the loss plot (``loss.png`` beside the card) and how to load it.

``base_model`` is the base's hub id when it can be known, never a cache path: a converted GGUF
keeps its ``general.*`` metadata (:data:`ftx.models.GGUF_SOURCE`; ``base_model.0.repo_url``, or
the organization and the file's name), a hub snapshot its repo id, a model ftx trained the
``base_model`` of its own card. Otherwise the card names the local directory in its text only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

QUANT_SUFFIX = re.compile(r"[.-](q\d\w*|iq\d\w*|f16|f32|bf16)$", re.IGNORECASE)


def base_identity(model_path: Path) -> dict[str, Any]:
    """What the card says of the base: ``base_model`` (a hub id or None), ``license``,
    ``language`` (each when known) and ``source`` (a human-readable origin)."""
    from ftx.models import GGUF_SOURCE

    source = model_path / GGUF_SOURCE
    if source.is_file():
        data = json.loads(source.read_text())
        return gguf_identity(data.get("general") or {}, data.get("gguf_file") or "")
    card = read_front_matter(model_path / "README.md")
    parts = model_path.parts
    if "snapshots" in parts and parts[parts.index("snapshots") - 1].startswith("models--"):
        repo = parts[parts.index("snapshots") - 1].removeprefix("models--").replace("--", "/")
        return {**_known(card), "base_model": repo, "source": f"hub snapshot of {repo}"}
    if card.get("base_model"):  # a model ftx (or anyone with a card) fine-tuned
        return {**_known(card), "base_model": card["base_model"], "source": str(model_path)}
    return {**_known(card), "base_model": None, "source": str(model_path)}


def gguf_identity(general: dict[str, Any], filename: str) -> dict[str, Any]:
    """The base's identity from a GGUF's ``general.*`` metadata (keys without the prefix):
    ``base_model.0.repo_url`` when present, else ``organization/<file name without the
    quantisation suffix>`` (the demo: ``HuggingFaceTB/SmolLM2-135M-Instruct``)."""
    base = None
    url = general.get("base_model.0.repo_url") or general.get("source.repo_url")
    if isinstance(url, str) and "huggingface.co/" in url:
        base = url.split("huggingface.co/", 1)[1].strip("/")
    elif general.get("organization") and filename:
        stem = QUANT_SUFFIX.sub("", Path(filename).name.removesuffix(".gguf"))
        base = f"{general['organization']}/{stem}"
    out: dict[str, Any] = {"base_model": base, "source": f"GGUF {filename} ({general.get('name')})"}
    if general.get("license"):
        out["license"] = general["license"]
    if general.get("languages"):
        out["language"] = list(general["languages"])
    return out


def _known(card: dict[str, Any]) -> dict[str, Any]:
    return {k: card[k] for k in ("license", "language") if card.get(k)}


def read_front_matter(path: Path) -> dict[str, Any]:
    """The YAML front matter of a Markdown file (``{}`` if none or unreadable)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---", 4)
    try:
        data = yaml.safe_load(text[4:end]) if end > 0 else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def write_model_cards(run_dir: Path, summary: dict[str, Any], config: dict[str, Any]) -> list[Path]:
    """Write ``README.md`` (and ``loss.png``) into the run's ``model/`` and ``adapter/``;
    return the cards written."""
    from ftx.artifacts import write_text
    from ftx.report import plot_losses, read_metrics

    base = base_identity(Path(summary["model"]))
    written = []
    for folder, library in (("model", "transformers"), ("adapter", "peft")):
        target = run_dir / folder
        if not target.is_dir():
            continue
        plotted = plot_losses(
            {summary.get("plugin", "run"): read_metrics(run_dir)},
            target / "loss.png",
            f"ftx {summary.get('plugin')} × {summary.get('objective')}",
        )
        text = card_text(summary, config, base, library=library, plotted=plotted)
        write_text(target / "README.md", text)
        written.append(target / "README.md")
    return written


def card_text(
    summary: dict[str, Any],
    config: dict[str, Any],
    base: dict[str, Any],
    *,
    library: str,
    plotted: bool,
) -> str:
    """The card: front matter, then data, training, results, loss plot and usage."""
    import yaml

    method, objective = summary.get("plugin"), summary.get("objective")
    front: dict[str, Any] = {}
    if base.get("base_model"):
        front["base_model"] = base["base_model"]
    front |= {
        "library_name": library,
        "pipeline_tag": "text-generation",
        "tags": ["ftx", f"ftx-{method}", str(method), str(objective), "fine-tuned"],
    }
    for key in ("license", "language"):
        if base.get(key):
            front[key] = base[key]
    name = base.get("base_model") or base.get("source")
    train = config.get("train") or {}
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {name} fine-tuned with ftx ({method} × {objective})",
        "",
        f"Base model: `{name}` ({base.get('source')}). "
        f"Trained by [ftx](https://pypi.org/project/ftx-core/) with the `{method}` method "
        f"under the `{objective}` objective; status {summary.get('status', 'finished')}.",
        "",
        "## Training data",
        "",
        "| file | role | sha256 (first 16) | rows |",
        "|---|---|---|---|",
    ]
    data = summary.get("data") or {}
    rows = {"train": data.get("kept"), "eval": (summary.get("eval_before") or {}).get("n")}
    for role, path in (summary.get("data_files") or {}).items():
        if path:
            digest = (summary.get("data_hashes") or {}).get(role, "–")
            count = rows.get(role) if rows.get(role) is not None else "–"
            lines.append(f"| `{Path(str(path)).name}` | {role} | `{digest}` | {count} |")
    lines += [
        "",
        f"{data.get('tokens', '–')} training tokens ({data.get('trained_tokens', '–')} trained), "
        f"max length {data.get('max_length', '–')}, template `{data.get('template', '–')}`.",
        "",
        "## Training",
        "",
        f"- method: `{method}` ({summary.get('method')}); objective: `{objective}`",
        f"- method options: {_options(config.get('method'))}",
        f"- objective options: {_options(config.get('objective'), skip=('name',))}",
        f"- steps: {summary.get('steps', '–')}, learning rate {train.get('learning_rate', '–')} "
        f"({train.get('lr_scheduler_type', '–')}), batch size "
        f"{train.get('per_device_train_batch_size', '–')} × "
        f"{train.get('gradient_accumulation_steps', 1)} accumulation, seed {train.get('seed')}",
        f"- trainable parameters: {summary.get('trainable_params', '–')} of "
        f"{summary.get('total_params', '–')}; final loss {summary.get('final_loss', '–')}",
        f"- device: {summary.get('device')}, dtype {summary.get('dtype')}, "
        f"{summary.get('tokens_per_s', '–')} tokens/s",
        "",
        "## Held-out results",
        "",
    ]
    before, after = summary.get("eval_before"), summary.get("eval_after")
    if before or after:
        metric = (after or before or {}).get("metric")
        lines += [
            "| metric | before | after | rows |",
            "|---|---|---|---|",
            f"| {metric} | {_score(before)} | {_score(after)} | {(after or before)['n']} |",
        ]
    else:
        lines.append("No held-out data was scored.")
    if plotted:
        lines += ["", "## Training loss", "", "![training loss](loss.png)"]
    gguf = (config.get("export") or {}).get("gguf")
    lines += ["", "## How to use", "", *usage(library, base.get("base_model"), gguf=gguf)]
    return "\n".join(lines) + "\n"


def usage(library: str, base_model: str | None, *, gguf: str | None = None) -> list[str]:
    """Loading snippets: transformers for ``model/``, PEFT for ``adapter/``, then ftx, then
    llama.cpp and Ollama through a GGUF (the one the run wrote when ``gguf``, its
    ``export.gguf`` type, is set; else the command that writes one)."""
    if library == "peft":
        load = [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "",
            'model = AutoPeftModelForCausalLM.from_pretrained("path/to/adapter")',
            f'tokenizer = AutoTokenizer.from_pretrained("{base_model or "path/to/base"}")',
        ]
    else:
        load = [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            'model = AutoModelForCausalLM.from_pretrained("path/to/model")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/model")',
        ]
    return [
        "```python",
        *load,
        "```",
        "",
        "With ftx (the run directory, or this folder):",
        "",
        "```bash",
        "ftx chat RUN_DIR",
        "ftx eval RUN_DIR --data held_out.jsonl",
        "ftx export RUN_DIR --format merged --dtype bf16",
        "```",
        "",
        *gguf_usage(gguf),
    ]


def gguf_usage(quant: str | None) -> list[str]:
    """llama.cpp and Ollama: the run's GGUF (``export.gguf``) or how to write one."""
    folder = f"RUN_DIR/export-gguf-{quant or 'q8_0'}"
    head = (
        [
            f"This run also wrote a {quant} GGUF for llama.cpp and Ollama, with a Modelfile "
            "beside it:"
        ]
        if quant
        else ["As a GGUF for llama.cpp and Ollama (one file, with a Modelfile beside it):"]
    )
    write = [] if quant else ["ftx export RUN_DIR --format gguf --quant q8_0"]
    return [
        *head,
        "",
        "```bash",
        *write,
        f"llama-cli -m {folder}/RUN_NAME-{quant or 'q8_0'}.gguf -cnv",
        f"ollama create my-model -f {folder}/Modelfile && ollama run my-model",
        "```",
    ]


def _options(section: Any, skip: tuple[str, ...] = ()) -> str:
    items = [f"`{k}={v}`" for k, v in (section or {}).items() if k not in skip]
    return ", ".join(items) if items else "defaults"


def _score(ev: dict[str, Any] | None) -> str:
    return "–" if not ev else f"{ev['score']:.3f}"
