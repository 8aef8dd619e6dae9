"""What the user asked for (`RunRequest`) and what validation made of it (`PreparedRun`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    from ftx.config import ResolvedConfig
    from ftx.context import DeviceInfo, ObjectiveTraits
    from ftx.plugins import PluginInfo
    from ftx.runner.rundir import RunDirectory


@dataclass
class RunRequest:
    """What the user asked for on the command line (or through the Python API).

    ``follower``: this process launches the ranks of a node other than node rank 0 in a
    multi-node run; node rank 0 owns the run directory, so its state is not this one's to
    judge (an existing directory is not refused here). ``base_scores``: a file of base-model
    scores shared with other runs (:mod:`ftx.runner.base_scores`; ``ftx compare`` sets it)."""

    plugin: str | None
    objective: str | None = None
    config_file: str | None = None
    model: str | None = None
    data: str | None = None
    output: str | None = None
    sets: list[str] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False
    force: bool = False
    follower: bool = False
    base_scores: str | None = None


@dataclass
class PreparedRun:
    """A validated run, ready to execute: every decision that can fail because of the user has
    been made (method, objective, config, device, dtype, attention, data rows, output
    directory). ``train_rows``/``eval_rows`` are what the objective's ``load_rows`` returned."""

    request: RunRequest
    plugin: PluginInfo
    objective: PluginInfo
    traits: ObjectiveTraits
    pm: pluggy.PluginManager
    device: DeviceInfo
    resolved: ResolvedConfig
    output_dir: Path
    train_rows: list[Any]
    eval_rows: list[Any]
    data_files: dict[str, str]
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    resume_from: Path | None = None
    prior_summary: dict[str, Any] = field(default_factory=dict)
    run_dir: RunDirectory | None = None
    task_rows: list[Any] = field(default_factory=list)
    task_pm: pluggy.PluginManager | None = None
