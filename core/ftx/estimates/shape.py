"""The dimensions of a decoder-only transformer that its memory depends on, read from a config.

Works from a ``transformers`` config or any object with the same attribute names (a parsed
``config.json``); no weights, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ftx.errors import BadInput


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that memory depends on.

    ``gated_mlp``: gate/up/down projections (Llama, Mistral, Qwen, Gemma …) instead of up/down
    (GPT-2, GPT-NeoX, OPT, Phi-2 …). ``biases``: ``none``, ``qkv`` (Qwen2) or ``all`` (GPT-2
    family: every linear). ``norm_params``: parameters per norm per feature (1 for RMSNorm,
    2 for LayerNorm with bias). ``experts``/``experts_per_token``: mixture-of-experts MLPs
    (each expert has ``intermediate`` features).
    """

    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    gated_mlp: bool = True
    biases: str = "none"
    norm_params: int = 1
    position_embeddings: int = 0
    experts: int = 1
    experts_per_token: int = 1

    @property
    def q_dim(self) -> int:
        """Width of the query projection's output (``heads * head_dim``)."""
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the key and of the value projection's output (``kv_heads * head_dim``)."""
        return self.kv_heads * self.head_dim

    def block_linears(self) -> list[tuple[str, int, int, int]]:
        """``(name, in_features, out_features, count)`` for the linears of one decoder block,
        named like Llama's (``count`` > 1 for the experts of a mixture-of-experts MLP)."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        out = [
            ("q_proj", h, q, 1),
            ("k_proj", h, kv, 1),
            ("v_proj", h, kv, 1),
            ("o_proj", q, h, 1),
        ]
        n = self.experts
        if self.gated_mlp:
            out += [("gate_proj", h, i, n), ("up_proj", h, i, n), ("down_proj", i, h, n)]
        else:
            out += [("up_proj", h, i, n), ("down_proj", i, h, n)]
        if n > 1:
            out.append(("router", h, n, 1))
        return out

    def block_linear_params(self, names: Iterable[str] | None = None) -> int:
        """Weights of one block's linears (only those named in ``names``, if given)."""
        wanted = None if names is None else set(names)
        return sum(
            a * b * c for name, a, b, c in self.block_linears() if wanted is None or name in wanted
        )

    def block_bias_params(self) -> int:
        """Bias parameters of one block's linears (per :attr:`biases`)."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        if self.biases == "qkv":
            return q + 2 * kv
        if self.biases == "all":
            return q + 2 * kv + h + (i + h) * self.experts
        return 0

    def block_params(self) -> int:
        """All parameters of one decoder block (linears, biases, its two norms)."""
        return (
            self.block_linear_params()
            + self.block_bias_params()
            + 2 * self.norm_params * self.hidden
        )

    def embedding_params(self) -> int:
        """Token embeddings plus learned position embeddings (GPT-2, OPT …)."""
        return self.vocab * self.hidden + self.position_embeddings * self.hidden

    def head_params(self) -> int:
        """The output projection's own parameters (0 when tied to the input embeddings)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def outside_params(self) -> int:
        """Parameters outside the decoder blocks: embeddings, final norm, untied head."""
        return self.embedding_params() + self.norm_params * self.hidden + self.head_params()

    def total_params(self) -> int:
        """Every parameter of the model (tied embeddings counted once)."""
        return self.layers * self.block_params() + self.outside_params()

    def as_dict(self) -> dict[str, Any]:
        """Every field plus ``params`` (:meth:`total_params`), JSON-ready."""
        return {**asdict(self), "params": self.total_params()}


GATED_TYPES = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
    "gemma3_text", "phi3", "olmo", "olmo2", "cohere", "cohere2", "granite", "granitemoe",
    "internlm2", "smollm3", "stablelm", "deepseek_v2", "deepseek_v3", "exaone", "helium", "glm",
}  # fmt: skip
UNGATED_TYPES = {
    "gpt2", "gpt_neox", "gpt_neo", "gptj", "opt", "phi", "falcon", "bloom", "starcoder2",
    "gpt_bigcode", "codegen", "mpt",
}  # fmt: skip
LAYERNORM_TYPES = {
    "gpt2", "gpt_neox", "gpt_neo", "gptj", "opt", "phi", "falcon", "bloom", "starcoder2",
    "gpt_bigcode", "codegen", "stablelm",
}  # fmt: skip
ALL_BIAS_TYPES = {
    "gpt2", "gpt_neox", "gpt_neo", "opt", "phi", "bloom", "starcoder2", "gpt_bigcode", "codegen",
}  # fmt: skip
QKV_BIAS_TYPES = {"qwen2", "qwen2_moe"}
LEARNED_POSITION_TYPES = {"gpt2", "opt", "gpt_neo", "gpt_bigcode"}


def _first(config: Any, names: Iterable[str], default: Any = None) -> Any:
    """The first of ``names`` that ``config`` has (not ``None``), else ``default``."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def model_shape(config: Any) -> ModelShape:
    """Read a :class:`ModelShape` from a ``transformers`` config (or any object with the same
    attribute names, e.g. a parsed ``config.json``).

    Understands Llama-style names (``hidden_size``, ``intermediate_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``,
    ``tie_word_embeddings``) and the GPT-2/NeoX/Falcon/OPT aliases (``n_embd``, ``n_layer``,
    ``n_head``, ``n_inner``, ``ffn_dim``, ``multi_query`` …); a missing intermediate size means
    ``4 * hidden``. Raises :class:`BadInput` when the config lacks hidden size, layers, heads or
    vocabulary (not a decoder-only language model ftx can plan for).
    """
    getter = getattr(config, "get_text_config", None)
    if callable(getter):
        config = getter()
    model_type = str(getattr(config, "model_type", "") or "unknown")
    hidden = _first(config, ("hidden_size", "n_embd", "d_model", "dim", "word_embed_proj_dim"))
    layers = _first(config, ("num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    heads = _first(config, ("num_attention_heads", "n_head", "num_heads", "n_heads"))
    vocab = _first(config, ("vocab_size", "padded_vocab_size"))
    missing = [
        name
        for name, value in (
            ("hidden size", hidden),
            ("number of layers", layers),
            ("attention heads", heads),
            ("vocabulary size", vocab),
        )
        if not value
    ]
    if missing:
        raise BadInput(
            f"cannot plan for this model: its config has no {', '.join(missing)} "
            f"(model_type {model_type!r})"
        )
    hidden, layers, heads, vocab = int(hidden), int(layers), int(heads), int(vocab)
    kv_heads = _first(config, ("num_key_value_heads", "num_kv_heads", "n_head_kv", "num_kv"))
    if kv_heads is None and getattr(config, "multi_query", False):
        kv_heads = 1
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    experts = int(_first(config, ("num_local_experts", "num_experts", "n_routed_experts"), 1) or 1)
    intermediate = _first(config, ("intermediate_size", "n_inner", "ffn_dim", "d_ff"))
    if experts > 1:
        intermediate = _first(config, ("moe_intermediate_size",), intermediate)
    if not intermediate:
        intermediate = 4 * hidden
    act = str(_first(config, ("hidden_act", "activation_function"), "")).lower()
    if model_type in GATED_TYPES:
        gated = True
    elif model_type in UNGATED_TYPES:
        gated = False
    else:
        gated = act in {"silu", "swish", "swiglu"}
    if model_type in ALL_BIAS_TYPES:
        biases = "all"
    elif model_type in QKV_BIAS_TYPES:
        biases = "qkv"
    elif getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        biases = "all"
    else:
        biases = "none"
    positions = 0
    if model_type in LEARNED_POSITION_TYPES:
        positions = int(_first(config, ("n_positions", "max_position_embeddings"), 0) or 0)
    return ModelShape(
        model_type=model_type,
        hidden=hidden,
        intermediate=int(intermediate),
        layers=layers,
        heads=heads,
        kv_heads=int(kv_heads or heads),
        head_dim=int(head_dim),
        vocab=vocab,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
        gated_mlp=gated,
        biases=biases,
        norm_params=2 if model_type in LAYERNORM_TYPES else 1,
        position_embeddings=positions,
        experts=experts,
        experts_per_token=int(_first(config, ("num_experts_per_tok",), 1) or 1),
    )
