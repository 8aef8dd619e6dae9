"""The conformance kit: one call that checks an installed method plugin end to end.

:func:`check_plugin` runs every check below against the plugin ``name`` (an entry point in the
``ftx.plugins`` group that is installed in the current environment) and returns a
:class:`ConformanceReport`. The first check that fails raises ``AssertionError`` whose message
names the plugin, the check and what was wrong, so it reads well as a pytest failure::

    from ftx.testing.conformance import check_plugin

    def test_conformance(tmp_path):
        check_plugin("hello", tmp_path)

The checks, in order:

``discovery``
    :func:`ftx.plugins.discover` lists the plugin with status ``ok``; this also validates every
    hook implementation's signature against :mod:`ftx.hookspecs`.
``lazy-import``
    A fresh interpreter loads the entry point; none of torch, transformers, peft, trl or
    bitsandbytes may be imported by it (``ftx --help`` and ``ftx plugins`` stay fast).
``options``
    ``method_options`` returns ``None`` or a list of :class:`ftx.options.Option` with unique
    names whose defaults pass the plugin's own validation (type and choices);
    ``train_defaults`` returns ``None`` or a dict keyed by argument names.
``run``
    A real ``ftx run`` through the host (:func:`ftx.runner.prepare` / :func:`~ftx.runner.execute`)
    on a tiny random Llama (4 decoder blocks) and a tiny learnable dataset, ``steps`` optimiser
    steps at batch 4 on the CPU (or the GPU when there is one): the run finishes, ``summary.json``
    says which implementation (the plugin or ``core``) answered each of the four method hooks,
    the trainable parameter count is positive, and a complete checkpoint was written.
``loss``
    Every logged loss is finite and the mean of the last three is below the mean of the first
    three.
``export``
    ``model/`` loads with plain ``AutoModelForCausalLM.from_pretrained``, its logits are finite
    and differ from the base model's (training changed something), and it generates.
    For adapter methods (an ``adapter/`` directory), the adapter loads onto the base with
    ``peft.PeftModel.from_pretrained`` and gives the same logits as the merged ``model/``.
``learned``
    On the first 16 training rows (trained tokens only), ``model/`` has a lower loss than the
    base model: the same rows before and after, free of the batch-to-batch noise of the curve.
``cli``
    ``ftx plugins --json`` (a subprocess) lists the plugin as ``ok`` and
    ``ftx plugins show NAME --json`` describes its options.
``gpu-bf16``
    Only with CUDA: the run used the GPU, in bfloat16 where the GPU supports it. Without CUDA
    the check is recorded in ``report.skipped``.

The tiny model and data are built in ``workdir`` unless ``model``/``data`` are given; on two CPU
cores the whole kit takes about 15-20 seconds per plugin.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEAVY_MODULES = ("torch", "transformers", "peft", "trl", "bitsandbytes")
"""Libraries an entry-point module must not import at load time."""

DEFAULT_LEARNING_RATE = 5e-3
"""High enough that a tiny random model's loss falls visibly within a few steps."""

TINY_LAYERS = 4
"""Decoder blocks of the kit's tiny model: enough for ``last:N``-style selections to make sense."""

LEARNED_ROWS = 16
"""Training rows on which the trained model must beat the base model (the ``learned`` check)."""

_SUBPROCESS_TIMEOUT_S = 120


@dataclass
class ConformanceReport:
    """What :func:`check_plugin` found, for further assertions in the plugin's own tests.

    ``hooks_implemented``: the hooks the plugin's module implements; ``hooks_answered``: for
    each of the four method hooks, who answered in the run (the plugin's name or ``"core"``);
    ``losses``: the logged training losses, one per step; ``fit_loss``: ``(base, trained)``
    loss on the first training rows (the ``learned`` check); ``run_dir``: the run directory (with
    ``model/``, ``metrics.jsonl``, ``summary.json`` …); ``base_model``: the tiny model trained;
    ``passed``: the checks that passed, in order; ``skipped``: ``{check: reason}``;
    ``seconds``: wall time per check.
    """

    plugin: str
    distribution: str = "?"
    version: str = "?"
    hooks_implemented: list[str] = field(default_factory=list)
    hooks_answered: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    trainable_params: int = 0
    total_params: int = 0
    losses: list[float] = field(default_factory=list)
    fit_loss: tuple[float, float] | None = None
    run_dir: Path | None = None
    base_model: Path | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _Checker:
    """Runs named checks, turning any failure into one AssertionError naming plugin and check."""

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        self.context: str = ""

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self.context = ""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(self._message(name, str(exc) or "assertion failed")) from exc
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise AssertionError(self._message(name, detail)) from exc
        finally:
            self.report.seconds[name] = round(time.perf_counter() - started, 2)
        self.report.passed.append(name)

    def _message(self, name: str, detail: str) -> str:
        text = f"ftx conformance: plugin '{self.report.plugin}' failed check '{name}': {detail}"
        if self.context:
            text += f"\n--- run output (last lines) ---\n{self.context}"
        return text


def check_plugin(
    name: str,
    workdir: str | Path,
    *,
    steps: int = 6,
    sets: Sequence[str] = (),
    learning_rate: float | None = DEFAULT_LEARNING_RATE,
    model: str | Path | None = None,
    data: str | Path | None = None,
) -> ConformanceReport:
    """Check the installed plugin ``name`` end to end; return a report or raise AssertionError.

    ``workdir`` receives the tiny model, the data and the run directory (a pytest ``tmp_path``
    is ideal). ``steps`` (at least 4) is the number of optimiser steps of the training check.
    ``sets`` are extra ``section.key=value`` overrides, applied after the kit's own (e.g.
    ``["method.r=4"]``). ``learning_rate`` is used for the run (``None``: the plugin's
    ``train_defaults``, else the core's). ``model`` (a Hugging Face directory) and ``data`` (a
    training file) replace the kit's tiny ones. Checks needing CUDA are skipped without it and
    listed in ``report.skipped``. The message of the ``AssertionError`` names the plugin, the
    failed check and the cause.
    """
    if steps < 4:
        raise ValueError(f"check_plugin: steps must be at least 4, got {steps}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    report = ConformanceReport(plugin=name)
    checker = _Checker(report)

    with checker.check("discovery"):
        info = _check_discovery(name, report)
    with checker.check("lazy-import"):
        _check_lazy_import(name)
    with checker.check("options"):
        _check_options(info, report)
    with checker.check("run"):
        prep, summary = _check_run(
            name, workdir, steps, sets, learning_rate, model, data, report, checker
        )
    with checker.check("loss"):
        _check_loss(report)
    with checker.check("export"):
        tokenizer, trained, base = _check_export(report)
    with checker.check("learned"):
        _check_learned(prep, tokenizer, trained, base, report)
    with checker.check("cli"):
        _check_cli(name)
    _check_gpu(prep, summary, report, checker)
    return report


# --- the checks ---------------------------------------------------------------------------


_LAZY_PROBE = """
import json, sys
from importlib import metadata
name, heavy = sys.argv[1], sys.argv[2].split(",")
found = [ep for ep in metadata.entry_points(group="ftx.plugins") if ep.name == name]
if not found:
    print(json.dumps({"error": "no entry point named %r in group ftx.plugins" % name}))
    raise SystemExit(0)
found[0].load()
print(json.dumps({"value": found[0].value, "heavy": [m for m in heavy if m in sys.modules]}))
"""


def _check_lazy_import(name: str) -> None:
    out = _python(["-c", _LAZY_PROBE, name, ",".join(HEAVY_MODULES)], "the entry-point probe")
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, result.get("error")
    heavy = result["heavy"]
    assert not heavy, (
        f"loading the entry point '{result['value']}' imported {', '.join(heavy)}; "
        "import heavy libraries inside the hook bodies, not at module level"
    )


def _check_discovery(name: str, report: ConformanceReport) -> Any:
    from ftx.plugins import discover

    by_name = {p.name: p for p in discover()}
    assert name in by_name, (
        f"not installed: no entry point '{name}' in group 'ftx.plugins' "
        f"(found: {', '.join(sorted(by_name)) or 'none'}); `pip install -e .` the plugin"
    )
    info = by_name[name]
    assert info.ok, f"`ftx plugins` reports it broken: {info.status}"
    report.distribution, report.version = info.distribution, info.version
    report.hooks_implemented = list(info.hooks)
    return info


def _check_options(info: Any, report: ConformanceReport) -> None:
    from ftx.context import DeviceInfo
    from ftx.options import Option, resolve_options
    from ftx.plugins import call_first, manager_for

    pm = manager_for(info, defaults=False)
    declared, _ = call_first(pm, "method_options")
    declared = [] if declared is None else declared
    assert isinstance(declared, list), (
        f"method_options must return a list of ftx.options.Option, got {type(declared).__name__}"
    )
    wrong = [o for o in declared if not isinstance(o, Option)]
    assert not wrong, f"method_options returned non-Option items: {wrong!r}"
    names = [o.name for o in declared]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"method_options declares {', '.join(dupes)} more than once"
    # Feeding every default back as if the user had typed it checks type and choices.
    report.options = resolve_options(
        declared, {o.name: o.default for o in declared}, plugin=info.name
    )
    cpu = DeviceInfo(kind="cpu", bf16=False, count=0, name="CPU")
    defaults, _ = call_first(pm, "train_defaults", device=cpu)
    assert defaults is None or (
        isinstance(defaults, dict) and all(isinstance(k, str) for k in defaults)
    ), f"train_defaults must return None or a dict of argument names, got {defaults!r}"


def _check_run(
    name: str,
    workdir: Path,
    steps: int,
    sets: Sequence[str],
    learning_rate: float | None,
    model: str | Path | None,
    data: str | Path | None,
    report: ConformanceReport,
    checker: _Checker,
) -> tuple[Any, dict[str, Any]]:
    from rich.console import Console

    from ftx.plugins import METHOD_HOOKS
    from ftx.runner import RunRequest, execute, newest_checkpoint, prepare
    from ftx.testing.tiny import make_tiny_model, write_tiny_dataset

    if model is None:
        model_dir = workdir / "tiny-model"
        if not (model_dir / "config.json").is_file():
            make_tiny_model(model_dir, num_layers=TINY_LAYERS)
        model = model_dir
    if data is None:
        data = workdir / "tiny-train.jsonl"
        if not Path(data).is_file():
            write_tiny_dataset(data, rows=48, seed=0)
    report.base_model = Path(model)
    run_dir = workdir / f"run-{name}"
    kit_sets = [
        f"train.max_steps={steps}",
        "train.logging_steps=1",
        "train.per_device_train_batch_size=4",
        "train.warmup_steps=0",
        f"train.save_steps={max(1, steps // 2)}",
    ]
    if learning_rate is not None:
        kit_sets.append(f"train.learning_rate={learning_rate}")
    request = RunRequest(
        plugin=name,
        model=str(model),
        data=str(data),
        output=str(run_dir),
        sets=[*kit_sets, *sets],
        overwrite=True,
    )
    log = io.StringIO()
    try:
        prep = prepare(request)
        summary = execute(prep, Console(file=log, width=120, color_system=None))
    finally:
        checker.context = "\n".join(log.getvalue().splitlines()[-15:])
    report.run_dir = run_dir
    report.summary = summary
    report.artifacts = dict(summary.get("artifacts") or {})
    assert summary.get("status") == "finished", (
        f"run status {summary.get('status')!r}: {summary.get('error')}"
    )
    hooks = summary.get("hooks") or {}
    missing = [h for h in METHOD_HOOKS if h not in hooks]
    assert not missing, f"summary.json hooks lacks {', '.join(missing)}: {hooks}"
    # firstresult hooks record one answerer, hooks every implementation answers a list of them
    strangers = {
        h: who
        for h, who in hooks.items()
        if any(w not in (name, "core") for w in (who if isinstance(who, list) else [who]))
    }
    assert not strangers, f"hooks answered by neither the plugin nor core: {strangers}"
    report.hooks_answered = {h: hooks[h] for h in METHOD_HOOKS}
    report.trainable_params = int(summary.get("trainable_params") or 0)
    report.total_params = int(summary.get("total_params") or 0)
    assert 0 < report.trainable_params <= report.total_params, (
        f"trainable parameters {report.trainable_params} of {report.total_params}"
    )
    assert summary.get("steps") == steps, f"trained {summary.get('steps')} steps, not {steps}"
    assert newest_checkpoint(run_dir / "checkpoints") is not None, "no complete checkpoint"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    report.losses = [float(r["loss"]) for r in rows if "loss" in r]
    checker.context = ""
    return prep, summary


def _check_loss(report: ConformanceReport) -> None:
    losses = report.losses
    assert len(losses) >= 4, f"only {len(losses)} losses logged in metrics.jsonl"
    bad = [i + 1 for i, x in enumerate(losses) if not math.isfinite(x)]
    assert not bad, f"non-finite loss at steps {bad}: {losses}"
    k = min(3, len(losses) // 2)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    assert last < first, (
        f"loss did not fall: mean of the last {k} = {last:.4f} >= mean of the first {k} = "
        f"{first:.4f} (losses {[round(x, 4) for x in losses]}); a method that trains "
        "nothing useful, or a learning rate too low for a few steps (pass learning_rate=…)"
    )


def _check_export(report: ConformanceReport) -> tuple[Any, Any, Any]:
    """Reload ``model/`` (and ``adapter/``); return ``(tokenizer, trained model, base model)``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert report.run_dir is not None and report.base_model is not None
    model_dir = report.run_dir / "model"
    assert "model" in report.artifacts, f"export returned {report.artifacts!r}, without 'model'"
    assert (model_dir / "config.json").is_file(), f"{model_dir} is not a model directory"
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    merged = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    base = _load_base_like(report.base_model, model_dir)
    ids = _prompt_ids(tokenizer)
    with torch.no_grad():
        logits = merged(input_ids=ids).logits
        base_logits = base(input_ids=ids).logits
    assert torch.isfinite(logits).all(), "model/ gives non-finite logits"
    assert not torch.allclose(logits, base_logits, atol=1e-6), (
        "model/ gives the base model's logits: training changed nothing, or export did not "
        "save the trained weights"
    )
    with torch.no_grad():
        out = merged.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    assert out.shape[1] > ids.shape[1], "model/ generated no token"
    adapter_dir = report.run_dir / "adapter"
    if "adapter" not in report.artifacts and not adapter_dir.is_dir():
        return tokenizer, merged, base
    from peft import PeftModel

    assert (adapter_dir / "adapter_config.json").is_file(), f"{adapter_dir} has no adapter"
    adapted = PeftModel.from_pretrained(base, str(adapter_dir))
    with torch.no_grad():
        adapted_logits = adapted(input_ids=ids).logits
    diff = (adapted_logits - logits).abs().max().item()
    assert torch.allclose(adapted_logits, logits, atol=1e-4, rtol=1e-4), (
        f"base + adapter/ and the merged model/ disagree (max |logit diff| {diff:.2e})"
    )
    # PeftModel.from_pretrained wrapped ``base`` in place: reload a clean one.
    return tokenizer, merged, _load_base_like(report.base_model, model_dir)


def _load_base_like(base_dir: Path, model_dir: Path) -> Any:
    """The base model in float32, first rounded to the dtype ``model/`` was saved in.

    A bf16 ``model/`` (GPU runs) is compared with a bf16-rounded base, so rounding alone never
    looks like (or hides) training.
    """
    import torch
    from transformers import AutoModelForCausalLM

    saved = json.loads((model_dir / "config.json").read_text())
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(
        saved.get("dtype") or saved.get("torch_dtype"), torch.float32
    )
    return AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype).float()


def _check_learned(
    prep: Any, tokenizer: Any, trained: Any, base: Any, report: ConformanceReport
) -> None:
    """The trained ``model/`` fits the first training rows better than the base model does.

    Unlike the logged curve (a different batch at every step), this compares the same rows.
    """
    from ftx.data import tokenize_dataset

    dcfg = prep.resolved.config["data"]
    rows = tokenize_dataset(
        prep.train_convs[:LEARNED_ROWS],
        tokenizer,
        max_length=dcfg["max_length"],
        template=dcfg["template"],
        train_on=dcfg["train_on"],
    ).examples
    assert rows, "no training row survived tokenisation"
    before, after = _mean_loss(base, rows), _mean_loss(trained, rows)
    report.fit_loss = (round(before, 6), round(after, 6))
    assert after < before, (
        f"model/ does not fit the training rows better than the base model "
        f"(loss on {len(rows)} training rows: base {before:.5f}, trained {after:.5f})"
    )


def _mean_loss(model: Any, rows: list[dict[str, Any]]) -> float:
    """Token-averaged cross-entropy of ``model`` on the trained tokens of ``rows``."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([row["labels"]])
            logits = model(input_ids=ids).logits[:, :-1].float()
            target = labels[:, 1:]
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                target.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            ).item()
            count += int((target != -100).sum())
    return total / max(count, 1)


def _prompt_ids(tokenizer: Any) -> Any:
    messages = [{"role": "user", "content": "reverse: red green blue"}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "reverse: red green blue\n"
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def _check_cli(name: str) -> None:
    from click.testing import CliRunner

    from ftx.cli import cli

    listed = json.loads(_python(["-m", "ftx.cli", "plugins", "--json"], "`ftx plugins --json`"))
    entry = next((p for p in listed if p.get("name") == name), None)
    assert entry is not None, f"`ftx plugins --json` does not list it: {listed}"
    assert entry.get("status") == "ok", f"`ftx plugins --json` status: {entry.get('status')}"
    shown = CliRunner().invoke(cli, ["plugins", "show", name, "--json"])
    assert shown.exit_code == 0, f"`ftx plugins show {name}` failed: {shown.output}"
    assert "options" in json.loads(shown.stdout), "`ftx plugins show --json` has no options"


def _check_gpu(
    prep: Any, summary: dict[str, Any], report: ConformanceReport, checker: _Checker
) -> None:
    import torch

    if not torch.cuda.is_available():
        report.skipped["gpu-bf16"] = "no CUDA device"
        return
    with checker.check("gpu-bf16"):
        assert prep.device.kind == "cuda", f"the run used {prep.device.kind}, not the CUDA GPU"
        if prep.device.bf16:
            assert summary.get("dtype") == "bfloat16" or summary.get("bf16_autocast"), (
                f"a bf16-capable GPU trained in {summary.get('dtype')} without bf16 autocast"
            )


def _python(args: list[str], what: str) -> str:
    """Run this interpreter with ``args`` in a fresh process; return its stdout.

    Raises AssertionError naming ``what`` with the end of stderr when the process fails.
    """
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=_SUBPROCESS_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise AssertionError(f"{what} exited with code {proc.returncode}:\n{tail}")
    return proc.stdout
