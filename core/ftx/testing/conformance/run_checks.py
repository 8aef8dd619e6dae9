"""Checks on a real run of a method under an objective: it finishes and scores its held-out
rows, its loss falls, its export loads and it learned (:mod:`~.fit`)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftx.testing.conformance.fit import check_learned
from ftx.testing.conformance.report import (
    HELDOUT_ROWS,
    TINY_LAYERS,
    Checker,
    ConformanceReport,
)

__all__ = ["check_export", "check_gpu", "check_learned", "check_loss", "check_run"]


def check_run(
    method: str,
    objective: str,
    traits: Any,
    workdir: Path,
    steps: int,
    sets: Sequence[str],
    learning_rate: float | None,
    model: str | Path | None,
    files: tuple[Path, Path],
    report: ConformanceReport,
    checker: Checker,
) -> tuple[Any, dict[str, Any]]:
    """A real run of ``method`` under ``objective`` on ``files`` (training, held-out): it
    finishes, records who answered each hook, trains something, checkpoints, and scores the
    held-out rows before and after with the objective's metric."""
    from rich.console import Console

    from ftx.runner import RunRequest, execute, newest_checkpoint, prepare
    from ftx.testing.tiny import make_tiny_model

    if model is None:
        model_dir = workdir / "tiny-model"
        if not (model_dir / "config.json").is_file():
            make_tiny_model(model_dir, num_layers=TINY_LAYERS)
        model = model_dir
    report.base_model = Path(model)
    run_dir = workdir / f"run-{method}-{objective}"
    train, held_out = files
    kit_sets = [
        f"train.max_steps={steps}",
        "train.logging_steps=1",
        f"train.per_device_train_batch_size={max(4, traits.min_batch_size)}",
        "train.warmup_steps=0",
        f"train.save_steps={max(1, steps // 2)}",
        f"data.eval={held_out}",
        f"data.eval_limit={HELDOUT_ROWS}",
        "data.eval_max_new_tokens=16",
    ]
    if learning_rate is not None:
        kit_sets.append(f"train.learning_rate={learning_rate}")
    request = RunRequest(
        plugin=method,
        objective=objective,
        model=str(model),
        data=str(train),
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
    _check_hooks(summary, method, objective, prep, report)
    report.trainable_params = int(summary.get("trainable_params") or 0)
    report.total_params = int(summary.get("total_params") or 0)
    assert 0 < report.trainable_params <= report.total_params, (
        f"trainable parameters {report.trainable_params} of {report.total_params}"
    )
    assert summary.get("steps") == steps, f"trained {summary.get('steps')} steps, not {steps}"
    assert newest_checkpoint(run_dir / "checkpoints") is not None, "no complete checkpoint"
    _check_heldout(summary, prep.resolved.config["data"]["eval_metric"], traits, report)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    report.losses = [float(r["loss"]) for r in rows if "loss" in r]
    checker.context = ""
    return prep, summary


def _check_hooks(
    summary: dict[str, Any], method: str, objective: str, prep: Any, report: ConformanceReport
) -> None:
    """summary.json names who answered each method hook, and only the run's method, its
    objective or the core answered anything."""
    from ftx.plugins import METHOD_HOOKS

    hooks = summary.get("hooks") or {}
    missing = [h for h in METHOD_HOOKS if h not in hooks]
    assert not missing, f"summary.json hooks lacks {', '.join(missing)}: {hooks}"
    # firstresult hooks record one answerer, hooks every implementation answers a list of them
    allowed = (method, "core", objective)
    strangers = {
        h: who
        for h, who in hooks.items()
        if any(w not in allowed for w in (who if isinstance(who, list) else [who]))
    }
    assert not strangers, (
        f"hooks answered by neither the method, its objective nor core: {strangers}"
    )
    if report.kind == "objective":
        report.hooks_answered = {h: who for h, who in hooks.items() if h in prep.objective.hooks}
    else:
        report.hooks_answered = {h: hooks[h] for h in METHOD_HOOKS}


def _check_heldout(
    summary: dict[str, Any], metric: str, traits: Any, report: ConformanceReport
) -> None:
    """The held-out rows were scored before and after, with ``data.eval_metric``."""
    assert metric in traits.metrics, (
        f"data.eval_metric {metric!r} is not one of the objective's metrics {traits.metrics}"
    )
    for when in ("eval_before", "eval_after"):
        result = summary.get(when)
        assert isinstance(result, dict), (
            f"summary.json has no {when}: score_heldout did not score the held-out rows"
        )
        assert result.get("metric") == metric, (
            f"{when} is scored with {result.get('metric')!r}, not data.eval_metric {metric!r}"
        )
        score = result.get("score")
        assert isinstance(score, int | float) and math.isfinite(score), (
            f"{when} score {score!r} is not a finite number"
        )
        assert int(result.get("n") or 0) > 0, f"{when} scored no row: {result}"
    report.eval_before, report.eval_after = summary["eval_before"], summary["eval_after"]


def check_loss(report: ConformanceReport) -> None:
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


def check_export(report: ConformanceReport) -> tuple[Any, Any, Any]:
    """Reload ``model/`` (and ``adapter/``); return ``(tokenizer, trained model, base model)``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert report.run_dir is not None and report.base_model is not None
    model_dir = report.run_dir / "model"
    assert "model" in report.artifacts, f"export returned {report.artifacts!r}, without 'model'"
    assert (model_dir / "config.json").is_file(), f"{model_dir} is not a model directory"
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    merged = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True
    )
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
    adapted = PeftModel.from_pretrained(base, str(adapter_dir), local_files_only=True)
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
    return AutoModelForCausalLM.from_pretrained(
        str(base_dir), dtype=dtype, local_files_only=True
    ).float()


def _prompt_ids(tokenizer: Any) -> Any:
    messages = [{"role": "user", "content": "reverse: red green blue"}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "reverse: red green blue\n"
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def check_gpu(
    prep: Any, summary: dict[str, Any], report: ConformanceReport, checker: Checker
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
