"""``train.report_to``: one tiny run per installed tracker, read back from what the tracker
wrote — the Trainer's loss per step and ftx's own numbers (held-out before/after, tokens/s, peak
memory, trainable parameters) and resolved config (:mod:`ftx.trackers`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftx

STEPS = 3
FTX_NUMBERS = ("eval_before", "eval_after", "tokens_per_s", "peak_memory_bytes", "trainable_params")


@pytest.fixture
def tiny_run(ftx_tiny_model, ftx_tiny_data, tmp_path):
    """``tiny_run(tracker)``: a 3-step fft run reporting to ``tracker``; its RunResult."""

    def run(tracker: str):
        return ftx.run(
            "fft",
            model=ftx_tiny_model,
            data={"path": ftx_tiny_data["train"], "eval": ftx_tiny_data["eval"]},
            train={
                "max_steps": STEPS,
                "logging_steps": 1,
                "per_device_train_batch_size": 4,
                "report_to": [tracker],
                "run_name": "ftx-tiny",
            },
            output=tmp_path / "run",
        )

    return run


def test_tensorboard_event_files_hold_loss_per_step_and_ftx_numbers(tiny_run):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard not installed (pip install 'ftx-core[tensorboard]')",
    )
    result = tiny_run("tensorboard")
    logdir = Path(result.summary["trackers"]["tensorboard"])
    assert logdir.is_relative_to(result.output)
    events = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()
    values = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]}
    assert [step for step, _ in values["train/loss"]] == list(range(1, STEPS + 1))
    logged = [row["loss"] for row in result.loss_history]
    assert [v for _, v in values["train/loss"]] == pytest.approx(logged, rel=1e-5)
    for name in FTX_NUMBERS:
        ((step, value),) = values[f"ftx/{name}"]
        expected = result.summary[name]
        expected = expected["score"] if isinstance(expected, dict) else expected
        assert step == STEPS
        if name != "peak_memory_bytes":  # the tracker's is read just before summary.json's
            assert value == pytest.approx(expected, rel=1e-5), name
        else:
            assert 0 < value <= expected
    assert "ftx/config/text_summary" in tags["tensors"]  # the resolved config, as text


def test_wandb_offline_run_holds_params_and_metrics(
    tiny_run, monkeypatch, tmp_path, ftx_tiny_model
):
    pytest.importorskip("wandb", reason="wandb not installed (pip install 'ftx-core[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")  # no account, no network
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = tiny_run("wandb")
    run_dir = Path(result.summary["trackers"]["wandb"])
    assert run_dir.name.startswith("offline-run-") and run_dir.is_relative_to(tmp_path)
    (log,) = run_dir.glob("run-*.wandb")  # offline, everything is in the run's record log
    history, summary, config = _wandb_records(log)
    losses = [
        (row["train/global_step"], row["train/loss"]) for row in history if "train/loss" in row
    ]
    assert [step for step, _ in losses] == list(range(1, STEPS + 1))
    assert [v for _, v in losses] == pytest.approx(
        [r["loss"] for r in result.loss_history], rel=1e-5
    )
    for name in FTX_NUMBERS:
        assert f"ftx/{name}" in summary, name
    assert summary["ftx/eval_after"] == result.eval_after["score"]
    assert config["ftx.train.max_steps"] == str(STEPS)
    assert config["ftx.model.name"] == str(ftx_tiny_model)


def _wandb_records(log: Path) -> tuple[list[dict], dict, dict]:
    """History rows, the merged summary and config of an offline run's ``run-*.wandb`` file (a
    LevelDB-style log of protobuf records: 7-byte file header, 32 KiB blocks, each record
    chunk with a 7-byte header: crc32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    raw, block, pos, chunk, records = log.read_bytes(), 32768, 7, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        chunk += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(chunk)
            chunk = b""
    history, summary, config = [], {}, {}
    for data in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(_wandb_items(record.history.item))
        elif kind == "summary":
            summary.update(_wandb_items(record.summary.update))
        elif kind == "config":
            config.update(_wandb_items(record.config.update))
    return history, summary, config


def _wandb_items(items) -> dict:
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


def test_mlflow_file_store_holds_params_and_metrics(tiny_run, monkeypatch, tmp_path):
    mlflow = pytest.importorskip(
        "mlflow", reason="mlflow not installed (pip install 'ftx-core[mlflow]')"
    )
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 prefers a database
    result = tiny_run("mlflow")
    assert store.as_uri() in result.summary["trackers"]["mlflow"]
    client = mlflow.MlflowClient(tracking_uri=store.as_uri())
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == list(range(1, STEPS + 1))
    assert [m.value for m in losses] == pytest.approx(
        [row["loss"] for row in result.loss_history], rel=1e-5
    )
    for name in FTX_NUMBERS:
        assert f"ftx.{name}" in run.data.metrics, name
    assert run.data.metrics["ftx.eval_after"] == result.eval_after["score"]
    assert run.data.params["ftx.train.max_steps"] == str(STEPS)


def test_trackio_store_holds_loss_and_ftx_numbers(tiny_run, monkeypatch, tmp_path):
    pytest.importorskip("trackio", reason="trackio not installed (pip install 'ftx-core[trackio]')")
    import sys

    store = tmp_path / "trackio"
    monkeypatch.setenv("TRACKIO_DIR", str(store))  # read when trackio is imported: and if it was
    for module in [m for name, m in sys.modules.items() if name.startswith("trackio")]:
        if isinstance(getattr(module, "TRACKIO_DIR", None), Path):
            monkeypatch.setattr(module, "TRACKIO_DIR", store)
    result = tiny_run("trackio")
    assert "trackio" in result.summary["trackers"]
    import trackio

    project = result.summary["trackers"]["trackio"].split()[2]
    logs = _trackio_logs(trackio, project, "ftx-tiny")
    losses = [(r["train/global_step"], r["train/loss"]) for r in logs if "train/loss" in r]
    assert [step for step, _ in losses] == list(range(1, STEPS + 1))
    facts = {k: v for row in logs for k, v in row.items() if k.startswith("ftx/")}
    for name in FTX_NUMBERS:
        assert f"ftx/{name}" in facts, name
    assert facts["ftx/eval_after"] == result.eval_after["score"]


def _trackio_logs(trackio, project, run):
    from trackio.sqlite_storage import SQLiteStorage

    return SQLiteStorage.get_logs(project=project, run=run)
