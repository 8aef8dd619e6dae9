"""Config loading, --set parsing, type coercion, aliases and did-you-mean errors."""

from __future__ import annotations

from pathlib import Path

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


def test_choice_values_match_whatever_their_case():
    """A GGUF type as llama.cpp writes it (Q8_0) is ftx's q8_0; an unknown one is still refused."""
    res = resolve(cfg.merge({}, {}, ["export.gguf=Q8_0", "model.dtype=Float32"]))
    assert res.config["export"]["gguf"] == "q8_0"
    assert res.config["model"]["dtype"] == "float32"
    with pytest.raises(BadInput, match=r"export\.gguf: 'Q4_K_M' is not one of"):
        resolve(cfg.merge({}, {}, ["export.gguf=Q4_K_M"]))


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


BOUNDED = [
    Option("r", "int", 16, "rank", min=1),
    Option("dropout", "float", 0.0, "p", min=0, max=1, max_exclusive=True),
    Option("alpha", "float", 32.0, "scale", min=0, min_exclusive=True),
]


@pytest.mark.parametrize(
    ("sets", "needles"),
    [
        (["train.learning_rate=-1e-4"], ["train.learning_rate: -0.0001", ">= 0"]),
        (["train.learning_rate=nan"], ["train.learning_rate: nan", ">= 0"]),
        (["train.max_steps=0"], ["train.max_steps: 0", "-1 or >= 1"]),
        (["train.max_steps=-5"], ["train.max_steps: -5", "-1 or >= 1"]),
        (["train.num_train_epochs=0"], ["train.num_train_epochs: 0.0", "> 0"]),
        (["train.per_device_train_batch_size=0"], ["per_device_train_batch_size: 0", ">= 1"]),
        (["train.gradient_accumulation_steps=0"], ["gradient_accumulation_steps: 0", ">= 1"]),
        (["train.adam_beta2=1"], ["train.adam_beta2: 1.0", "in [0, 1)"]),
        (["data.max_length=4"], ["data.max_length: 4", ">= 8"]),
        (["data.eval_limit=0"], ["data.eval_limit: 0", ">= 1"]),
        (["data.num_proc=0"], ["data.num_proc: 0", ">= 1"]),
        (["data.eval_max_new_tokens=0"], ["data.eval_max_new_tokens: 0", ">= 1"]),
        (["method.r=0"], ["method.r: 0", ">= 1"]),
        (["method.dropout=1"], ["method.dropout: 1.0", "in [0, 1)"]),
        (["method.alpha=0"], ["method.alpha: 0.0", "> 0"]),
    ],
)
def test_values_outside_their_range_name_key_value_range_and_fix(sets, needles):
    with pytest.raises(BadInput) as err:
        cfg.resolve(
            cfg.merge({}, {}, sets),
            declared_options=BOUNDED,
            plugin="p",
            plugin_train_defaults=None,
            device=CPU,
        )
    for needle in needles:
        assert needle in err.value.message
    assert "out of range" in err.value.message and err.value.hint


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), ("3", 3), (1, 1)])
def test_a_number_key_defaulting_to_auto_takes_auto_or_a_number(value, expected):
    res = cfg.resolve(
        cfg.merge({}, {}, [f"data.num_proc={value}"]),
        declared_options=[],
        plugin="p",
        plugin_train_defaults=None,
        device=CPU,
    )
    assert res.config["data"]["num_proc"] == expected


def test_a_number_key_defaulting_to_auto_names_both_on_a_bad_value():
    with pytest.raises(BadInput) as err:
        cfg.resolve(
            cfg.merge({}, {}, ["data.num_proc=many"]),
            declared_options=[],
            plugin="p",
            plugin_train_defaults=None,
            device=CPU,
        )
    assert err.value.message == "data.num_proc: expected auto or a number (int), got 'many'"
    assert err.value.hint == "--set data.num_proc=auto"


def test_values_inside_their_range_pass():
    sets = ["train.max_steps=-1", "train.max_steps=3", "data.eval_ratio=0", "method.dropout=0.1"]
    sets.append("train.learning_rate=0")  # leaves the weights as initialised: allowed
    res = cfg.resolve(
        cfg.merge({}, {}, sets),
        declared_options=BOUNDED,
        plugin="p",
        plugin_train_defaults=None,
        device=CPU,
    )
    assert res.train_args["max_steps"] == 3 and res.options["dropout"] == pytest.approx(0.1)


def test_option_range_is_described_and_its_default_must_lie_inside():
    r, dropout, alpha = BOUNDED
    assert (r.describe_range(), dropout.describe_range(), alpha.describe_range()) == (
        ">= 1",
        "in [0, 1)",
        "> 0",
    )
    assert Option("x", "int", 1, "x").describe_range() == ""
    with pytest.raises(ValueError, match="outside its range"):
        Option("r", "int", 0, "rank", min=1)


def test_explicit_fp16_wins_over_automatic_bf16():
    gpu = DeviceInfo(kind="cuda", bf16=True, count=1, name="GPU")
    res = cfg.resolve(
        cfg.merge({}, {}, ["train.fp16=true"]),
        declared_options=OPTS,
        plugin="p",
        plugin_train_defaults=None,
        device=gpu,
    )
    assert res.train_args["fp16"] is True and res.train_args["bf16"] is False


@pytest.mark.parametrize(
    ("sets", "needles"),
    [
        (["train.fp16=true"], ["train.fp16=true", "needs a GPU"]),
        (["train.fp16=true", "train.bf16=true"], ["train.bf16 and train.fp16 are both true"]),
    ],
)
def test_precision_the_device_cannot_do(sets, needles):
    with pytest.raises(BadInput) as err:
        resolve(cfg.merge({}, {}, sets))
    for needle in needles:
        assert needle in err.value.message


def test_missing_tracker_package_names_value_and_pip_install(monkeypatch):
    monkeypatch.setitem(cfg.TRACKERS, "tensorboard", ((("ftx_no_such_module",),), "tensorboard"))
    for value in ("tensorboard", "[none, tensorboard]"):
        with pytest.raises(BadInput) as err:
            resolve(cfg.merge({}, {}, [f"train.report_to={value}"]))
        assert "train.report_to: 'tensorboard'" in err.value.message
        assert "pip install tensorboard" in err.value.hint
    with pytest.raises(BadInput, match="did you mean 'tensorboard'"):
        resolve(cfg.merge({}, {}, ["train.report_to=tensorbord"]))
    assert resolve(cfg.merge({}, {}, ["train.report_to=none"])).train_args["report_to"] == "none"


def test_missing_eval_path_gets_its_own_hint(tmp_path):
    with pytest.raises(BadInput) as err:
        resolve(cfg.merge({}, {}, [f"data.eval={tmp_path / 'held.jsonl'}"]))
    assert err.value.message.startswith("data.eval:") and "held.jsonl" in err.value.message
    assert "data.eval" in err.value.hint and "--data" not in err.value.hint


@pytest.mark.parametrize(
    ("sets", "keys"),
    [
        (["train.dataloader_prefetch_factor=2"], ["train.dataloader_prefetch_factor=2"]),
        (["train.save_strategy=sometimes"], ["train.save_strategy='sometimes'"]),
        (
            ["train.lr_scheduler_type=reduce_lr_on_plateau", "train.eval_strategy=no"],
            ["train.lr_scheduler_type"],
        ),
    ],
)
def test_arguments_object_rejections_name_the_keys(sets, keys):
    with pytest.raises(BadInput) as err:
        resolve(cfg.merge({}, {}, sets))
    for key in keys:
        assert key in err.value.message
    assert "the trainer rejects this" in err.value.message


def test_training_arguments_are_built_without_side_effects(monkeypatch, tmp_path):
    from accelerate.state import PartialState

    def no_device_setup(*args, **kwargs):
        raise AssertionError("check_training_arguments set up the device")

    monkeypatch.setattr(PartialState, "__init__", no_device_setup)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    from trl import SFTConfig

    from ftx.trainer import SFT_FIXED_ARGUMENTS

    res = resolve(cfg.merge({}, {}, ["train.max_steps=3"]))
    args = cfg.check_training_arguments(res, CPU, (SFTConfig, SFT_FIXED_ARGUMENTS))
    assert args.max_steps == 3 and args.use_cpu and args.device.type == "cpu"
    assert args.remove_unused_columns is False and args.max_length is None
    assert not Path(args.output_dir).exists() and list(tmp_path.iterdir()) == []


def test_a_key_given_twice_is_an_error_naming_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_steps: 2\n  max_steps: 3\n")
    with pytest.raises(BadInput) as err:
        cfg.load_file(path)
    assert (
        f"{path} line 3" in err.value.message and "'max_steps' is given twice" in err.value.message
    )
    path.write_text("train:\n  max_steps: 2\nmethod:\n  max_steps: 3\n")  # other mappings: fine
    assert cfg.load_file(path)["method"] == {"max_steps": 3}


def test_an_unknown_section_in_set_gets_the_hint_that_fits():
    from ftx.config.sources import parse_set

    with pytest.raises(BadInput) as plugin_as_section:
        parse_set("qlora.method.r=8")
    assert plugin_as_section.value.hint.endswith("e.g. qlora:method.r")
    with pytest.raises(BadInput) as typo:
        parse_set("bogus.key=1")
    assert typo.value.hint == "the sections are model, data, train, method, objective, export"
