"""Run configuration: YAML file + CLI flags + ``--set [PLUGIN:]section.key=value``, resolved.

A config has four sections:

* ``model``: where the weights come from and how to load them (``name``, ``dtype``, …);
* ``data``: the data files and how to turn them into tokens (``path``, ``eval``, ``max_length``, …);
* ``train``: any TrainingArguments/SFTConfig field of the installed TRL, plus the seed's names
  (``model_max_length``, ``max_seq_length``, ``warmup_ratio``, ``evaluation_strategy``, …) mapped
  onto what the installed version expects;
* ``method``: the selected plugin's own options, validated against what it declares.

Precedence, lowest first: core defaults < plugin ``train_defaults`` < config file < CLI flags
(``--model``, ``--data``) < ``--set``. Unknown keys are errors with a did-you-mean; values are
coerced to the field's type (``--set train.learning_rate=1e-4`` is a float).

:func:`resolve` then checks what a value may be, so that nothing wrong reaches the trainer: one
table of valid ranges (:data:`RANGES`) for the ``data`` and ``train`` keys (the plugin's own
options carry theirs, ``Option.min``/``max``), the precision flags against the device, the
``train.report_to`` trackers against what is installed, the data paths, the model directory's
tokenizer files (:func:`ftx.model_files.check_tokenizer_files`), and finally the real
arguments object, built the way the trainer will build it (:func:`check_training_arguments`).
Every problem is a :class:`BadInput` naming the key, the value, the valid range and the fix.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.util
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ftx.errors import BadInput
from ftx.model_files import check_tokenizer_files
from ftx.options import AUTO, Option, Range, coerce, did_you_mean, resolve_options

SECTIONS = ("model", "data", "train", "method")

# name -> (type, default, help). Types as in ftx.options.coerce; "str?" = nullable string.
MODEL_FIELDS: dict[str, tuple[str, Any, str]] = {
    "name": ("str?", None, "model: a HF directory, a .gguf file, a cached hub id; null = demo"),
    "dtype": ("str", AUTO, "weights dtype: auto | float32 | bfloat16 | float16"),
    "attn_implementation": ("str", AUTO, "auto | sdpa | eager | flash_attention_2"),
    "trust_remote_code": ("bool", False, "run the model repository's own Python code (unsafe)"),
    "allow_pickle": ("bool", False, "allow pickle (.bin) weights; safetensors only otherwise"),
}
DATA_FIELDS: dict[str, tuple[str, Any, str]] = {
    "path": ("str?", None, "training data file or directory; null = the demo data"),
    "eval": ("str?", None, "held-out file: scored before and after training"),
    "eval_ratio": ("float", 0.0, "hold out this fraction of the training rows instead"),
    "format": ("str", AUTO, "auto | vicuna | openai | alpaca | prompt_completion | text"),
    "template": ("str", AUTO, "auto (the tokenizer's chat template) | vicuna_v1.1 | chatml"),
    "max_length": ("int", 512, "tokens per example; longer ones are truncated"),
    "packing": ("str", AUTO, "auto | true | false: padding-free batches"),
    "train_on": ("str", "assistant", "assistant (mask everything else) | all"),
    "eval_metric": ("str", "exact", "exact | json | loss"),
    "eval_max_new_tokens": ("int", 64, "generation budget for exact/json scoring"),
    "eval_limit": ("int?", None, "score only the first N held-out rows"),
}
CHOICES = {
    ("model", "dtype"): (AUTO, "float32", "bfloat16", "float16"),
    ("model", "attn_implementation"): (AUTO, "sdpa", "eager", "flash_attention_2"),
    ("data", "packing"): (AUTO, "true", "false"),
    ("data", "train_on"): ("assistant", "all"),
    ("data", "eval_metric"): ("exact", "json", "loss"),
}

# Valid ranges of numeric keys, checked in one loop by `check_ranges` (train keys the installed
# TRL lacks are skipped). ``fix`` is the hint the error prints.
_STEPS_FIX = "every N optimizer steps (N >= 1), or a fraction of the run below 1 (0.1 = 10%)"
RANGES: dict[tuple[str, str], Range] = {
    ("data", "max_length"): Range(
        min=8, fix="tokens per example (the chat template alone takes several): e.g. 512"
    ),
    ("data", "eval_ratio"): Range(
        min=0, max=1, max_exclusive=True, fix="the fraction of rows held out, e.g. 0.1; 0 = none"
    ),
    ("data", "eval_limit"): Range(min=1, fix="null scores every held-out row"),
    ("data", "eval_max_new_tokens"): Range(min=1, fix="tokens generated per held-out row: e.g. 64"),
    ("train", "learning_rate"): Range(
        min=0,  # 0 is allowed: it measures the initialisation (e.g. of LoRA adapters)
        fix="a step size >= 0: about 1e-5 to 1e-4 for full fine-tuning, 1e-4 to 1e-3 for LoRA",
    ),
    ("train", "num_train_epochs"): Range(
        min=0,
        min_exclusive=True,
        fix="passes over the data, e.g. 1 or 3 (a fraction trains part of one); for a fixed "
        "number of steps set train.max_steps",
    ),
    ("train", "max_steps"): Range(
        min=1,
        also=(-1,),
        fix="-1 (the default) trains for train.num_train_epochs; N >= 1 stops after N steps",
    ),
    ("train", "per_device_train_batch_size"): Range(
        min=1,
        fix="rows per step on each device; to save memory lower it and raise "
        "train.gradient_accumulation_steps",
    ),
    ("train", "per_device_eval_batch_size"): Range(min=1, fix="rows per evaluation step: e.g. 8"),
    ("train", "gradient_accumulation_steps"): Range(
        min=1, fix="1 = no accumulation; the effective batch is the batch size times this"
    ),
    ("train", "eval_accumulation_steps"): Range(min=1, fix="null keeps every prediction batch"),
    ("train", "warmup_steps"): Range(
        min=0, fix="a fraction of the run below 1 (0.05 = 5%), or a number of steps; 0 = none"
    ),
    ("train", "weight_decay"): Range(min=0, fix="0 turns it off; 0.01 to 0.1 is usual"),
    ("train", "max_grad_norm"): Range(min=0, fix="0 turns gradient clipping off; 1.0 is usual"),
    ("train", "adam_beta1"): Range(min=0, max=1, max_exclusive=True, fix="0.9 is usual"),
    ("train", "adam_beta2"): Range(min=0, max=1, max_exclusive=True, fix="0.999 is usual"),
    ("train", "adam_epsilon"): Range(min=0, min_exclusive=True, fix="1e-8 is usual"),
    ("train", "label_smoothing_factor"): Range(min=0, max=1, max_exclusive=True),
    ("train", "logging_steps"): Range(min=0, min_exclusive=True, fix=f"log {_STEPS_FIX}"),
    ("train", "save_steps"): Range(min=0, min_exclusive=True, fix=f"save {_STEPS_FIX}"),
    ("train", "eval_steps"): Range(min=0, min_exclusive=True, fix=f"evaluate {_STEPS_FIX}"),
    ("train", "save_total_limit"): Range(
        min=1, fix="keep the N newest checkpoints (N >= 1); null keeps them all"
    ),
    ("train", "seed"): Range(min=0, max=2**32 - 1, fix="any integer in [0, 2^32 - 1]: e.g. 42"),
    ("train", "dataloader_num_workers"): Range(min=0, fix="0 loads batches in the main process"),
    ("train", "dataloader_prefetch_factor"): Range(min=1),
    ("train", "torch_empty_cache_steps"): Range(min=1, fix="null never empties the cache"),
    ("train", "neftune_noise_alpha"): Range(min=0, min_exclusive=True, fix="null turns it off"),
}

# train.report_to values -> (modules it needs: one of each group, the pip package to install).
# Mirrors transformers.integrations' is_*_available; checked with find_spec (imports nothing).
TRACKERS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "tensorboard": ((("tensorboard", "tensorboardX"),), "tensorboard"),
    "wandb": ((("wandb",),), "wandb"),
    "mlflow": ((("mlflow",),), "mlflow"),
    "comet_ml": ((("comet_ml",),), "comet-ml"),
    "neptune": ((("neptune", "neptune_client"),), "neptune"),
    "clearml": ((("clearml",),), "clearml"),
    "dagshub": ((("dagshub",), ("mlflow",)), "dagshub mlflow"),
    "dvclive": ((("dvclive",),), "dvclive"),
    "swanlab": ((("swanlab",),), "swanlab"),
    "trackio": ((("trackio",),), "trackio"),
    "codecarbon": ((("codecarbon",),), "codecarbon"),
    "azure_ml": ((("azureml.core.run",),), "azureml-core"),
    "flyte": ((("flytekit",), ("flytekitplugins.deck",)), "flytekit flytekitplugins-deck-standard"),
    "kubeflow": ((), ""),
}

# Seed / older-version names -> (section, key) in this version.
TRAIN_ALIASES: dict[str, tuple[str, str]] = {
    "model_max_length": ("data", "max_length"),
    "max_seq_length": ("data", "max_length"),
    "max_length": ("data", "max_length"),
    "warmup_ratio": ("train", "warmup_steps"),
    "evaluation_strategy": ("train", "eval_strategy"),
    "packing": ("data", "packing"),
    "gradient_checkpointing": ("train", "activation_checkpointing"),
    "gradient_checkpointing_kwargs": ("train", "activation_checkpointing_kwargs"),
}
# Keys ftx sets itself; a user value would break the contract with the data layer / run dir.
TRAIN_OWNED = {
    "output_dir": "use --output",
    "dataset_kwargs": "ftx tokenises the data itself",
    "remove_unused_columns": "ftx passes only model inputs",
    "padding_free": "use data.packing",
    "completion_only_loss": "use data.train_on",
    "assistant_only_loss": "use data.train_on",
    "dataset_text_field": "use data.format",
}

CORE_TRAIN_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 1.0,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 2e-5,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "weight_decay": 0.0,
    "logging_steps": 5,
    "logging_first_step": True,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 2,
    "seed": 42,
    "report_to": "none",
    "bf16": AUTO,
    "activation_checkpointing": AUTO,
    "dataloader_num_workers": 0,
    "disable_tqdm": True,
    "logging_nan_inf_filter": False,
}


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are bools. YAML 1.1 also reads
    yes/no/on/off as bools, which turns ``save_strategy: no`` into ``False``."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), [_first]
    )


def load_yaml(text: str) -> Any:
    """Parse YAML the way ftx reads configs and ``--set`` values (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Yaml12Loader)


@dataclasses.dataclass
class ResolvedConfig:
    """The outcome of resolution: the config to write to ``config.yaml``, plus derived parts."""

    config: dict[str, Any]
    options: dict[str, Any]
    train_args: dict[str, Any]


def load_file(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML config file into ``{section: {key: value}}``; BadInput on any problem.

    An optional top-level ``plugin: NAME`` is returned under ``"plugin"`` (a run's saved
    ``config.yaml`` has one, so it can be reused with ``--config``).
    """
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"config file not found: {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(f"{path}{where}: not valid YAML ({problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    plugin = data.pop("plugin", None)
    if plugin is not None and not isinstance(plugin, str):
        raise BadInput(f"{path}: 'plugin' must be a plugin name, got {plugin!r}")
    for section, body in data.items():
        if section not in SECTIONS:
            raise BadInput(
                f"{path}: unknown section '{section}'{did_you_mean(str(section), SECTIONS)}; "
                f"sections are {', '.join(SECTIONS)}"
            )
        if body is not None and not isinstance(body, dict):
            raise BadInput(f"{path}: section '{section}' must be a mapping of key: value")
    out: dict[str, Any] = {s: dict(data.get(s) or {}) for s in SECTIONS}
    if plugin is not None:
        out["plugin"] = plugin
    return out


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ``--set [PLUGIN:]section.key=value``: ``plugin`` is ``None`` unless scoped."""

    section: str
    key: str
    value: Any
    plugin: str | None = None

    def applies_to(self, plugin: str | None) -> bool:
        return self.plugin is None or self.plugin == plugin


SET_SYNTAX = (
    "section.key=value, e.g. train.max_steps=50 (PLUGIN:section.key=value scopes it to one "
    "plugin, e.g. qlora:method.r=8)"
)


def parse_set(expr: str) -> Setting:
    """Parse ``[PLUGIN:]section.key=value`` (value read as YAML) — the one ``--set`` syntax of
    ``ftx run``, ``ftx compare`` and ``ftx plan``. ``PLUGIN:`` scopes the value to one plugin
    (``qlora:method.r=8``), for commands that handle several plugins at once."""
    lhs, sep, raw = expr.partition("=")
    scope, colon, path = lhs.strip().rpartition(":")
    plugin = scope.strip() if colon else None
    section, dot, key = path.strip().partition(".")
    if not sep or not dot or not section or not key.strip() or (colon and not plugin):
        raise BadInput(f"--set {expr!r}: expected {SET_SYNTAX}")
    if section not in SECTIONS:
        hint = None
        if plugin is None and "." in path:
            hint = f"a plugin's option is set as PLUGIN:method.KEY, e.g. {section}:method.{key}"
        raise BadInput(
            f"--set {expr!r}: unknown section '{section}'{did_you_mean(section, SECTIONS)}",
            hint=hint,
        )
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return Setting(section=section, key=key.strip(), value=value, plugin=plugin)


def merge(
    file_cfg: dict[str, Any],
    flags: dict[str, Any],
    sets: list[str],
    *,
    plugin: str | None = None,
) -> dict[str, Any]:
    """Layer CLI flags (``{"model": {...}, "data": {...}}``) and ``--set``s over a file config.

    ``--set`` values scoped to another plugin than ``plugin`` are left out."""
    cfg = {s: dict(file_cfg.get(s) or {}) for s in SECTIONS}
    for section, values in flags.items():
        cfg[section].update({k: v for k, v in values.items() if v is not None})
    for expr in sets:
        setting = parse_set(expr)
        if setting.applies_to(plugin):
            cfg[setting.section][setting.key] = setting.value
    return cfg


def _check_fixed(section: str, table: dict[str, tuple[str, Any, str]], given: dict) -> dict:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in table:
            raise BadInput(
                f"unknown key {section}.{key}{did_you_mean(key, table)}; "
                f"known: {', '.join(sorted(table))}"
            )
        type_name, _, _ = table[key]
        where = f"{section}.{key}"
        if type_name.endswith("?"):
            out[key] = None if value is None else coerce(value, type_name[:-1], where=where)
        else:
            out[key] = coerce(value, type_name, where=where)
        choices = CHOICES.get((section, key))
        if choices is not None:
            if isinstance(out[key], bool):
                out[key] = str(out[key]).lower()
            if out[key] not in choices:
                raise BadInput(f"{where}: {value!r} is not one of: {', '.join(choices)}")
    return {**{k: v[1] for k, v in table.items()}, **out}


def _apply_aliases(cfg: dict[str, Any]) -> None:
    train = cfg["train"]
    for old in [k for k in train if k in TRAIN_ALIASES]:
        section, new = TRAIN_ALIASES[old]
        value = train.pop(old)
        if section == "train" and new in train:
            raise BadInput(
                f"train.{old} and train.{new} both given: {old} is the old name of {new}"
            )
        cfg[section].setdefault(new, value)
    layer_cls = train.pop("fsdp_transformer_layer_cls_to_wrap", None)
    if layer_cls is not None:
        fsdp_config = dict(train.get("fsdp_config") or {})
        fsdp_config.setdefault("transformer_layer_cls_to_wrap", layer_cls)
        train["fsdp_config"] = fsdp_config


@functools.lru_cache(maxsize=1)
def train_fields() -> dict[str, Any]:
    """Field name -> type hint of the installed TRL ``SFTConfig`` (imports trl: not cheap)."""
    from trl import SFTConfig

    hints = typing.get_type_hints(SFTConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(SFTConfig) if f.init}


def _hint_types(hint: Any) -> list[str]:
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else (hint,)
    names = {bool: "bool", int: "int", float: "float", str: "str"}
    found = [names[a] for a in args if a in names]
    return found if len(found) == len([a for a in args if a is not type(None)]) else []


def coerce_train_value(key: str, value: Any, hint: Any) -> Any:
    """Coerce a ``train.<key>`` value to the SFTConfig field's type; complex types pass through."""
    if value is None:
        return None
    kinds = _hint_types(hint)
    if not kinds:
        return value
    errors = []
    for kind in sorted(kinds, key=["bool", "int", "float", "str"].index):
        try:
            return coerce(value, kind, where=f"train.{key}")
        except BadInput as exc:
            errors.append(exc)
    raise BadInput(f"train.{key}: expected {' or '.join(kinds)}, got {value!r}")


def resolve(
    raw: dict[str, Any],
    *,
    declared_options: list[Option],
    plugin: str,
    plugin_train_defaults: dict[str, Any] | None,
    device: Any,
) -> ResolvedConfig:
    """Validate and resolve a merged config for ``plugin`` on ``device`` (a DeviceInfo).

    Raises BadInput for anything the trainer would reject or silently misread (see the module
    docstring); reads no model and writes nothing.
    """
    cfg = copy.deepcopy({s: dict(raw.get(s) or {}) for s in SECTIONS})
    _apply_aliases(cfg)
    model = _check_fixed("model", MODEL_FIELDS, cfg["model"])
    data = _check_fixed("data", DATA_FIELDS, cfg["data"])
    options = resolve_options(declared_options, cfg["method"], plugin=plugin)

    fields = train_fields()
    for key in cfg["train"]:
        if key in TRAIN_OWNED:
            raise BadInput(f"train.{key} is managed by ftx: {TRAIN_OWNED[key]}")
        if key not in fields:
            raise BadInput(
                f"unknown key train.{key}{did_you_mean(key, [*fields, *TRAIN_ALIASES])}",
                hint="train takes TrainingArguments/SFTConfig fields of the installed TRL",
            )
    train = {**CORE_TRAIN_DEFAULTS, **(plugin_train_defaults or {}), **cfg["train"]}
    auto = {k for k in ("bf16", "activation_checkpointing") if train.get(k) == AUTO}
    train = {
        k: v if k in auto else coerce_train_value(k, v, fields.get(k, Any))
        for k, v in train.items()
    }
    if "bf16" in auto:  # an explicit train.fp16=true wins over the automatic bf16
        train["bf16"] = bool(device.bf16) and not train.get("fp16")
    if "activation_checkpointing" in auto:
        train["activation_checkpointing"] = bool(device.is_gpu)
    config = {"model": model, "data": data, "train": train, "method": options}
    check_ranges(config)
    check_precision(train, device)
    check_trackers(train.get("report_to"))
    check_data_paths(data)
    check_tokenizer_files(model["name"])
    resolved = ResolvedConfig(config=config, options=options, train_args=dict(train))
    check_training_arguments(resolved, device)
    return resolved


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
DATA_PATHS = {
    "path": "pass an existing file or directory with --data (data.path in a config file)",
    "eval": "point data.eval at an existing held-out file (--set data.eval=PATH), or drop it "
    "and hold out rows with --set data.eval_ratio=0.1",
}


def check_data_paths(data: dict[str, Any]) -> None:
    """The data paths that are set must exist (their contents are checked when read)."""
    for key, fix in DATA_PATHS.items():
        value = data.get(key)
        if value is not None and not Path(value).expanduser().exists():
            raise BadInput(f"data.{key}: {value} not found", hint=fix)


def training_arguments_kwargs(
    train_args: dict[str, Any], *, use_cpu: bool, output_dir: str | Path
) -> dict[str, Any]:
    """The keyword arguments of a run's ``SFTConfig``: ``train_args`` plus what ftx sets itself
    (the checkpoint directory, no TRL data preparation: ftx has tokenised the rows)."""
    return {
        "use_cpu": use_cpu,
        **train_args,
        "output_dir": str(output_dir),
        "dataset_kwargs": {"skip_prepare_dataset": True},
        "remove_unused_columns": False,
        "max_length": None,
    }


def check_training_arguments(resolved: ResolvedConfig, device: Any) -> Any:
    """Build the run's arguments object as the trainer will (:func:`training_arguments_kwargs`)
    and turn what it rejects (a ValueError for an inconsistent combination, an unknown enum
    value, a missing integration package…) into a BadInput naming the keys. Returns it.

    No side effects: the output directory is a path that is never created, and the device
    setup (accelerate's process state, ``torch.cuda.set_device``, a process group under
    torchrun) is skipped; the trainer does it when it builds its own copy. Overrides from a
    plugin's ``training_arguments`` hook need the model and are not part of this check.
    """
    import tempfile
    import warnings

    from trl import SFTConfig

    class CheckedSFTConfig(SFTConfig):
        @property
        def _setup_devices(self) -> Any:  # the device, without setting it up
            import torch

            return torch.device("cpu" if self.use_cpu else device.kind)

    output = Path(tempfile.gettempdir()) / f"ftx-check-{id(resolved):x}" / "checkpoints"

    def build(train: dict[str, Any]) -> Any:
        kwargs = training_arguments_kwargs(train, use_cpu=device.kind == "cpu", output_dir=output)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CheckedSFTConfig(**kwargs)

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
            + " (see TrainingArguments/SFTConfig of the installed TRL)",
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
