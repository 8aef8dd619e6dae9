"""Config loading, --set parsing, type coercion, aliases and did-you-mean errors."""

from __future__ import annotations

import pytest

from ftx import config as cfg
from ftx.context import DeviceInfo
from ftx.errors import BadInput
from ftx.options import Option

CPU = DeviceInfo(kind="cpu", bf16=True, count=0, name="CPU")
OPTS = [Option("r", "int", 16, "rank"), Option("mode", "str", "a", "m", choices=("a", "b"))]


def resolve(raw, defaults=None):
    return cfg.resolve(
        raw, declared_options=OPTS, plugin="p", plugin_train_defaults=defaults, device=CPU
    )


def test_set_values_are_coerced_to_the_field_type():
    raw = cfg.merge({}, {}, ["train.learning_rate=1e-4", "train.max_steps=7", "method.r=8"])
    res = resolve(raw)
    assert res.train_args["learning_rate"] == pytest.approx(1e-4)
    assert isinstance(res.train_args["learning_rate"], float)
    assert res.train_args["max_steps"] == 7 and res.options["r"] == 8


def test_precedence_core_plugin_file_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  per_device_train_batch_size: 2\n  learning_rate: 3e-4\n")
    raw = cfg.merge(cfg.load_file(path), {}, ["train.learning_rate=5e-4"])
    res = resolve(raw, defaults={"learning_rate": 1e-3, "weight_decay": 0.1})
    assert res.train_args["learning_rate"] == pytest.approx(5e-4)
    assert res.train_args["per_device_train_batch_size"] == 2
    assert res.train_args["weight_decay"] == pytest.approx(0.1)
    assert res.train_args["lr_scheduler_type"] == "cosine"


def test_seed_names_map_onto_installed_fields():
    raw = cfg.merge(
        {"train": {"model_max_length": 256, "warmup_ratio": 0.1, "evaluation_strategy": "no"}},
        {},
        [],
    )
    res = resolve(raw)
    assert res.config["data"]["max_length"] == 256
    assert res.train_args["warmup_steps"] == pytest.approx(0.1)
    assert res.train_args["eval_strategy"] == "no"


def test_yaml_1_1_booleans_stay_strings(tmp_path):
    raw = cfg.merge({}, {}, ["train.save_strategy=no", "train.bf16=false"])
    res = resolve(raw)
    assert res.train_args["save_strategy"] == "no" and res.train_args["bf16"] is False
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  save_strategy: no\n  logging_first_step: true\n")
    assert cfg.load_file(path)["train"] == {"save_strategy": "no", "logging_first_step": True}


def test_auto_values_resolve_from_device():
    res = resolve(cfg.merge({}, {}, []))
    assert res.train_args["bf16"] is True and res.train_args["activation_checkpointing"] is False


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["train.learnin_rate=1"], "did you mean 'learning_rate'"),
        (["train.max_steps=lots"], "train.max_steps: expected int"),
        (["data.max_lenght=5"], "did you mean 'max_length'"),
        (["method.rr=3"], "did you mean 'r'"),
        (["method.mode=c"], "method.mode: 'c' is not one of: a, b"),
        (["model.dtype=float8"], "model.dtype"),
        (["train.output_dir=x"], "use --output"),
        (["trian.max_steps=1"], "did you mean 'train'"),
        (["train.max_steps"], "expected section.key=value"),
        (["data.eval_ratio=1.5"], "eval_ratio"),
    ],
)
def test_bad_values_name_the_key(sets, needle):
    with pytest.raises(BadInput) as err:
        resolve(cfg.merge({}, {}, sets))
    assert needle in err.value.message


def test_file_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(BadInput, match="config file not found"):
        cfg.load_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_steps: [1\n")
    with pytest.raises(BadInput, match=r"bad.yaml line \d+: not valid YAML"):
        cfg.load_file(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("trainer:\n  max_steps: 1\n")
    with pytest.raises(BadInput, match="unknown section 'trainer'"):
        cfg.load_file(wrong)
