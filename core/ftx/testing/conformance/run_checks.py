"""Checks on a real run of the plugin: it finishes, its loss falls, its export loads and learned."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftx.testing.conformance.report import (
    LEARNED_ROWS,
    TINY_LAYERS,
    Checker,
    ConformanceReport,
)


def check_run(
    name: str,
    workdir: Path,
    steps: int,
    sets: Sequence[str],
    learning_rate: float | None,
    model: str | Path | None,
    data: str | Path | None,
    report: ConformanceReport,
    checker: Checker,
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
    allowed = (name, "core", summary.get("objective"))
    strangers = {
        h: who
        for h, who in hooks.items()
        if any(w not in allowed for w in (who if isinstance(who, list) else [who]))
    }
    assert not strangers, (
        f"hooks answered by neither the plugin, its objective nor core: {strangers}"
    )
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


def check_learned(
    prep: Any, tokenizer: Any, trained: Any, base: Any, report: ConformanceReport
) -> None:
    """The trained ``model/`` fits the first training rows better than the base model does.

    Unlike the logged curve (a different batch at every step), this compares the same rows.
    """
    from ftx.data import tokenize_dataset

    dcfg = prep.resolved.config["data"]
    rows = tokenize_dataset(
        prep.train_rows[:LEARNED_ROWS],
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
