"""ftx.tied_embedding: a trained embedding tied to the head gets sparse gradients, with the same
summed gradient as the dense path; untied, frozen or multi-process cases are left alone."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ftx.tied_embedding import use_sparse_grad_for_tied_embedding  # noqa: E402


def tiny(model_dir, *, tied: bool):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    config.tie_word_embeddings = tied
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def grads_after_step(model, ids):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.fixture
def ids():
    return torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(3))


def test_tied_and_trained_gets_sparse_grads_with_the_same_sum(ftx_tiny_model, ids):
    model = tiny(ftx_tiny_model, tied=True)
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    dense = grads_after_step(model, ids)
    assert use_sparse_grad_for_tied_embedding(model)
    assert model.get_input_embeddings().sparse
    sparse = grads_after_step(model, ids)
    assert dense.keys() == sparse.keys()
    for name, grad in dense.items():
        assert not sparse[name].is_sparse, name  # what the optimizer and clipping see
        torch.testing.assert_close(sparse[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    optimizer.step()  # the fused CPU AdamW takes the summed (dense) gradient


def test_untied_frozen_or_distributed_is_left_dense(ftx_tiny_model, monkeypatch):
    assert not use_sparse_grad_for_tied_embedding(tiny(ftx_tiny_model, tied=False))
    frozen = tiny(ftx_tiny_model, tied=True)
    frozen.get_input_embeddings().weight.requires_grad_(False)
    assert not use_sparse_grad_for_tied_embedding(frozen)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not use_sparse_grad_for_tied_embedding(tiny(ftx_tiny_model, tied=True))
