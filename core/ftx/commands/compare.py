"""``ftx compare``: the same data and budget through several method plugins, one report.

Everything is checked before the first run starts: the plugin names, the output directory, which
``--set`` goes to which run (:func:`ftx.comparison.route_sets`) and each run's whole request.
"""

from __future__ import annotations

import click

from ftx.commands import stderr_console

SET_HELP = (
    "Override one config value (repeatable): model.*, data.*, train.* go to every run; "
    "method.KEY to each compared plugin that declares KEY; PLUGIN:section.key=value to that "
    "plugin's run only, e.g. qlora:method.r=8."
)


@click.command("compare")
@click.option("--plugins", "plugin_list", required=True, help="Comma list, e.g. fft,sft,qlora.")
@click.option("--config", "-c", "config_file", type=click.Path(), help="YAML run config.")
@click.option(
    "--objective",
    help="What every run learns from (default: supervised; dpo, orpo, simpo, kto …); the report "
    "shows its held-out metric.",
)
@click.option("--model", "-m", help="Model (default: demo).")
@click.option("--data", "-d", help="Training data (default: demo data).")
@click.option("--output", "-o", type=click.Path(), help="Directory (default runs/compare-<time>).")
@click.option("--set", "sets", multiple=True, metavar="[PLUGIN:]SECTION.KEY=VALUE", help=SET_HELP)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output directory.")
def compare_cmd(plugin_list, objective, config_file, model, data, output, sets, overwrite):
    """Run the same data and budget through several methods and compare them."""
    from ftx import comparison

    comparison.compare(
        comparison.parse_plugins(plugin_list),
        list(sets),
        objective=objective,
        config_file=config_file,
        model=model,
        data=data,
        output=output,
        overwrite=overwrite,
        console=stderr_console(),
    )


COMMANDS = [compare_cmd]
