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

GRID_HELP = (
    "Run every value of one setting (repeatable: every combination runs), e.g. "
    "train.learning_rate=1e-4,3e-4; method.KEY=… only for the plugins that declare KEY; "
    "PLUGIN:method.KEY=… for that plugin only. Values are typed as --set types them."
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
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="[PLUGIN:]SECTION.KEY=V1,V2,…",
    help=GRID_HELP,
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run every cell this many times, train.seed 42, 43, … (or from --set train.seed); "
    "the report gives each score a 95% t-interval over the seeds.",
)
@click.option(
    "--forgetting/--no-forgetting",
    default=True,
    show_default=True,
    help="Measure forgetting in every run (data.eval_forgetting=true): retention and drift.",
)
@click.option(
    "--gpu-mem",
    default=None,
    metavar="SIZE",
    help="The report says which runs fit a GPU this size (ftx plan), e.g. 16GB.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Set aside what --output holds (this or another compare, other files) and start afresh.",
)
def compare_cmd(
    plugin_list,
    objective,
    config_file,
    model,
    data,
    output,
    sets,
    grid,
    seeds,
    forgetting,
    gpu_mem,
    overwrite,
):
    """Run the same data through several methods (and grid values) and compare them.

    Every plugin runs once per combination of the --grid values that apply to it (a method.KEY
    axis applies to the plugins that declare KEY; the others run once, at their defaults), in
    OUT/<plugin>[/<key=value,…>]. Running the same compare into the same --output again skips
    the finished runs and resumes an interrupted one. The report (compare.md, compare.html)
    shows each run's cost, held-out score, retention and drift, and a recommendation.

    \b
    Example:
      ftx compare --plugins fft,sft,qlora --grid train.learning_rate=1e-4,3e-4,1e-3 \\
        --grid method.r=8,32 --seeds 3 --gpu-mem 16GB --output runs/lr-sweep
    """
    from ftx import comparison
    from ftx.estimates import parse_size

    comparison.compare(
        comparison.parse_plugins(plugin_list),
        list(sets),
        grid=list(grid),
        seeds=seeds,
        forgetting=forgetting,
        gpu_mem=parse_size(gpu_mem) if gpu_mem is not None else None,
        objective=objective,
        config_file=config_file,
        model=model,
        data=data,
        output=output,
        overwrite=overwrite,
        console=stderr_console(),
    )


COMMANDS = [compare_cmd]
