"""``ftx plugins`` and ``ftx plugins show NAME``: what is installed, and one plugin's options.

Listing loads each plugin's entry-point module only (cheap by contract), never torch.
"""

from __future__ import annotations

import json
from typing import Any

import click


@click.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins — methods (what trains), objectives (what a run learns from) and
    rewards (what GRPO-style objectives score completions with) — and whether they load."""
    if ctx.invoked_subcommand is not None:
        return
    from ftx.plugins import discover
    from ftx.rewards import discover_rewards

    found = discover() + discover_rewards()
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in found], indent=2))
        return
    print_plugins(found)


@plugins_cmd.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_show_cmd(name: str, as_json: bool) -> None:
    """Show a method's or an objective's hooks and options, or what a reward scores."""
    from ftx.plugins import call_first, discover, manager_for
    from ftx.rewards import discover_rewards

    rewards = {p.name: p for p in discover_rewards()}
    found = {p.name: p for p in discover()}
    if name not in found and name in rewards:
        print_reward(rewards[name], as_json=as_json)
        return
    info = found.get(name)
    if info is None:
        from ftx.errors import BadInput
        from ftx.options import did_you_mean

        known = [*found, *rewards]
        raise BadInput(
            f"unknown plugin '{name}'{did_you_mean(name, known)}; installed: "
            + "; ".join(
                f"{kind}s {', '.join(sorted(n for n, p in found.items() if p.kind == kind))}"
                for kind in ("method", "objective")
            )
            + f"; rewards {', '.join(sorted(rewards))}",
            hint="`ftx plugins` lists them all",
        )
    if not info.ok:
        from ftx.plugins import get_plugin

        get_plugin(name, list(found.values()), kind=info.kind)  # raises why it cannot load
    hook = "method_options" if info.kind == "method" else "objective_options"
    pm = manager_for(info, defaults=False)
    options, _ = call_first(pm, hook)
    objective = info.name if info.kind == "objective" else "supervised"
    defaults, why = training_defaults(pm, objective)
    if as_json:
        click.echo(
            json.dumps(
                {
                    **info.as_dict(),
                    "options": [
                        {
                            "name": o.name,
                            "type": o.describe_type(),
                            "default": o.default,
                            "help": o.help,
                            "choices": list(o.choices) if o.choices else None,
                            "range": o.describe_range() or None,
                        }
                        for o in options or []
                    ],
                    "train_defaults": {"objective": objective, "on_cpu": defaults, "why": why},
                },
                indent=2,
                default=str,
            )
        )
        return
    print_plugin_detail(info, options or [], (objective, defaults, why))


def training_defaults(pm: Any, objective: str) -> tuple[dict[str, Any] | None, str | None]:
    """What the plugin's ``train_defaults`` hook answers for ``objective`` on a CPU, and its
    docstring (where a plugin states the evidence for its defaults); ``(None, None)`` when it
    does not implement the hook."""
    import inspect

    from ftx.context import DeviceInfo
    from ftx.plugins import merged_train_defaults

    impls = pm.hook.train_defaults.get_hookimpls()
    if not impls:
        return None, None
    device = DeviceInfo(kind="cpu", bf16=False, count=0, name="CPU")
    try:  # a third-party hook that fails here must not break `plugins show`
        merged = merged_train_defaults(pm, device, objective)
    except Exception as exc:
        return None, f"train_defaults failed on a CPU: {exc}"
    docs = [inspect.getdoc(impl.function) for impl in impls]
    return merged or None, "\n".join(d for d in docs if d) or None


def print_plugins(plugins: list[Any]) -> None:
    """The ``ftx plugins`` table: name, distribution, version, status, hooks."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="ftx plugins: methods (--plugin), objectives (--objective), rewards "
        "(objective.rewards)"
    )
    for col in ("name", "kind", "distribution", "version", "status", "hooks"):
        table.add_column(col)
    order = {"method": 0, "objective": 1}
    for p in sorted(plugins, key=lambda p: (order.get(p.kind, 2), p.name)):
        status = "[green]ok[/]" if p.ok else f"[red]{p.status}[/]"
        hooks = ", ".join(p.hooks) if p.kind != "reward" else p.module
        table.add_row(p.name, p.kind, p.distribution, p.version, status, hooks)
    if not plugins:
        table.caption = "none installed: pip install ftx-fft ftx-sft ftx-qlora"
    Console().print(table)


def print_reward(info: Any, *, as_json: bool) -> None:
    """``ftx plugins show REWARD``: where it comes from and its docstring."""
    import inspect

    doc = inspect.getdoc(info.obj) if info.ok else None
    if as_json:
        click.echo(json.dumps({**info.as_dict(), "doc": doc}, indent=2))
        return
    click.echo(f"{info.name} — reward — {info.distribution} {info.version} ({info.module})")
    click.echo(doc if info.ok else f"does not load: {info.status}")
    click.echo("use: --set 'objective.rewards=[" + info.name + "]' with --objective grpo")


def print_plugin_detail(info: Any, options: list[Any], trained: tuple = ("", None, None)) -> None:
    """``ftx plugins show``: the plugin's hooks, its options with defaults and help, then
    ``trained``: ``(objective, the training defaults it sets for it on a CPU, why)``."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    section = "method" if info.kind == "method" else "objective"
    console.print(
        f"[bold]{info.name}[/] — {info.kind} — {info.distribution} {info.version} ({info.module})"
    )
    console.print(f"hooks: {', '.join(info.hooks) or 'none'} (core defaults answer the rest)")
    table = Table(
        title=f"{section} options (config section `{section}:` / --set {section}.KEY=VALUE)"
    )
    for col in ("option", "type", "default", "help"):
        table.add_column(col)
    for o in options:
        extra = f" [dim](one of: {', '.join(map(str, o.choices))})[/]" if o.choices else ""
        if o.describe_range():
            extra += f" [dim](valid: {o.describe_range()})[/]"
        table.add_row(
            o.name,
            o.describe_type(),
            repr(o.default) if o.default != "auto" else "auto",
            f"{o.help}{extra}",
        )
    if not options:
        table.caption = "this plugin declares no options"
    console.print(table)
    objective, defaults, why = trained
    if defaults:
        shown = ", ".join(f"{k}={v}" for k, v in defaults.items())
        console.print(f"[bold]training defaults[/] ({objective}, CPU; --set wins): {shown}")
    if why:  # a docstring's paragraphs, each reflowed to the terminal's width
        for paragraph in why.split("\n\n"):
            console.print(" ".join(paragraph.split()), markup=False)


COMMANDS = [plugins_cmd]
