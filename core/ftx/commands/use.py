"""Using a trained model: ``ftx generate``, ``ftx eval``, ``ftx chat``, ``ftx export``.

``RUN_OR_MODEL`` is a run directory (its ``model/``), a model directory, an adapter directory
or a ``.gguf`` file (an ``ftx export --format gguf``, or any GGUF transformers reads).
Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ftx.errors import BadInput
from ftx.gguf_export import QUANTS

run_or_model = click.argument("run_or_model", type=click.Path())


@click.command("generate")
@run_or_model
@click.option("--data", required=True, type=click.Path(), help="Conversations to complete.")
@click.option("--out", type=click.Path(), help="Write JSONL here (default: stdout).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option("--sample", is_flag=True, help="Sample instead of greedy decoding.")
@click.option("--temperature", default=0.7, show_default=True)
@click.option("--top-p", default=0.9, show_default=True)
@click.option("--format", "fmt", default="auto", help="Data format (default: detect).")
@click.option("--limit", type=int, help="Only the first N conversations.")
def generate_cmd(
    run_or_model, data, out, overwrite, max_new_tokens, sample, temperature, top_p, fmt, limit
):
    """Generate the last assistant turn of every conversation in --data."""
    from ftx.evaluate import generations, load_eval_rows
    from ftx.inference import check_generation_settings, load_for_inference, resolve_artifact

    if out and Path(out).exists() and not overwrite:
        raise BadInput(
            f"--out {out} already exists", hint="choose another --out, or pass --overwrite"
        )
    sampling = {"temperature": temperature, "top_p": top_p} if sample else {}
    check_generation_settings(max_new_tokens, **sampling)
    resolve_artifact(run_or_model)
    convs = load_eval_rows(data, fmt, limit)
    loaded = load_for_inference(run_or_model)
    rows = generations(
        loaded.model,
        loaded.tokenizer,
        convs,
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        **sampling,
    )
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out:
        from ftx.artifacts import write_text

        write_text(out, text)
        click.echo(f"wrote {len(rows)} rows to {out}", err=True)
    else:
        sys.stdout.write(text)


@click.command("eval")
@run_or_model
@click.option(
    "--data",
    type=click.Path(),
    help="Held-out conversations (preference pairs for --metric pairwise); not for "
    "retention/drift, which use the general questions and text shipped with ftx.",
)
@click.option(
    "--metric",
    type=click.Choice(["exact", "json", "loss", "pairwise", "retention", "drift"]),
    default="exact",
    show_default=True,
    help="pairwise: share of preference pairs whose chosen answer the model finds likelier. "
    "retention: share of the general questions the base model answers right that this model "
    "still does; drift: mean KL(p_base || p_model) per token on general text, in nats.",
)
@click.option(
    "--base",
    type=click.Path(),
    help="retention/drift: the model this one was fine-tuned from (default: the run's base, "
    "or an adapter's; required for a bare model directory or .gguf file).",
)
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option("--format", "fmt", default="auto", help="Data format (default: detect).")
@click.option("--limit", type=int, help="Only the first N conversations.")
def eval_cmd(run_or_model, data, metric, base, max_new_tokens, fmt, limit):
    """Score a run or model on --data, or its forgetting (--metric retention|drift) against
    its base; one JSON object on stdout, a table on stderr."""
    from ftx.evaluate import check_limit, evaluation
    from ftx.forgetting.measure import METRICS as FORGETTING
    from ftx.inference import check_generation_settings, load_for_inference, resolve_artifact

    check_generation_settings(max_new_tokens)
    check_limit(limit)
    if metric in FORGETTING:
        if limit is not None:
            raise BadInput(
                f"--limit does not apply to --metric {metric}: it uses every general question "
                "and text shipped with ftx",
                hint="drop --limit",
            )
        if data is not None:
            raise BadInput(
                f"--data does not apply to --metric {metric}: it measures against the base "
                "model on the general questions and text shipped with ftx",
                hint="drop --data, or choose --metric exact|json|loss|pairwise",
            )
        from ftx.forgetting.evaluation import forgetting_evaluation

        _report_eval(forgetting_evaluation(run_or_model, metric, base))
        return
    if base is not None:
        raise BadInput(
            f"--base applies to --metric retention|drift only, not {metric}",
            hint="drop --base",
        )
    if data is None:
        raise BadInput(
            f"--metric {metric} needs --data (the held-out file to score)",
            hint=f"ftx eval {run_or_model} --data held.jsonl --metric {metric}",
        )
    resolve_artifact(run_or_model)
    result = evaluation(
        lambda: load_for_inference(run_or_model), data, metric, max_new_tokens, fmt, limit
    )
    _report_eval(result)


def _report_eval(result: dict) -> None:
    """The table on stderr, the JSON object (without the examples) on stdout."""
    _print_eval_table(result)
    click.echo(json.dumps({k: v for k, v in result.items() if k != "examples"}))


def _print_eval_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ftx eval — {result['metric']}")
    table.add_column("metric")
    table.add_column("score")
    table.add_column("n")
    score = result["score"]
    table.add_row(result["metric"], "–" if score is None else f"{score:.4f}", str(result["n"]))
    Console(stderr=True).print(table)
    if "base" in result:
        from ftx.report import forgetting_line

        Console(stderr=True).print(
            f"[dim]against[/] {result['base']}: {forgetting_line(result)}", highlight=False
        )
        return
    if "mean_margin" in result:
        Console(stderr=True).print(
            f"[dim]mean margin[/] {result['mean_margin']:.3f} nats "
            "(log p(chosen) - log p(rejected))",
            highlight=False,
        )
        return
    for ex in result.get("examples", [])[:3]:
        Console(stderr=True).print(
            f"[dim]ref[/] {ex['reference']!r}  [dim]out[/] {ex['output']!r}", highlight=False
        )


@click.command("chat")
@run_or_model
@click.option("--system", default=None, help="System prompt.")
@click.option("--max-new-tokens", default=256, show_default=True)
def chat_cmd(run_or_model, system, max_new_tokens):
    """Chat with a run or model in the terminal (streaming; /reset, /exit)."""
    from ftx.chat import chat_loop
    from ftx.inference import check_generation_settings, load_for_inference, resolve_artifact

    check_generation_settings(max_new_tokens)
    resolve_artifact(run_or_model)
    loaded = load_for_inference(run_or_model)
    chat_loop(loaded, system=system, max_new_tokens=max_new_tokens)


@click.command("export")
@click.argument("run", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["adapter", "merged", "full", "gguf"]),
    default="full",
    show_default=True,
    help="gguf: one .gguf for llama.cpp plus an Ollama Modelfile beside it.",
)
@click.option(
    "--quant",
    type=click.Choice(QUANTS, case_sensitive=False),
    default=None,
    help="GGUF tensor type (--format gguf; default f16). 1-D tensors stay f32, tensors whose "
    "rows do not divide into 32 stay f16.",
)
@click.option(
    "--dtype",
    type=click.Choice(["bf16", "fp16", "fp32"]),
    default=None,
    help="Cast floating-point weights (default: keep the checkpoint's own dtype).",
)
@click.option(
    "--out",
    type=click.Path(),
    help="Target directory (default RUN/export-FMT[-DTYPE]); for gguf a .gguf file (default "
    "RUN/export-gguf-QUANT/RUNNAME-QUANT.gguf).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing target.")
def export_cmd(run, fmt, quant, dtype, out, overwrite):
    """(Re)write a finished run's model artifact, atomically, one tensor at a time."""
    from ftx.artifact_formats import export_artifact

    written = export_artifact(
        Path(run),
        fmt,
        dtype=dtype,
        quant=quant,
        out=Path(out) if out else None,
        overwrite=overwrite,
    )
    click.echo(str(written))


COMMANDS = [generate_cmd, eval_cmd, chat_cmd, export_cmd]
