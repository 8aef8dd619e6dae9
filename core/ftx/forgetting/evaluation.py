"""``ftx eval RUN_OR_MODEL --metric retention|drift [--base MODEL]``: forgetting of a saved
model, as one JSON-ready dict.

The base is ``--base`` when given, else the model a run trained from (its ``summary.json``
``model``, else its ``config.yaml`` ``model.name``), else a PEFT adapter's own base. A bare
model directory or ``.gguf`` file has no known base: it needs ``--base`` (BadInput, exit 2,
before anything loads).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftx.errors import BadInput
from ftx.forgetting.measure import METRICS


def base_spec(run_or_model: str | Path, base: str | None) -> str | None:
    """The base model ``run_or_model`` is measured against (a model spec as ``--model`` takes;
    None = the demo model), checked without loading; BadInput when it cannot be known."""
    from ftx.inference import resolve_artifact
    from ftx.models import check_model_spec

    path, kind = resolve_artifact(run_or_model)
    if base is None:
        run_dir = Path(run_or_model)
        if kind == "model" and path != run_dir:  # a run directory: its model/
            base = _run_base(run_dir)
        elif kind == "adapter":
            base = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
        else:
            raise BadInput(
                f"{run_or_model} is a model without a run: forgetting needs the model it was "
                "fine-tuned from",
                hint=f"pass it with --base, e.g. ftx eval {run_or_model} --metric retention "
                "--base path/to/base-model",
            )
    check_model_spec(base)
    return base


def _run_base(run_dir: Path) -> str | None:
    """The model a run trained from: summary.json's resolved ``model``, else config.yaml's."""
    try:
        model = json.loads((run_dir / "summary.json").read_text()).get("model")
        if model:
            return str(model)
    except (OSError, ValueError):
        pass
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(
            f"cannot read the base model of run {run_dir}: {exc}", hint="pass it with --base"
        ) from None
    return (config.get("model") or {}).get("name")


def forgetting_evaluation(
    run_or_model: str | Path, metric: str, base: str | None = None, *, load: Any = None
) -> dict[str, Any]:
    """``{"metric", "score", "n", …, "model", "base"}`` for ``metric`` (retention: the share
    kept, ``n`` = questions the base got right; drift: nats per token, ``n`` = tokens), with
    every key of the ``forgetting`` record of that metric. ``load()`` returns the tuned model (an
    :class:`ftx.inference.Loaded`; default: load ``run_or_model``), called once the input is
    checked."""
    if metric not in METRICS:
        raise BadInput(f"unknown forgetting metric {metric!r}; choose one of {', '.join(METRICS)}")
    spec = base_spec(run_or_model, base)
    from ftx.forgetting.measure import measure_forgetting
    from ftx.inference import load_for_inference
    from ftx.models import resolve_model

    base_dir = resolve_model(spec)
    tuned = load() if load is not None else load_for_inference(run_or_model)
    if base is not None and hasattr(tuned.model, "disable_adapter"):
        # An explicit --base replaces the adapter's own base: load it alongside.
        tuned = _merged_view(tuned)
    record = measure_forgetting(tuned, base_dir, metrics=(metric,))
    if metric == "retention":
        head = {"score": record["retention"], "n": record["retention_base_correct"]}
    else:
        head = {"score": record["drift_nats"], "n": record["drift_tokens"], "unit": "nats/token"}
    return {"metric": metric, **head, **record, "model": tuned.source, "base": str(base_dir)}


def _merged_view(tuned: Any) -> Any:
    """A PEFT model as plain weights (adapter merged), so the base is loaded separately."""
    import dataclasses

    return dataclasses.replace(tuned, model=tuned.model.merge_and_unload())
