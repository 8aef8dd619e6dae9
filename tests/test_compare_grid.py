"""``ftx compare --grid/--seeds``: grid expansion, the compare directory's spec, the report's
intervals and "within noise" pick, the report files, and every bad input (nothing trains here;
``test_compare_resume.py`` trains)."""

from __future__ import annotations

import json
import re

import pytest

from ftx.compare_dir import cell_state, check_directory, compare_spec
from ftx.compare_grid import expand, parse_axis, parse_grid, split_values
from ftx.compare_report import write_report
from ftx.compare_stats import Estimate, estimate, pick, wilson
from ftx.errors import BadInput
from ftx.runner.base_scores import shared_score

DECLARED = {"fft": {"fsdp"}, "sft": {"layers"}, "qlora": {"r", "target_modules"}}


def test_every_plugin_runs_every_value_that_applies_to_it_and_the_rest_once():
    axes = parse_grid(["train.learning_rate=1e-4,3e-4,1e-3", "method.r=8,32"])
    cells = expand(["fft", "sft", "qlora"], axes, DECLARED)
    names = [c.name for c in cells]
    assert names == [
        "fft/learning_rate=1e-4",
        "fft/learning_rate=3e-4",
        "fft/learning_rate=1e-3",
        "sft/learning_rate=1e-4",
        "sft/learning_rate=3e-4",
        "sft/learning_rate=1e-3",
        *[f"qlora/learning_rate={lr},r={r}" for lr in ("1e-4", "3e-4", "1e-3") for r in (8, 32)],
    ]  # method.r does not apply to fft and sft: 3 cells each, not 6
    qlora = cells[-1]
    assert qlora.sets() == ["train.learning_rate=1e-3", "method.r=32"]
    assert qlora.grid_values == {"train.learning_rate": "1e-3", "method.r": "32"}
    assert cells[0].sets() == ["train.learning_rate=1e-4"]


def test_scoped_axes_seeds_and_a_plugin_no_axis_reaches():
    axes = parse_grid(["qlora:method.r=4,8"])
    cells = expand(["fft", "qlora"], axes, DECLARED, seeds=2, seed_base=7)
    assert [c.name for c in cells] == [
        "fft/seed=7",
        "fft/seed=8",
        "qlora/r=4,seed=7",
        "qlora/r=4,seed=8",
        "qlora/r=8,seed=7",
        "qlora/r=8,seed=8",
    ]
    assert cells[3].sets() == ["qlora:method.r=4", "train.seed=8"]
    assert cells[3].group == "qlora/r=4"
    assert [c.name for c in expand(["fft", "qlora"], [], DECLARED)] == ["fft", "qlora"]


def test_values_are_split_outside_brackets_and_typed_as_set_types_them():
    assert split_values("[q_proj,v_proj],all-linear") == ["[q_proj,v_proj]", "all-linear"]
    axis = parse_axis("method.target_modules=[q_proj,v_proj],all-linear")
    assert axis.values == (["q_proj", "v_proj"], "all-linear")
    assert parse_axis("method.r=8,32").values == (8, 32)
    cells = expand(["qlora"], [axis], DECLARED)
    assert cells[0].name == "qlora/target_modules=_q_proj,v_proj_"  # a safe directory name


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        (["train.learning_rate="], "empty value"),
        (["train.learning_rate=1e-4,,3e-4"], "empty value"),
        (["train.learning_rate"], "expected [PLUGIN:]section.key=v1,v2"),
        (["learning_rate=1e-4"], "--grid 'learning_rate=1e-4'"),
        (["trian.learning_rate=1e-4"], "unknown section 'trian'"),
        (["method.r=8,8"], "repeated"),
        (["train.learning_rate=1e-4,0.0001"], "repeated"),  # one number, two spellings
        # A value-less key: the grid's own syntax once, quoting the whole expression.
        (["=1,2"], "--grid '=1,2': expected [PLUGIN:]section.key=v1,v2,…, e.g. "),
        (["method.r=8", "method.r=16"], "already a grid axis"),
    ],
)
def test_malformed_grids_are_bad_input(grid, words):
    with pytest.raises(BadInput) as err:
        expand(["qlora"], parse_grid(grid), DECLARED)
    assert words in err.value.message
    assert err.value.message.count("e.g.") <= 1  # the syntax once, not the --set's within it


def test_a_key_no_compared_plugin_accepts_is_bad_input_naming_it():
    with pytest.raises(BadInput) as err:
        expand(["fft", "sft"], parse_grid(["method.r=8,32"]), DECLARED)
    assert err.value.message.startswith("--grid method.r") and "fft, sft" in err.value.message
    assert "=V1,V2" in err.value.hint
    with pytest.raises(BadInput, match="not compared"):
        expand(["fft"], parse_grid(["qlora:method.r=8"]), DECLARED)
    with pytest.raises(BadInput, match="both set"):
        expand(["qlora"], parse_grid(["method.r=8", "qlora:method.r=16"]), DECLARED)
    with pytest.raises(BadInput, match="--seeds"):
        expand(["fft"], parse_grid(["train.seed=1,2"]), DECLARED, seeds=2)


def test_the_spec_tells_this_compare_from_another(tmp_path):
    cells = expand(["fft"], [], DECLARED)
    ident = dict(
        plugins=["fft"],
        grid=[],
        seeds=1,
        sets=[],
        objective=None,
        model="m",
        data=None,
        config=None,
        forgetting=False,
    )
    spec = compare_spec(cells, **ident)
    out = tmp_path / "cmp"
    assert check_directory(out, spec, overwrite=False) == "new"
    out.mkdir()
    (out / "compare.json").write_text(json.dumps(spec))
    assert check_directory(out, spec, overwrite=False) == "continue"
    assert check_directory(out, spec, overwrite=True) == "replace"  # start it afresh
    other = compare_spec(cells, **{**ident, "grid": ["train.learning_rate=1e-4,1e-3"]})
    with pytest.raises(BadInput) as err:
        check_directory(out, other, overwrite=False)
    assert "holds another compare" in err.value.message and "grid ([] ->" in err.value.message
    assert "--overwrite" in err.value.hint and "--output" in err.value.hint
    assert check_directory(out, other, overwrite=True) == "replace"
    (out / "compare.json").unlink()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BadInput, match="holds no ftx compare"):
        check_directory(out, spec, overwrite=False)


def test_the_spec_knows_files_by_where_they_are_not_how_they_were_spelled(tmp_path, monkeypatch):
    """The same files named from elsewhere continue the compare; files of the same names in
    another working directory are another compare (they were once mixed into one report)."""
    cells = expand(["fft"], [], DECLARED)
    here, there = tmp_path / "here", tmp_path / "there"
    for folder in (here, there):
        (folder / "m").mkdir(parents=True)
        (folder / "train.jsonl").write_text("{}\n")
        (folder / "held.jsonl").write_text("{}\n")
    ident = dict(
        plugins=["fft"], grid=[], seeds=1, sets=["data.eval=held.jsonl", "train.max_steps=2"],
        objective=None, model="m", data="train.jsonl", config=None, forgetting=False,
    )  # fmt: skip
    out = tmp_path / "cmp"
    out.mkdir()
    monkeypatch.chdir(here)
    spec = compare_spec(cells, **ident)
    assert (
        spec["model"] == str(here / "m") and spec["sets"][0] == f"data.eval={here / 'held.jsonl'}"
    )
    (out / "compare.json").write_text(json.dumps(spec))
    spelled_otherwise = {**ident, "model": str(here / "m"), "data": "./train.jsonl"}
    assert check_directory(out, compare_spec(cells, **spelled_otherwise), overwrite=False) == (
        "continue"
    )
    monkeypatch.chdir(there)
    with pytest.raises(BadInput, match=r"differs in sets .* model .* data "):
        check_directory(out, compare_spec(cells, **ident), overwrite=False)
    # A spec written before paths were recorded absolute: its relative names, read from the
    # directory the compare is run in again, are the same files.
    (out / "compare.json").write_text(json.dumps({**spec, "model": "m", "data": "train.jsonl"}))
    monkeypatch.chdir(here)
    assert check_directory(out, compare_spec(cells, **ident), overwrite=False) == "continue"


def test_cell_states(tmp_path):
    run = tmp_path / "run"
    assert cell_state(run) == "new"
    run.mkdir()
    (run / "summary.json").write_text('{"status": "finished"}')
    assert cell_state(run) == "finished"
    (run / "summary.json").write_text('{"status": "interrupted"}')
    (run / "config.yaml").write_text("plugin: fft\n")
    assert cell_state(run) == "restart"  # no checkpoint to continue from
    (run / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3}')
    assert cell_state(run) == "resume"
    (run / "summary.json").write_text('{"status": "failed"}')
    assert cell_state(run) == "restart"


def test_a_shared_base_score_is_computed_once(tmp_path):
    calls = []

    def score():
        calls.append(1)
        return {"metric": "exact", "score": 0.25, "n": 8}

    path = tmp_path / "base-scores.json"
    assert shared_score(path, "k", score) == ({"metric": "exact", "score": 0.25, "n": 8}, False)
    assert shared_score(path, "k", score) == ({"metric": "exact", "score": 0.25, "n": 8}, True)
    assert shared_score(path, "other", score)[1] is False
    assert len(calls) == 2
    assert shared_score(None, "k", score)[1] is False and len(calls) == 3


def test_intervals():
    one = estimate([0.5], count=20)
    assert one.kind == "wilson" and (one.low, one.high) == pytest.approx(wilson(0.5, 20))
    assert one.low == pytest.approx(0.2993, abs=1e-3) and one.high == pytest.approx(
        0.7007, abs=1e-3
    )
    three = estimate([0.5, 0.6, 0.7])
    assert three.kind == "t" and three.n == 3
    assert (three.high - three.mean) == pytest.approx(4.303 * 0.1 / 3**0.5, rel=1e-3)
    assert estimate([0.5, 0.6, 0.7], count=1000).kind == "t"  # the seeds' spread is wider
    agreeing = estimate([0.6, 0.6, 0.6], count=20)  # seeds agree; 20 held-out rows do not
    assert agreeing.kind == "t+wilson" and (agreeing.low, agreeing.high) == wilson(0.6, 20)
    assert estimate([2.5]).low is None  # one seed of a loss: no interval
    assert estimate([None]) is None


def test_pick_names_a_winner_only_when_no_interval_overlaps():
    a, b = Estimate(0.9, 3, 0.85, 0.95, "t"), Estimate(0.7, 3, 0.65, 0.75, "t")
    assert pick({"a": a, "b": b})["best"] == "a"
    close = Estimate(0.88, 3, 0.80, 0.96, "t")
    verdict = pick({"a": a, "b": b, "c": close})
    assert verdict["best"] is None and verdict["tied"] == ["a", "c"]
    assert verdict["text"].startswith("within noise: a, c")
    assert pick({"a": a, "b": b}, higher=False)["best"] == "b"
    assert pick({"x": None})["text"] == "no score measured"
    bare = pick({"a": Estimate(2.0, 1), "b": Estimate(3.0, 1)}, higher=False)
    assert bare["best"] == "a" and "no interval" in bare["text"]


def _fake_cell(out, name, plugin, *, after, retention, drift, memory, seed=None):
    run = out / name
    run.mkdir(parents=True)
    summary = {
        "status": "finished",
        "plugin": plugin,
        "objective": "supervised",
        "trainable_params": 100,
        "total_params": 1000,
        "peak_memory_bytes": memory,
        "tokens_per_s": 50.0,
        "wall_time_s": 12.0,
        "eval_before": {"metric": "exact", "score": 0.1, "n": 40},
        "eval_after": {"metric": "exact", "score": after, "n": 40},
        "forgetting": {
            "retention": retention,
            "retention_kept": 0,
            "retention_base_correct": 30,
            "questions": 50,
            "drift_nats": drift,
            "drift_tokens": 500,
            "seconds": 1.0,
        },
    }
    (run / "summary.json").write_text(json.dumps(summary))
    lines = [json.dumps({"step": s, "loss": 3.0 - 0.1 * s - after}) for s in range(1, 6)]
    (run / "metrics.jsonl").write_text("\n".join(lines))
    return {
        "name": name,
        "plugin": plugin,
        "group": re.sub(r"[/,]seed=\d+$", "", name),
        "seed": seed,
    }


def test_report_from_run_directories_md_and_self_contained_html(tmp_path):
    out = tmp_path / "cmp"
    cells = []
    for seed, (fa, qa) in zip(
        (42, 43, 44), ((0.80, 0.50), (0.82, 0.52), (0.84, 0.49)), strict=True
    ):
        cells.append(
            _fake_cell(
                out,
                f"fft/seed={seed}",
                "fft",
                after=fa,
                retention=0.6,
                drift=0.3,
                memory=4 * 2**30,
                seed=seed,
            )
        )
        cells.append(
            _fake_cell(
                out,
                f"qlora/r=8,seed={seed}",
                "qlora",
                after=qa,
                retention=0.9 + seed / 1000,
                drift=0.05,
                memory=2**30,
                seed=seed,
            )
        )
    cells[1]["grid"] = cells[3]["grid"] = cells[5]["grid"] = {"method.r": "8"}
    spec = {"ftx_compare": 1, "seeds": 3, "cells": cells}
    text = write_report(out, spec)["markdown"]
    fft_row = next(line for line in text.splitlines() if line.startswith("| fft |"))
    assert "0.100 → 0.820 [0.67, 0.91] (n=3 seeds, t widened to Wilson n=40)" in fft_row
    assert "0.600 [0.42, 0.75] (n=3 seeds, t widened to Wilson n=30)" in fft_row
    assert "0.300 ± 0.000 (n=3 seeds, t)" in fft_row and "4.00 GiB" in fft_row
    qlora_row = next(line for line in text.splitlines() if line.startswith("| qlora |"))
    assert "method.r=8" in qlora_row and "0.050" in qlora_row
    assert "best task score (held-out exact after): fft: 0.820" in text
    # 0.82/4 GiB = 0.205 per GiB against 0.50/1 GiB: qlora, and its interval is apart
    assert "best score per GiB of peak memory: qlora/r=8" in text
    assert "least forgetting (highest retention): qlora/r=8" in text
    assert "mean over seeds ± the 95% t-interval (n = seeds), widened to the 95% Wilson" in text
    page = (out / "compare.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2  # loss curves, score vs retention
    assert not re.search(r"(src|href)=\"(?!data:)", page) and "http" not in page
    assert (out / "compare.png").is_file() and (out / "compare-forgetting.png").is_file()

    # seeds that overlap: the recommendation says "within noise" instead of a winner
    for seed, score in zip((42, 43, 44), (0.45, 0.60, 0.52), strict=True):
        summary = json.loads((out / f"qlora/r=8,seed={seed}" / "summary.json").read_text())
        summary["eval_after"]["score"] = score + 0.3
        (out / f"qlora/r=8,seed={seed}" / "summary.json").write_text(json.dumps(summary))
    text = write_report(out, spec)["markdown"]
    best = next(line for line in text.splitlines() if line.startswith("- best task score"))
    assert "within noise: qlora/r=8, fft" in best  # qlora's mean is higher, not apart


def test_a_report_without_forgetting_shows_dashes(tmp_path):
    out = tmp_path / "cmp"
    cell = _fake_cell(out, "fft", "fft", after=0.5, retention=None, drift=None, memory=2**30)
    summary = json.loads((out / "fft" / "summary.json").read_text())
    del summary["forgetting"]
    (out / "fft" / "summary.json").write_text(json.dumps(summary))
    text = write_report(out, {"ftx_compare": 1, "seeds": 1, "cells": [cell]})["markdown"]
    row = next(line for line in text.splitlines() if line.startswith("| fft |"))
    assert row.endswith("| — | — |") and "[0.35, 0.65] (1 seed, Wilson n=40)" in row
    assert "least forgetting: not measured" in text
    assert not (out / "compare-forgetting.png").exists()


def test_the_python_api_takes_the_grid_as_a_dict(tmp_path):
    import ftx
    from ftx.api import grid_exprs

    assert grid_exprs({"train.learning_rate": [1e-4, 3e-4], "qlora:method.r": [8, 32]}) == [
        "train.learning_rate=0.0001,0.0003",
        "qlora:method.r=8,32",
    ]
    with pytest.raises(BadInput, match="expected a list of values"):
        ftx.compare(["fft"], grid={"train.learning_rate": 1e-4}, output=tmp_path / "a")
    with pytest.raises(BadInput, match=r"--grid method\.r: no compared plugin declares"):
        ftx.compare(["fft", "sft"], grid={"method.r": [8]}, forgetting=False, output=tmp_path / "b")
    assert not list(tmp_path.iterdir())
