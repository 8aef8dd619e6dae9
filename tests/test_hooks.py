"""One named test per hook (``test_hook_<name>_…``, required by tests/test_docs.py): each calls
the hook the way the host does (``ftx.plugins.call_first``/``call_all`` on a manager with the
core defaults and one plugin), on the tiny random model, without a whole run."""

from __future__ import annotations

import io

import pytest

from ftx.context import DeviceInfo, RunContext
from ftx.options import Option, resolve_options
from ftx.plugins import call_all, call_first, get_plugin, manager_for

CPU = DeviceInfo("cpu", False, 0, "CPU")
BUILTINS = ("fft", "sft", "qlora")


def manager(plugin: str | None, *, defaults: bool = True, objective: str | None = None):
    chosen = get_plugin(objective, kind="objective") if objective else None
    return manager_for(get_plugin(plugin) if plugin else None, objective=chosen, defaults=defaults)


def options_of(plugin: str, **given):
    declared, _ = call_first(manager(plugin, defaults=False), "method_options")
    return resolve_options(declared, given, plugin=plugin)


def make_run(tmp_path, model_path, plugin: str = "fft", **fields) -> RunContext:
    values = {
        "plugin": plugin,
        "config": {"model": {"trust_remote_code": False, "allow_pickle": False}},
        "options": {},
        "train_args": {},
        "model_path": model_path,
        "output_dir": tmp_path,
        "device": CPU,
        **fields,
    }
    return RunContext(**values)


@pytest.fixture
def tiny(tmp_path, ftx_tiny_model):
    """``(run, model, tokenizer)``: the tiny model loaded by the core's ``load_model``."""
    from transformers import AutoTokenizer

    run = make_run(tmp_path, ftx_tiny_model)
    model, _ = call_first(manager(None), "load_model", run=run)
    return run, model, AutoTokenizer.from_pretrained(str(ftx_tiny_model))


def test_hook_method_options_builtins_declare_valid_unique_options():
    for plugin in BUILTINS:
        declared, who = call_first(manager(plugin), "method_options")
        assert who == plugin
        assert declared and all(isinstance(o, Option) for o in declared)
        names = [o.name for o in declared]
        assert len(names) == len(set(names)), f"{plugin}: duplicate option names"
        assert set(resolve_options(declared, {}, plugin=plugin)) == set(names)
    # No implementation means no options (the core declares none).
    assert call_first(manager(None), "method_options") == (None, None)


def test_hook_train_defaults_plugins_set_their_learning_rate_and_the_core_none():
    rates = {}
    for plugin in BUILTINS:
        kwargs = {"device": CPU, "objective": "supervised"}
        defaults, who = call_first(manager(plugin), "train_defaults", **kwargs)
        assert who == plugin and isinstance(defaults, dict)
        rates[plugin] = defaults["learning_rate"]
    assert rates["qlora"] > rates["fft"]  # adapters on a small model need the larger step
    assert call_first(manager(None), "train_defaults", device=CPU, objective="supervised") == (
        None,
        None,
    )


def test_hook_train_defaults_answer_per_objective():
    """A method's rate was measured per objective: qlora's KTO step is smaller than its
    supervised one, and an objective a method knows nothing of gets no answer from it."""
    pm = manager("qlora")
    supervised, _ = call_first(pm, "train_defaults", device=CPU, objective="supervised")
    kto, _ = call_first(pm, "train_defaults", device=CPU, objective="kto")
    assert kto["learning_rate"] < supervised["learning_rate"]
    assert call_first(pm, "train_defaults", device=CPU, objective="someone-elses") == (None, None)


def test_hook_load_model_core_default_uses_the_run_dtype_and_attention(tmp_path, ftx_tiny_model):
    import torch

    run = make_run(tmp_path, ftx_tiny_model, dtype="bfloat16", attn_implementation="eager")
    model, who = call_first(manager("sft"), "load_model", run=run)
    assert who == "core"  # sft inherits the core's loading
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "eager"
    assert model.config.use_cache is False


def test_hook_select_trainable_sft_trains_only_the_chosen_block(tiny):
    run, model, _ = tiny
    run.options = options_of("sft", layers="last:1")
    selected, who = call_first(manager("sft"), "select_trainable", run=run, model=model)
    assert who == "sft"
    trainable = [n for n, p in selected.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n for n in trainable)
    # The core default trains everything again.
    everything, who = call_first(manager(None), "select_trainable", run=run, model=selected)
    assert who == "core" and all(p.requires_grad for p in everything.parameters())


def test_hook_training_arguments_fft_returns_engine_overrides_and_records_engine(tiny, monkeypatch):
    run, model, _ = tiny
    pm = manager("fft")
    run.options = options_of("fft")
    assert call_all(pm, "training_arguments", run=run, model=model) == [({}, "fft")]
    assert run.state["summary"]["engine"] == "single process × 1 on cpu"

    monkeypatch.setenv("WORLD_SIZE", "2")
    run.options = options_of("fft", fsdp="full_shard")
    [(overrides, _)] = call_all(pm, "training_arguments", run=run, model=model)
    assert overrides == {"ddp_find_unused_parameters": False}  # FSDP does not run on a CPU
    assert "accelerate runs FSDP only on GPUs" in run.state["summary"]["engine"]

    run.device = DeviceInfo("cuda", True, 2, "two GPUs")
    [(overrides, _)] = call_all(pm, "training_arguments", run=run, model=model)
    assert overrides["fsdp"] == "full_shard auto_wrap"
    assert overrides["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert run.state["summary"]["engine"].startswith("fsdp full_shard auto_wrap × 2")


def test_hook_build_trainer_supervised_gets_both_datasets_and_the_callbacks(tiny):
    from datasets import Dataset
    from transformers import TrainerCallback

    from ftx.data import PackingCollator

    run, model, tokenizer = tiny
    run.train_args = {"max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 3e-3}
    run.train_args |= {"report_to": "none", "disable_tqdm": True, "per_device_eval_batch_size": 2}
    row = {"input_ids": [1, 5, 9, 13, 20], "labels": [-100, -100, 9, 13, 20]}
    train, held_out = Dataset.from_list([row] * 4), Dataset.from_list([row] * 2)
    marker = TrainerCallback()
    trainer, who = call_first(
        manager("fft", objective="supervised"),
        "build_trainer",
        run=run,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_dataset=held_out,
        data_collator=PackingCollator(tokenizer.pad_token_id, padding_free=False),
        callbacks=[marker],
    )
    assert who == "supervised"  # the objective builds the trainer; fft overrides nothing here
    assert trainer.train_dataset is train and trainer.eval_dataset is held_out
    assert marker in trainer.callback_handler.callbacks
    assert trainer.args.learning_rate == 3e-3 and trainer.args.max_steps == 1
    assert trainer.args.output_dir == str(run.output_dir / "checkpoints")
    loss = trainer.evaluate()["eval_loss"]  # the held-out rows are usable as passed
    assert loss == loss and loss > 0


def test_hook_trainer_ready_qlora_keeps_adapter_weights_fp32(tmp_path, ftx_tiny_model):
    pytest.importorskip("bitsandbytes")
    import torch

    pm = manager("qlora")
    run = make_run(tmp_path, ftx_tiny_model, plugin="qlora", options=options_of("qlora", r=4))
    model, who = call_first(pm, "load_model", run=run)
    assert who == "qlora"
    model, _ = call_first(pm, "select_trainable", run=run, model=model)
    adapters = [p for p in model.parameters() if p.requires_grad]
    assert adapters
    for param in adapters:  # what TRL does to the adapters of a quantised model
        param.data = param.data.to(torch.bfloat16)
    answered = call_all(pm, "trainer_ready", run=run, model=model, trainer=None)
    assert [who for _, who in answered] == ["qlora"]
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert any(p.dtype == torch.uint8 for p in model.parameters())  # the base stays 4-bit


def test_hook_export_core_default_writes_model_on_the_main_process_only(
    tiny, tmp_path_factory, monkeypatch
):
    import torch
    from transformers import AutoModelForCausalLM

    run, model, tokenizer = tiny
    call = {"model": model, "tokenizer": tokenizer, "trainer": None}
    written, who = call_first(manager("sft"), "export", run=run, **call)
    assert who == "core" and written == {"model": str(run.output_dir / "model")}
    loaded = AutoModelForCausalLM.from_pretrained(written["model"])
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits)

    monkeypatch.setenv("RANK", "1")
    other = make_run(tmp_path_factory.mktemp("rank1"), run.model_path)
    assert call_first(manager("sft"), "export", run=other, **call) == ({}, "core")
    assert not (other.output_dir / "model").exists()


def test_hook_estimate_memory_builtins_answer_from_the_config_alone(ftx_tiny_model):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(ftx_tiny_model))
    trainable = {}
    for plugin in BUILTINS:
        estimate, who = call_first(
            manager(plugin, defaults=False),
            "estimate_memory",
            model_config=config,
            seq_len=64,
            batch_size=2,
            options=options_of(plugin),
            device=CPU,
            dtype="float32",
        )
        assert who == plugin
        assert estimate.total() > 0 and 0 < estimate.trainable_params <= estimate.total_params
        trainable[plugin] = estimate.trainable_params
    assert trainable["sft"] < trainable["fft"] and trainable["qlora"] < trainable["fft"]


def test_hook_train_defaults_are_merged_core_then_objective_then_method():
    answers = call_all(
        manager("qlora", objective="supervised"), "train_defaults", device=CPU, objective="dpo"
    )
    assert [who for _, who in answers][-1] == "qlora"  # the method's answer is merged last


def test_hook_objective_options_supervised_declares_none():
    # hook: objective_options
    assert call_first(manager("fft", objective="supervised"), "objective_options") == (None, None)


def test_hook_objective_traits_supervised_scores_exact_match_first():
    # hook: objective_traits
    traits, who = call_first(manager("fft", objective="supervised"), "objective_traits")
    assert who == "supervised" and traits.metrics[0] == "exact" and traits.reference == "none"


def test_hook_arguments_class_supervised_is_trls_sft_config_with_ftx_fixed_keys():
    # hook: arguments_class
    from trl import SFTConfig

    (cls, fixed), who = call_first(manager("fft", objective="supervised"), "arguments_class")
    assert who == "supervised" and issubclass(cls, SFTConfig)
    assert fixed["dataset_kwargs"] == {"skip_prepare_dataset": True} and fixed["max_length"] is None


def test_hook_load_rows_supervised_reads_conversations(ftx_tiny_data):
    # hook: load_rows
    pm = manager("fft", objective="supervised")
    rows, who = call_first(pm, "load_rows", path=str(ftx_tiny_data["train"]), fmt="auto")
    assert who == "supervised" and len(rows) == 48 and rows[0].messages


def test_hook_tokenize_rows_supervised_masks_all_but_the_answer(ftx_tiny_model, ftx_tiny_data):
    # hook: tokenize_rows
    from transformers import AutoTokenizer

    pm = manager("fft", objective="supervised")
    rows, _ = call_first(pm, "load_rows", path=str(ftx_tiny_data["train"]), fmt="auto")
    tokenizer = AutoTokenizer.from_pretrained(str(ftx_tiny_model))
    data = {"max_length": 64, "template": "auto", "train_on": "assistant"}
    tokenized, who = call_first(pm, "tokenize_rows", rows=rows[:4], tokenizer=tokenizer, data=data)
    assert who == "supervised" and len(tokenized.examples) == 4
    first = tokenized.examples[0]
    assert set(first) >= {"input_ids", "labels"} and -100 in first["labels"]


def test_hook_data_collator_supervised_reports_padded_or_padding_free(tiny):
    # hook: data_collator
    run, _, tokenizer = tiny
    run.config["data"] = {"packing": "true"}
    run.train_args = {"per_device_train_batch_size": 4}
    collator, who = call_first(
        manager("fft", objective="supervised"), "data_collator", run=run, tokenizer=tokenizer
    )
    assert who == "supervised" and run.state["summary"]["packing"] == "padding-free"
    batch = collator([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}] * 2)
    assert batch["input_ids"].shape[0] == 1  # two examples packed into one row


def test_hook_score_heldout_supervised_scores_exact_match(tiny, ftx_tiny_data):
    # hook: score_heldout
    run, model, tokenizer = tiny
    pm = manager("fft", objective="supervised")
    rows, _ = call_first(pm, "load_rows", path=str(ftx_tiny_data["eval"]), fmt="auto")
    run.config["data"] = {
        "eval_metric": "exact",
        "template": "auto",
        "eval_max_new_tokens": 2,
        "max_length": 64,
    }
    result, who = call_first(
        pm, "score_heldout", run=run, model=model, tokenizer=tokenizer, rows=rows
    )
    assert who == "supervised" and result["metric"] == "exact" and result["n"] == len(rows)
    assert 0.0 <= result["score"] <= 1.0


def test_run_report_collects_summary_facts_in_state():
    run = make_run(None, None)
    run.report(engine="ddp × 2")
    run.report(layers=4, engine="fsdp × 2")
    assert run.state["summary"] == {"engine": "fsdp × 2", "layers": 4}


def test_run_log_prints_on_the_main_process_only(monkeypatch):
    from rich.console import Console

    out = io.StringIO()
    run = make_run(None, None, console=Console(file=out, color_system=None))
    run.log("[bold]hello[/]")
    monkeypatch.setenv("RANK", "1")
    run.log("from rank 1")
    assert out.getvalue() == "hello\n"
    make_run(None, None).log("no console: nowhere")
