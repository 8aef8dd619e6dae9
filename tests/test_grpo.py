"""The grpo objective (ftx-grpo) through the real ``ftx run`` on tiny random models (fast tier):
a reward that favours one token is learnt; a third party's reward registered by entry point is
found and used; every built-in method runs under grpo (with and without the KL term); bad
input is refused before any model loads; a reward failing in training stops the run resumably.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftx.testing.commands import run_argv
from tests.fake_dists import make_dist

pytest.importorskip("ftx_grpo")

TRAIN = {
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 8,
    "learning_rate": 5e-3,
    "logging_steps": 1,
}
METHOD_SETS = {"sft": ["method.layers=last:1"], "qlora": ["method.r=4"], "fft": [], "ia3": []}
FAVOURED = "z"
"""The token the learning test's reward favours (one of the small tokenizer's 85)."""

FAVOUR_SOURCE = '''
def favour(prompts, completions, completion_ids, target, **kwargs):
    """Share of the completion's tokens equal to the row's target token id."""
    return [sum(t == g for t in ids) / max(1, len(ids)) for ids, g in zip(completion_ids, target)]
'''


def run_cli(args: list) -> object:
    from click.testing import CliRunner

    from ftx.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def grpo_run(method, model, data, out, *sets, train=None):
    args = run_argv(method, model=model, data=data, output=out, train=train or TRAIN, sets=sets)
    return run_cli([*args, "--objective", "grpo"])


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> dict[str, Path]:
    """The tiny task as prompt rows: ``train`` and ``eval`` (``reference`` = the answer)."""
    from ftx.testing.tiny import write_tiny_prompt_dataset as write

    root = tmp_path_factory.mktemp("prompts")
    return {
        "train": write(root / "train.jsonl", rows=8, seed=0),
        "eval": write(root / "eval.jsonl", rows=2, seed=1),
    }


@pytest.fixture(scope="module")
def favour_dist(tmp_path_factory) -> Path:
    """A third party's distribution registering ``favour`` in group ``ftx.rewards``."""
    root = tmp_path_factory.mktemp("reward-dist")
    return make_dist(
        root,
        "ftx-favour",
        "favour",
        "ftx_favour_mod",
        FAVOUR_SOURCE,
        group="ftx.rewards",
        attr="favour",
    )


def test_third_party_reward_is_listed(favour_dist, monkeypatch):
    monkeypatch.syspath_prepend(str(favour_dist))
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.output)}
    assert listed["favour"]["kind"] == "reward"
    assert listed["favour"]["distribution"] == "ftx-favour"
    assert listed["favour"]["status"] == "ok"
    assert {"exact", "format", "json_valid", "json_field", "length"} <= {
        n for n, p in listed.items() if p["kind"] == "reward"
    }


def test_a_reward_favouring_one_token_is_learnt(tmp_path, favour_dist, monkeypatch):
    """The entry-point reward ``favour`` (a third party's) scores the share of completion
    tokens equal to the row's ``target`` column (a column reaching the reward): on a random
    model with an 85-token vocabulary the mean reward starts near 1/85 and must rise clearly
    within 30 steps."""
    from transformers import AutoTokenizer

    from ftx.testing.tiny import make_tiny_model

    monkeypatch.syspath_prepend(str(favour_dist))
    model = make_tiny_model(tmp_path / "model", vocab_size=80, byte_alphabet=False)
    target = AutoTokenizer.from_pretrained(str(model)).convert_tokens_to_ids(FAVOURED)
    data = write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"prompt": f"say {w}", "target": target} for w in ("red", "cat", "one", "plum")],
    )
    train = {
        **TRAIN,
        "max_steps": 30,
        "per_device_train_batch_size": 8,
        "num_generations": 8,
        "learning_rate": 1e-2,
    }
    out = tmp_path / "run"
    result = grpo_run("fft", model, data, out, "objective.rewards=[favour]", train=train)
    assert result.exit_code == 0, result.output
    rows = metrics(out)
    assert all("rewards/favour/mean" in r for r in rows)
    first = sum(r["reward"] for r in rows[:3]) / 3
    last = sum(r["reward"] for r in rows[-3:]) / 3
    assert last > 0.2 and last > 5 * max(first, 0.01), (first, last)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rewards"] == ["favour"]
    assert (out / "reward.png").is_file() and (out / "loss.png").is_file()


@pytest.mark.parametrize("method", ["qlora", "sft", "fft", "ia3"])
def test_every_method_runs_under_grpo(method, tmp_path, ftx_tiny_model, prompts):
    out = tmp_path / "run"
    result = grpo_run(
        method,
        ftx_tiny_model,
        prompts["train"],
        out,
        "objective.rewards=[exact, format, length]",
        "objective.reward_weights=[1, 0.5, 0.1]",
        "objective.format_pattern=[a-z ]+",
        f"data.eval={prompts['eval']}",
        *METHOD_SETS[method],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["objective"] == "grpo"
    assert summary["reference"] == "none"  # beta defaults to 0
    assert summary["eval_before"]["metric"] == summary["eval_after"]["metric"] == "exact"
    assert summary["eval_after"]["n"] == 2
    rows = metrics(out)
    for key in ("reward", "rewards/exact/mean", "rewards/format/mean", "completions/mean_length"):
        assert key in rows[-1], key
    assert "kl" not in rows[-1]
    assert "reward" in result.output  # the progress line
    assert (out / "model" / "config.json").is_file()


@pytest.mark.parametrize(("method", "reference"), [("qlora", "adapters disabled"), ("fft", "copy")])
def test_beta_brings_the_kl_term_and_a_reference(
    method, reference, tmp_path, ftx_tiny_model, prompts
):
    out = tmp_path / "run"
    result = grpo_run(
        method,
        ftx_tiny_model,
        prompts["train"],
        out,
        "objective.rewards=[exact]",
        "train.beta=0.1",
        *METHOD_SETS[method],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["reference"] == reference
    assert all("kl" in row for row in metrics(out))


REWARD_FILES = {
    "signature": "def reward(prompts, completions):\n    return [0.0] * len(completions)\n",
    "count": "def reward(prompts, completions, completion_ids, **kw):\n    return [0.0]\n",
    "number": "def reward(prompts, completions, completion_ids, **kw):\n"
    "    return ['high'] * len(completions)\n",
    "raises": "def reward(prompts, completions, completion_ids, **kw):\n"
    "    raise KeyError('answer')\n",
    "syntax": "def reward(:\n",
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("none", "needs at least one reward"),
        ("unknown", "unknown reward 'exactt' (did you mean 'exact'?)"),
        ("module", "reward 'no_such_module:f': cannot import no_such_module"),
        ("signature", "has the wrong signature"),
        ("count", "returned 1 values for 8 completions for rows train.jsonl:1 to train.jsonl:8"),
        ("number", "returned str 'high' (completion 1), not a number"),
        ("raises", "failed on row train.jsonl:1 (called with an empty completion)"),
        ("syntax", "failed to import"),
        ("weights", "reward_weights has 2 weights for 1 rewards"),
        ("reference", "compares against a 'answer' column"),
    ],
)
def test_bad_rewards_exit_2_before_any_model_loads(
    case, expected, tmp_path, ftx_tiny_model, prompts
):
    sets = ["objective.rewards=[exact]"]
    if case in REWARD_FILES:
        path = tmp_path / f"{case}.py"
        path.write_text(REWARD_FILES[case])
        sets = [f"objective.rewards=[{path}]"]
    sets = {
        "none": [],
        "unknown": ["objective.rewards=[exactt]"],
        "module": ["objective.rewards=[no_such_module:f]"],
        "weights": [*sets, "objective.reward_weights=[1, 2]"],
        "reference": [*sets, "objective.reference_column=answer"],
    }.get(case, sets)
    out = tmp_path / "run"
    result = grpo_run("fft", ftx_tiny_model, prompts["train"], out, *sets)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert not out.exists()


def test_prompt_rows_with_an_answer_turn_are_refused(tmp_path, ftx_tiny_model):
    data = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "say red", "reference": "red"},
            {
                "messages": [
                    {"role": "user", "content": "say red"},
                    {"role": "assistant", "content": "red"},
                ]
            },
        ],
    )
    out = tmp_path / "run"
    result = grpo_run("fft", ftx_tiny_model, data, out, "objective.rewards=[exact]")
    assert result.exit_code == 2, result.output
    assert "p.jsonl, line 2" in result.output and "already ends with an answer" in result.output
    assert not out.exists()


def test_user_code_is_announced_once(tmp_path, ftx_tiny_model, prompts, capfd):
    from ftx.data.prompts import load_prompt_rows, prompt_example
    from ftx.rewards import check_rewards, load_rewards

    path = tmp_path / "mine.py"
    path.write_text(
        "def reward(prompts, completions, completion_ids, **kw):\n"
        "    return [1.0] * len(completions)\n"
    )
    rows = [prompt_example(r) for r in load_prompt_rows(prompts["train"])]
    for _ in range(2):
        check_rewards(load_rewards([str(path)]), rows, {})
    assert capfd.readouterr().err.count("runs your code") == 1


@pytest.mark.parametrize("gap", ["missing", "null"])
def test_a_row_without_its_reference_exits_2_naming_the_row(gap, tmp_path, ftx_tiny_model, prompts):
    """The exact reward must not read a row with no answer as the answer "" (which rewards an
    empty completion): every row is checked before any model loads, not only the first."""
    from ftx_grpo.rewards import exact

    with pytest.raises(ValueError, match="missing or null"):
        exact(["p", "q"], ["", "4"], [[], [1]], reference=[None, "4"])
    rows = [json.loads(line) for line in prompts["train"].read_text().splitlines()]
    if gap == "missing":
        del rows[4]["reference"]
    else:
        rows[4]["reference"] = None
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    result = grpo_run("fft", ftx_tiny_model, data, out, "objective.rewards=[exact]")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "reward 'exact' failed on row train.jsonl:5" in text, text
    assert "'reference' column, which is missing or null in this row" in text
    assert not out.exists()


FAILS_LATER = """
def reward(prompts, completions, completion_ids, trainer_state=None, **kw):
    if trainer_state is not None and trainer_state.global_step >= 2:
        raise ValueError("the judge is down")
    return [0.0] * len(completions)
"""


def test_a_reward_failing_in_training_exits_1_and_the_run_resumes(
    tmp_path, ftx_tiny_model, prompts
):
    reward = tmp_path / "flaky.py"
    reward.write_text(FAILS_LATER)
    out = tmp_path / "run"
    sets = [f"objective.rewards=[{reward}]", "train.save_steps=1"]
    result = grpo_run(
        "fft", ftx_tiny_model, prompts["train"], out, *sets, train=TRAIN | {"max_steps": 4}
    )
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"reward '{reward}' failed on row train.jsonl:" in text
    assert "the judge is down" in text and f"ftx run --resume --output {out}" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    reward.write_text(
        "def reward(prompts, completions, completion_ids, **kw):\n"
        "    return [0.0] * len(completions)\n"
    )
    resumed = run_cli(["run", "--resume", "--output", out])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 4


def test_data_check_reports_prompt_rows_and_their_columns(ftx_tiny_model, prompts):
    result = run_cli(["data", "check", prompts["train"], "--model", ftx_tiny_model, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kind"] == "prompts" and report["rows"] == 8
    assert report["columns"] == {"reference": 8}
    assert report["tokens"]["max"] > 0 and report["dropped"] == 0


def plan(ftx_cli, model, *args) -> dict:
    result = ftx_cli("plan", "--model", model, "--objective", "grpo", "--json", *args)
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)["methods"]}


def test_plan_counts_the_reference_only_with_beta_and_the_generation_batch(ftx_cli, ftx_tiny_model):
    without = plan(ftx_cli, ftx_tiny_model)
    assert without["fft"]["estimate"]["reference"] == 0
    with_kl = plan(ftx_cli, ftx_tiny_model, "--set", "train.beta=0.1")
    assert with_kl["fft"]["estimate"]["reference"] > 0  # a frozen copy
    assert with_kl["qlora"]["estimate"]["reference"] == 0  # adapters disabled
    many = plan(ftx_cli, ftx_tiny_model, "--set", "train.steps_per_generation=256")
    for method in ("fft", "qlora"):
        assert many[method]["estimate"]["activations"] > without[method]["estimate"]["activations"]
    refused = ftx_cli("plan", "--model", ftx_tiny_model, "--set", "train.beta=0.1")
    assert refused.exit_code == 2  # supervised's estimate does not read it


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("train.num_generations=1", "num_generations"),
        ("train.num_generations=3", "num_generations"),  # does not divide the batch of 4
        ("train.loss_type=ppo", "loss_type 'ppo' is not a loss"),
        ("train.beta=-1", "beta=-1.0 must be >= 0.0"),
        ("train.use_vllm=true", "pip install vllm"),
    ],
)
def test_bad_grpo_arguments_exit_2(setting, expected, tmp_path, ftx_tiny_model, prompts):
    import importlib.util

    if "vllm" in setting and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    out = tmp_path / "run"
    result = grpo_run(
        "fft", ftx_tiny_model, prompts["train"], out, "objective.rewards=[exact]", setting
    )
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert not out.exists()


def test_plugins_show_describes_a_reward():
    result = run_cli(["plugins", "show", "exact", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["kind"] == "reward" and "reference" in shown["doc"]
