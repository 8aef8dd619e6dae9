"""What llama.cpp needs to know about a model's architecture: its GGUF name, hyper-parameters,
tensor names and the tensor layouts it expects.

Supported: the llama family (``llama``, ``mistral``: SmolLM2, Llama 2/3, Mistral) and Qwen2 /
Qwen3. :func:`gguf_architecture` raises :class:`BadInput` for anything else before a file is
opened, naming the supported ones. Tensor names come from ``gguf``'s own
:class:`gguf.TensorNameMap`, so they are llama.cpp's. Reads ``config.json`` as a dict;
importing this module imports neither torch nor gguf.
"""

from __future__ import annotations

import math
from typing import Any

from ftx.errors import BadInput

ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
"""``config.json``'s ``model_type`` -> the llama.cpp architecture written as
``general.architecture``."""

SUPPORTED_FAMILIES = (
    "llama (SmolLM/SmolLM2, Llama 2, Llama 3/3.1/3.2), mistral (Mistral 7B), qwen2 (Qwen2, "
    "Qwen2.5), qwen3 (dense Qwen3)"
)
"""The model types of :data:`ARCHITECTURES` and the families that ship as them, for messages."""

_PERMUTED = ("attn_q", "attn_k")
"""llama.cpp's llama graph rotates interleaved pairs; transformers' rotates halves: q and k are
permuted on the way out (llama family only; Qwen uses the NeoX layout both sides agree on)."""


def gguf_architecture(config: dict[str, Any]) -> str:
    """The GGUF architecture of a model config, or BadInput naming the supported ones."""
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise BadInput(
            f"GGUF export does not support model type {model_type!r}",
            hint=f"supported model types: {SUPPORTED_FAMILIES}; for another, export --format "
            "merged and convert it with llama.cpp's convert_hf_to_gguf.py",
        )
    rope = rope_scaling(config)
    if rope.get("rope_type", "default") not in ("default", "linear", "llama3"):
        raise BadInput(
            f"GGUF export does not support rope scaling {rope.get('rope_type')!r}",
            hint="supported: none, linear, llama3",
        )
    return ARCHITECTURES[model_type]


def rope_scaling(config: dict[str, Any]) -> dict[str, Any]:
    """The rope parameters (transformers 5's ``rope_parameters`` or the older keys)."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params["type"]
    params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    return params


def head_dim(config: dict[str, Any]) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def add_hyperparameters(writer: Any, config: dict[str, Any]) -> None:
    """Write the architecture's hyper-parameters (``{arch}.*`` keys) to a ``GGUFWriter``."""
    import gguf

    heads = config["num_attention_heads"]
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    dim = head_dim(config)
    writer.add_rope_dimension_count(dim)
    if dim != config["hidden_size"] // heads or config["model_type"] == "qwen3":
        writer.add_key_length(dim)
        writer.add_value_length(dim)
    rope = rope_scaling(config)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    if rope.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))


def extra_tensors(config: dict[str, Any]) -> dict[str, Any]:
    """Tensors llama.cpp needs that the checkpoint lacks: ``rope_freqs.weight`` (fp32 numpy)
    for Llama 3.1-style ``llama3`` rope scaling, the per-frequency factors transformers computes
    from the same parameters."""
    rope = rope_scaling(config)
    if rope.get("rope_type") != "llama3":
        return {}
    import numpy as np

    dim, base = head_dim(config), float(rope["rope_theta"])
    factor, old = float(rope["factor"]), float(rope["original_max_position_embeddings"])
    low, high = float(rope["low_freq_factor"]), float(rope["high_freq_factor"])
    factors = []
    for i in range(0, dim, 2):
        wavelen = 2 * math.pi * base ** (i / dim)
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return {"rope_freqs.weight": np.asarray(factors, dtype=np.float32)}


class TensorNames:
    """Hugging Face tensor names -> GGUF names, and the layout change each one needs."""

    def __init__(self, config: dict[str, Any]) -> None:
        import gguf

        self.config = config
        self.arch = gguf_architecture(config)
        arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == self.arch)
        self._map = gguf.get_tensor_name_map(arch_enum, config["num_hidden_layers"])
        self.tied = bool(config.get("tie_word_embeddings"))

    def gguf_name(self, name: str) -> str | None:
        """The GGUF name of ``name``; None for a tensor llama.cpp does not take (a tied head,
        rotary caches). BadInput for a tensor this architecture should not have."""
        if name == "lm_head.weight" and self.tied:
            return None
        if name.endswith("rotary_emb.inv_freq"):
            return None
        mapped = self._map.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise BadInput(
                f"GGUF export: tensor {name} has no llama.cpp name for architecture {self.arch}",
                hint="this checkpoint is not a plain "
                f"{self.config.get('model_type')} model; export --format merged instead",
            )
        return mapped

    def prepare(self, gguf_name: str, tensor: Any) -> Any:
        """``tensor`` (fp32 numpy, Hugging Face layout) in the layout llama.cpp reads."""
        if self.arch != "llama" or not gguf_name.endswith(".weight"):
            return tensor
        kind = gguf_name.split(".")[-2]
        if kind not in _PERMUTED:
            return tensor
        heads = self.config["num_attention_heads"]
        if kind == "attn_k":
            heads = self.config.get("num_key_value_heads") or heads
        shape = tensor.shape
        return (
            tensor.reshape(heads, 2, shape[0] // heads // 2, *shape[1:])
            .swapaxes(1, 2)
            .reshape(shape)
        )
