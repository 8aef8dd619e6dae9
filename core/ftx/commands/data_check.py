"""``ftx data check PATH``: what a data file holds and what training will see.

Conversations get the supervised numbers; preference pairs and KTO rows (recognised from the
first row, or named by ``--format``) get pairs, prompt and answer token lengths, % truncated,
identical chosen/rejected pairs and, for KTO, the label balance.

The data are read and validated before any tokenizer is loaded, so a bad file fails fast with
``error: <file>, <line/row>: <problem>`` on stderr and exit code 2. Data that ``ftx run`` would
refuse because no row has a trained token left also exits 2, after the report. Importing this
module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ftx.errors import BadInput

DATA_HELP = "Inspect and validate training data."


@click.group("data", help=DATA_HELP)
def data() -> None:
    """``ftx data ...`` commands."""


@data.command("check")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--model", "-m", default=None, help="Model whose tokenizer to use (default: demo).")
@click.option(
    "--max-length",
    type=int,
    default=None,
    help="Tokens per example; longer rows are truncated (default: 512, at least 8, as "
    "data.max_length for ftx run).",
)
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    help="auto | vicuna | openai | alpaca | prompt_completion | text | preference | "
    "preference_implicit | sharegpt_preference | kto | prompts",
)
@click.option(
    "--template",
    default="auto",
    show_default=True,
    help="auto (the tokenizer's chat template) | chat_template | vicuna_v1.1 | chatml",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def check(
    path: str, model: str | None, max_length: int | None, fmt: str, template: str, as_json: bool
) -> None:
    """Detected format, rows, turns, token lengths, % truncated and % of tokens trained.

    Preference data: pairs, prompt/answer token lengths, % truncated, identical chosen/rejected
    pairs; KTO data: the label balance too. Prompt rows (GRPO): prompt token lengths and the
    columns the rewards receive.
    """
    from ftx.data import DEFAULT_MAX_LENGTH
    from ftx.data import check as run_check

    try:
        _check_max_length(max_length)
        report = run_check(
            path,
            model=model,
            max_length=max_length or DEFAULT_MAX_LENGTH,
            fmt=fmt,
            template=template,
        )
    except BadInput as err:
        _fail(err, as_json=as_json)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)
    if report["dropped"] >= report["rows"]:  # `ftx run` would refuse this data (exit 2)
        _fail(
            BadInput(
                f"{path}: every row would be dropped: none has a trained token left after "
                f"truncation to {report['max_length']} tokens",
                hint="raise --max-length (data.max_length for ftx run), or check that rows "
                "have assistant turns",
            ),
            as_json=as_json,
        )


def _check_max_length(max_length: int | None) -> None:
    """``--max-length`` within ``data.max_length``'s range (the one ``ftx run`` checks)."""
    from ftx.config.tables import RANGES

    RANGES[("data", "max_length")].check(max_length, where="--max-length")


def print_report(report: dict[str, Any]) -> None:
    """Render `report` (from `ftx.data.data_check_report`) as a table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ftx data check: {report['path']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    if report.get("kind") == "prompts":
        rows = _prompt_rows(report)
    else:
        rows = _preference_rows(report) if "kind" in report else _supervised_rows(report)
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def _supervised_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    tokens, turns = report["tokens"], report["turns"]
    return [
        ("format", report["format"]),
        ("files", str(len(report["files"]))),
        ("model", str(report.get("model", "?"))),
        ("template", report["template"]),
        ("rows", str(report["rows"])),
        ("assistant turns", f"mean {turns['mean']}, max {turns['max']}"),
        ("tokens per row", f"p50 {tokens['p50']}, p95 {tokens['p95']}, max {tokens['max']}"),
        (
            f"truncated at {report['max_length']}",
            f"{report['truncated']} rows ({report['truncated_pct']}%)",
        ),
        ("dropped (nothing left to train)", str(report["dropped"])),
        ("tokens trained", f"{report['trained_pct']}% ({report['trained_tokens']} tokens)"),
    ]


def _prompt_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    tokens, columns = report["tokens"], report["columns"]
    return [
        ("format", "prompts (an answer is generated for each)"),
        ("model", str(report.get("model", "?"))),
        ("template", report["template"]),
        ("prompts", str(report["rows"])),
        ("prompt tokens", f"p50 {tokens['p50']}, p95 {tokens['p95']}, max {tokens['max']}"),
        (f"dropped (no room under {report['max_length']})", str(report["dropped"])),
        (
            "columns the rewards receive",
            ", ".join(f"{k} ({n} rows)" for k, n in columns.items()) or "none",
        ),
    ]


def _preference_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    def spread(lengths: dict[str, Any]) -> str:
        return f"p50 {lengths['p50']}, p95 {lengths['p95']}, max {lengths['max']}"

    rows = [
        ("format", report["format"]),
        ("files", str(len(report["files"]))),
        ("model", str(report.get("model", "?"))),
        ("template", report["template"]),
        (report["kind"], str(report["rows"])),
        *((f"{name} tokens", spread(v)) for name, v in report["tokens"].items()),
        ("prompt + longer answer", spread(report["sequence"])),
        (
            f"truncated at {report['max_length']} ({report['truncation_mode']})",
            f"{report['truncated']} rows ({report['truncated_pct']}%)",
        ),
        ("dropped (no answer token left)", str(report["dropped"])),
    ]
    if "labels" in report:
        labels = report["labels"]
        rows.append(
            (
                "labels",
                f"{labels['desirable']} desirable ({labels['desirable_pct']}%), "
                f"{labels['undesirable']} undesirable",
            )
        )
    else:
        shown = ", ".join(report["identical_sources"][:3])
        rows.append(
            (
                "identical chosen/rejected",
                f"{report['identical']} pairs ({report['identical_pct']}%)"
                + (f": {shown}" if shown else ""),
            )
        )
    return rows


def _fail(err: BadInput, *, as_json: bool = False) -> None:
    """Exit 2 with ``err``: on stderr as ftx prints errors, or with ``--json`` as one JSON
    object ``{"error": …, "hint": …}`` on stdout, what a script reads."""
    from rich.console import Console
    from rich.markup import escape

    if as_json:
        click.echo(json.dumps({"error": err.message, "hint": err.hint}, indent=2))
        raise click.exceptions.Exit(2)

    console = Console(stderr=True)
    console.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
    if err.hint:
        console.print(f"  [dim]hint:[/] {escape(err.hint)}", highlight=False, soft_wrap=True)
    raise click.exceptions.Exit(2)
