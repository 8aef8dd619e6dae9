"""ftx.lora_forward: PEFT's plain LoRA layers add their update in one addmm, with the same
outputs and gradients as PEFT's own forward, and fall back to it beyond the plain case."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from ftx.lora_forward import use_lean_forward  # noqa: E402


def lora_model(model_dir, *, four_bit: bool, dropout: float = 0.0, seed: int = 0):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs = {}
    if four_bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
        )
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kwargs)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear")
    model = get_peft_model(base, config)
    for name, param in model.named_parameters():  # lora_B starts at zero: make it count
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    return model


def loss_and_grads(model, ids, *, autocast: bool = False):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids).logits
    loss = logits.float().log_softmax(-1)[..., 0].mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.fixture
def ids():
    return torch.randint(0, 100, (2, 9), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("four_bit", [False, True], ids=["fp32-base", "nf4-base"])
def test_same_outputs_and_gradients_as_peft(ftx_tiny_model, ids, four_bit):
    model = lora_model(ftx_tiny_model, four_bit=four_bit)
    logits, grads = loss_and_grads(model, ids)
    layers = sum(1 for n, _ in model.named_modules() if n.endswith(".lora_A"))
    assert use_lean_forward(model) == layers > 0
    assert use_lean_forward(model) == 0  # already lean: not wrapped twice
    lean_logits, lean_grads = loss_and_grads(model, ids)
    torch.testing.assert_close(lean_logits, logits, rtol=1e-5, atol=1e-5)
    assert lean_grads.keys() == grads.keys() and any("lora_A" in n for n in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(lean_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_under_bf16_autocast_the_dtype_and_values_follow_peft(ftx_tiny_model, ids):
    model = lora_model(ftx_tiny_model, four_bit=False)
    logits, grads = loss_and_grads(model, ids, autocast=True)
    use_lean_forward(model)
    lean_logits, lean_grads = loss_and_grads(model, ids, autocast=True)
    assert lean_logits.dtype == logits.dtype
    torch.testing.assert_close(lean_logits, logits, rtol=0.05, atol=0.05)
    for name, grad in grads.items():
        assert (
            torch.nn.functional.cosine_similarity(
                lean_grads[name].flatten().float(), grad.flatten().float(), dim=0
            )
            > 0.99
        ), name


def test_disabled_adapters_give_the_base_model(ftx_tiny_model, ids):
    model = lora_model(ftx_tiny_model, four_bit=False)
    with model.disable_adapter():
        base = model(input_ids=ids).logits
    use_lean_forward(model)
    with torch.no_grad(), model.disable_adapter():
        torch.testing.assert_close(model(input_ids=ids).logits, base)
    with torch.no_grad():
        assert not torch.allclose(model(input_ids=ids).logits, base)  # the adapter is back


def test_only_the_plain_case_takes_the_lean_path(ftx_tiny_model):
    from peft.tuners.lora import LoraLayer

    from ftx.lora_forward import _plain_adapter

    def first_layer(model):
        return next(m for m in model.modules() if isinstance(m, LoraLayer))

    plain = first_layer(lora_model(ftx_tiny_model, four_bit=False))
    assert _plain_adapter(plain, (), {}) == "default"
    assert _plain_adapter(plain, (), {"adapter_names": ["default"]}) is None
    plain.merged_adapters.append("default")  # what merge() records
    assert _plain_adapter(plain, (), {}) is None
    with_dropout = first_layer(lora_model(ftx_tiny_model, four_bit=False, dropout=0.1))
    assert _plain_adapter(with_dropout, (), {}) is None
