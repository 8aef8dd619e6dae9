"""ftx's lean CPU loss (ftx.trainer) against transformers' own causal-LM loss in fp32."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

IGNORE = -100


def _trainer(model_dir, tmp_path, model=None):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from ftx.trainer import trainer_class

    model = model or AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to="none",
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        max_length=None,
    )
    rows = Dataset.from_list([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])
    model.train()
    return trainer_class()(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


def _padded_batch(vocab: int, seed: int = 0):
    """Three rows of different lengths, right-padded; the first half of each row is 'prompt'."""
    gen = torch.Generator().manual_seed(seed)
    lengths = [11, 7, 14]
    width = max(lengths)
    ids = torch.zeros((3, width), dtype=torch.long)
    mask = torch.zeros((3, width), dtype=torch.long)
    labels = torch.full((3, width), IGNORE)
    for i, n in enumerate(lengths):
        row = torch.randint(3, vocab, (n,), generator=gen)
        ids[i, :n], mask[i, :n] = row, 1
        labels[i, n // 2 : n] = row[n // 2 :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _reference(model, batch):
    """transformers' loss: fp32 logits of every position, mean cross-entropy of the shifted
    labels; returns (loss, gradients)."""
    model.zero_grad(set_to_none=True)
    loss = model(**batch, use_cache=False).loss
    loss.backward()
    return float(loss.detach()), _grads(model)


def _ftx(trainer, batch, **kwargs):
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(trainer.model, dict(batch), **kwargs)
    loss.backward()
    return float(loss.detach()), _grads(trainer.model)


def _assert_same_grads(ours, ref, tol=1e-5):
    assert ours.keys() == ref.keys()
    for name, grad in ref.items():
        torch.testing.assert_close(ours[name], grad, rtol=tol, atol=tol, msg=name)


def test_lean_loss_equals_transformers_loss_and_gradients(ftx_tiny_model, tmp_path):
    trainer = _trainer(ftx_tiny_model, tmp_path)
    batch = _padded_batch(trainer.model.config.vocab_size)
    ref_loss, ref_grads = _reference(trainer.model, batch)
    loss, grads = _ftx(trainer, batch)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    _assert_same_grads(grads, ref_grads)
    assert set(trainer._metrics["train"]) >= {"mean_token_accuracy", "num_tokens"}
    assert 0.0 <= trainer._metrics["train"]["mean_token_accuracy"][-1] <= 1.0
    assert trainer._metrics["train"]["num_tokens"] == [int(batch["attention_mask"].sum())]


def test_lean_loss_divides_by_num_items_in_batch(ftx_tiny_model, tmp_path):
    """Under gradient accumulation the Trainer passes the trained-token count of the whole
    accumulated batch: the loss is this batch's summed NLL over it."""
    trainer = _trainer(ftx_tiny_model, tmp_path)
    batch = _padded_batch(trainer.model.config.vocab_size, seed=1)
    trained = int((batch["labels"][:, 1:] != IGNORE).sum())
    mean_loss, _ = _ftx(trainer, batch)
    loss, _ = _ftx(trainer, batch, num_items_in_batch=torch.tensor(4 * trained))
    assert loss == pytest.approx(mean_loss / 4, rel=1e-6)


def test_lean_loss_on_a_padding_free_row(ftx_tiny_model, tmp_path):
    """Packed examples (position_ids restart, first label of each example ignored) score
    the same as the padded batch they came from."""
    from ftx.data.collate import PackingCollator

    trainer = _trainer(ftx_tiny_model, tmp_path)
    padded = _padded_batch(trainer.model.config.vocab_size, seed=2)
    rows = [
        {"input_ids": ids[m.bool()].tolist(), "labels": lab[m.bool()].tolist()}
        for ids, lab, m in zip(
            padded["input_ids"], padded["labels"], padded["attention_mask"], strict=True
        )
    ]
    packed = PackingCollator(pad_token_id=0, padding_free=True)(rows)
    loss_packed, grads_packed = _ftx(trainer, packed)
    loss_padded, grads_padded = _ftx(trainer, padded)
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    _assert_same_grads(grads_packed, grads_padded, tol=1e-4)


def test_lean_loss_with_lora_and_bf16_autocast(ftx_tiny_model, tmp_path):
    """PEFT-wrapped model under bf16 autocast: the head still projects only trained positions,
    in fp32, so the loss stays within bf16 rounding of the fp32 reference."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(ftx_tiny_model, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear"))
    trainer = _trainer(ftx_tiny_model, tmp_path, model=model)
    batch = _padded_batch(base.config.vocab_size, seed=3)
    ref_loss, ref_grads = _reference(model, batch)
    loss, grads = _ftx(trainer, batch)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    _assert_same_grads(grads, ref_grads)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_bf16, _ = _ftx(trainer, batch)
    assert loss_bf16 == pytest.approx(ref_loss, rel=2e-2)


def test_the_head_is_whole_again_after_the_loss(ftx_tiny_model, tmp_path):
    trainer = _trainer(ftx_tiny_model, tmp_path)
    batch = _padded_batch(trainer.model.config.vocab_size, seed=4)
    _ftx(trainer, batch)
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"]).logits
    assert logits.shape == (*batch["input_ids"].shape, trainer.model.config.vocab_size)
    assert not trainer.model.get_output_embeddings()._forward_pre_hooks
    assert not trainer.model.get_output_embeddings()._forward_hooks


def test_a_batch_without_trained_tokens_gives_a_zero_loss_that_backpropagates(
    ftx_tiny_model, tmp_path
):
    trainer = _trainer(ftx_tiny_model, tmp_path)
    batch = _padded_batch(trainer.model.config.vocab_size, seed=5)
    batch["labels"].fill_(IGNORE)
    loss, grads = _ftx(trainer, batch)
    assert loss == 0.0
    assert all(bool((g == 0).all()) for g in grads.values())


def test_the_trainer_keeps_each_steps_grad_norm_for_the_guard(ftx_tiny_model, tmp_path):
    """ftx's trainer leaves the total gradient norm it computed (to clip and log) for
    FiniteGuard, so the guard need not compute it again."""
    trainer = _trainer(ftx_tiny_model, tmp_path)
    model = trainer.model
    _ftx(trainer, _padded_batch(model.config.vocab_size))
    expected = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    norm = trainer._get_grad_norm(model)
    assert trainer.step_grad_norm is norm
    torch.testing.assert_close(torch.as_tensor(norm, dtype=expected.dtype), expected)


def test_the_head_on_trained_positions_traces_under_torch_compile():
    """``train.torch_compile=true`` traces the head with dynamo: the fp32 projection of the
    selected positions must be one ``with`` block it can follow (a context entered in one hook
    and left in another failed there), and the head is left as it was."""
    from ftx.trainer import head_on_positions

    head = torch.nn.Linear(8, 5)
    hidden = torch.randn(2, 3, 8)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    compiled = torch.compile(lambda h: head(h), backend="eager")  # dynamo, without inductor
    with torch.autocast("cpu", dtype=torch.bfloat16), head_on_positions(head, mask):
        logits = compiled(hidden)
    assert logits.dtype == torch.float32 and logits.shape == (4, 5)
    torch.testing.assert_close(logits, head(hidden[mask]))
    assert "forward" not in vars(head)
