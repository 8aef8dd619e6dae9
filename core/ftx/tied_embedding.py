"""Sparse gradients for an input embedding tied to the output head, on single-process CPU runs.

Models with tied word embeddings (SmolLM2, Qwen2.5 0.5B, Gemma, Llama 3.2 1B) use one matrix
as the input embedding and the LM head. Training it, the backward pass computes the head's
gradient (dense, ``vocab x hidden``) and the embedding's: with a dense embedding gradient torch
allocates a zero-filled ``vocab x hidden`` tensor, adds the looked-up rows into it, and then
adds that whole tensor to the head's gradient — two full passes over a matrix that for SmolLM2
is 113 MB (49152 x 576 fp32), where only the rows of the batch's tokens are non-zero
(``bench/floor.py``: ``fill_`` 0.05 s and part of ``add`` 0.06 s of a 3.5 s FFT step).

:func:`use_sparse_grad_for_tied_embedding` sets ``sparse=True`` on such an embedding: its
gradient is a sparse tensor of the looked-up rows, which autograd adds into the head's dense
gradient, so the weight's gradient that the optimizer sees is dense and equal (up to the order
of additions) to the dense path's (``tests/test_tied_embedding.py``). Only where it is safe:
the embedding is a plain ``torch.nn.Embedding`` whose weight *is* the head's weight and trains,
and the run is one process (sparse gradients do not go through FSDP or DeepSpeed).
"""

from __future__ import annotations

from typing import Any


def use_sparse_grad_for_tied_embedding(model: Any) -> bool:
    """Switch ``model``'s input embedding to sparse gradients when it is tied to the output head
    and trains; return whether it did. Imports torch."""
    import torch

    from ftx.ranks import world_size

    if world_size() > 1:
        return False
    embedding = model.get_input_embeddings()
    head = model.get_output_embeddings()
    if not isinstance(embedding, torch.nn.Embedding) or head is None or embedding.sparse:
        return False
    weight = embedding.weight
    if weight is not getattr(head, "weight", None) or not weight.requires_grad:
        return False
    embedding.sparse = True
    return True
