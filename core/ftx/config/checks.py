"""Checks of resolved values: ranges, precision against the device, trackers, data paths, and the
real arguments object built the way the trainer builds it."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftx.config.tables import DATA_PATHS, RANGES, TRACKERS
from ftx.errors import BadInput
from ftx.options import did_you_mean

if TYPE_CHECKING:
    from ftx.config.resolution import ResolvedConfig


def check_ranges(config: dict[str, Any]) -> None:
    """Check every key of :data:`RANGES` present in ``config``; BadInput for the first outside."""
    for (section, key), valid in RANGES.items():
        if key in config.get(section, {}):
            valid.check(config[section][key], where=f"{section}.{key}")


def check_precision(train: dict[str, Any], device: Any) -> None:
    """``train.bf16``/``train.fp16`` against each other and what ``device`` can do."""
    bf16, fp16 = bool(train.get("bf16")), bool(train.get("fp16"))
    if bf16 and fp16:
        raise BadInput(
            "train.bf16 and train.fp16 are both true: mixed precision is one or the other",
            hint="keep one: --set train.fp16=false or --set train.bf16=false",
        )
    if fp16 and device.kind == "cpu":
        instead = "train.bf16=true (this CPU has native bf16)" if device.bf16 else "fp32"
        raise BadInput(
            "train.fp16=true: fp16 mixed precision needs a GPU; this run is on the CPU, "
            "where the trainer would silently train in fp32",
            hint=f"drop train.fp16 (the CPU trains in fp32, or in bf16 where supported); "
            f"here use {instead}",
        )
    if bf16 and device.kind == "cuda" and not device.bf16:
        raise BadInput(
            f"train.bf16=true: this GPU ({device.name}) has no bf16 support",
            hint="use --set train.fp16=true (with train.bf16=false), or leave both unset",
        )


BNB_OPTIMIZERS = frozenset(
    {
        "adamw_bnb_8bit",
        "adamw_8bit",
        "ademamix",
        "ademamix_8bit",
        "lion_8bit",
        "lion_32bit",
        "rmsprop_bnb",
        "rmsprop_bnb_8bit",
        "rmsprop_bnb_32bit",
    }
)
"""The ``train.optim`` names (besides every ``paged_*``) that transformers 5 implements with
bitsandbytes (its ``OptimizerNames``)."""


def check_optimizer_name(optim: str) -> None:
    """``train.optim`` must name an optimizer of the installed transformers (its
    ``OptimizerNames``; imported here, for the callers that build no TrainingArguments, e.g.
    ``ftx plan``)."""
    from transformers.training_args import OptimizerNames

    known = [o.value for o in OptimizerNames]
    if optim not in known:
        raise BadInput(
            f"train.optim={optim}: not an optimizer of the installed transformers"
            f"{did_you_mean(optim, known)}",
            hint="e.g. adamw_torch (the default), adamw_8bit, paged_adamw_8bit (CUDA), sgd",
        )


def check_optimizer(train: dict[str, Any], device: Any) -> None:
    """``train.optim``: a paged optimizer needs a CUDA GPU (bitsandbytes pages its state
    between GPU and CPU memory); any bitsandbytes optimizer needs the package."""
    optim = str(train.get("optim") or "")
    if optim not in BNB_OPTIMIZERS and not optim.startswith("paged_"):
        return
    if optim.startswith("paged_") and device.kind != "cuda":
        raise BadInput(
            f"train.optim={optim}: paged optimizers need a CUDA GPU (paging moves optimizer "
            f"state between GPU and CPU memory); this run is on {device.name}",
            hint="drop train.optim (AdamW) or use its unpaged form, e.g. "
            f"--set train.optim={optim.removeprefix('paged_')}",
        )
    if not _module_exists("bitsandbytes"):
        raise BadInput(
            f"train.optim={optim} needs the bitsandbytes package, which is not installed",
            hint="pip install bitsandbytes   (or drop train.optim for AdamW)",
        )


def check_trackers(report_to: Any) -> None:
    """Every ``train.report_to`` tracker must be one transformers knows and be installed."""
    if report_to is None:
        return
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    known = {*TRACKERS, *_transformers_trackers()}
    for name in names:
        if name in ("none", "all"):
            continue
        if not isinstance(name, str) or name not in known:
            several = isinstance(name, str) and "," in name
            raise BadInput(
                f"train.report_to: {name!r} is not a tracker; known: "
                f"none, all, {', '.join(sorted(known))}{did_you_mean(str(name), known)}",
                hint="give several as a list: --set 'train.report_to=[tensorboard, wandb]'"
                if several
                else "none logs only to the run directory (metrics.jsonl)",
            )
        needs, package = TRACKERS.get(name, ((), ""))
        missing = [group for group in needs if not any(_module_exists(m) for m in group)]
        if missing:
            raise BadInput(
                f"train.report_to: {name!r} needs the {' or '.join(missing[0])} package, "
                "which is not installed",
                hint=f"pip install {package}   (or --set train.report_to=none)",
            )


def _transformers_trackers() -> list[str]:
    """The trackers the installed transformers knows (it may know more than TRACKERS)."""
    try:
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
    except Exception:
        return []
    return list(INTEGRATION_TO_CALLBACK)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False


# Data path keys -> where the user sets them (the hint of a missing path).
def check_data_paths(data: dict[str, Any]) -> None:
    """The data paths that are set must exist (their contents are checked when read)."""
    for key, fix in DATA_PATHS.items():
        value = data.get(key)
        if value is not None and not Path(value).expanduser().exists():
            raise BadInput(f"data.{key}: {value} not found", hint=fix)


def training_arguments_kwargs(
    train_args: dict[str, Any],
    *,
    use_cpu: bool,
    output_dir: str | Path,
    fixed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of a run's arguments object: ``train_args``, the checkpoint
    directory, and ``fixed``, what the objective always sets (its ``arguments_class`` hook)."""
    return {"use_cpu": use_cpu, **train_args, "output_dir": str(output_dir), **(fixed or {})}


def check_training_arguments(
    resolved: ResolvedConfig, device: Any, arguments: tuple[type, dict[str, Any]] | None = None
) -> Any:
    """Build the run's arguments object as the trainer will (``arguments``: the objective's
    class and fixed keywords, by default plain ``TrainingArguments``) and turn what it rejects
    (a ValueError for an inconsistent combination, an unknown enum value, a missing integration
    package…) into a BadInput naming the keys. Returns it.

    No side effects: the output directory is a path that is never created, and the device
    setup (accelerate's process state, ``torch.cuda.set_device``, a process group under
    torchrun) is skipped; the trainer does it when it builds its own copy. Overrides from a
    plugin's ``training_arguments`` hook need the model and are not part of this check.
    """
    import tempfile
    import warnings

    if arguments is None:
        from transformers import TrainingArguments

        arguments = (TrainingArguments, {})
    cls, fixed = arguments

    class Checked(cls):  # type: ignore[misc, valid-type]
        @property
        def _setup_devices(self) -> Any:  # the device, without setting it up
            import torch

            return torch.device("cpu" if self.use_cpu else device.kind)

        @property
        def world_size(self) -> int:  # no process group here (GRPOConfig divides by it)
            return max(1, int(os.environ.get("WORLD_SIZE", "1")))

    output = Path(tempfile.gettempdir()) / f"ftx-check-{id(resolved):x}" / "checkpoints"

    def build(train: dict[str, Any]) -> Any:
        kwargs = training_arguments_kwargs(
            train, use_cpu=device.kind == "cpu", output_dir=output, fixed=fixed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Checked(**kwargs)

    train = resolved.train_args
    try:
        return build(train)
    except _REJECTED as exc:
        keys = _keys_named(str(exc), train) or _culprits(train, build)
        named = ", ".join(f"train.{k}={train[k]!r}" for k in keys) or "the train section"
        problem = " ".join(str(exc).split())
        raise BadInput(
            f"{named}: the trainer rejects this ({problem})",
            hint="change "
            + (" or ".join(f"train.{k}" for k in keys) if keys else "the train settings")
            + f" (see {cls.__name__} of the installed library)",
        ) from None


_REJECTED = (ValueError, TypeError, ImportError, NotImplementedError)


def _culprits(train: dict[str, Any], build: Any) -> list[str]:
    """The keys without which ``build`` succeeds (for errors that name no key, such as an
    unknown enum value): each is one construction, about a millisecond."""
    found = []
    for key in train:
        try:
            build({k: v for k, v in train.items() if k != key})
        except _REJECTED:
            continue
        found.append(key)
    return found


def _keys_named(message: str, train: dict[str, Any]) -> list[str]:
    """The train keys an error message names (``fp16``, ``--logging_steps``…)."""
    return [k for k in train if re.search(rf"(?<![\w.]){re.escape(k)}(?!\w)", message)]
