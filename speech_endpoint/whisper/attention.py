"""Whisper's attention on a CPU without the flash-attention kernel where it is slow.

Measured with Whisper base on the 60 s dev dialogue at one thread (docs/benchmarks.md):
- a decoding step attends from one query row per head to the 1500 encoder frames of its
  window; torch's CPU flash kernel, which SDPA picks, is slow for one row: two matrix
  products and a softmax, same float32 numbers, took 1.06 ms instead of 1.61 ms a call
  (3 windows, caches cold);
- the bfloat16 encoder's attention (1500 x 1500 per head) one head at a time, scores kept
  in cache: 67 ms instead of 157-182 ms for 3 windows;
- with CPU_BF16 the cross-attention keys and values are kept in bfloat16: decoding reads
  them once per step and layer, and half the bytes took 10% off the handler's time.
Together with the decoder's bfloat16 linear layers (`precision`): 4.48 s -> 2.85 s CPU, the same
words. Every other call (masked or causal, GPUs) stays on transformers' SDPA.

Transformers 5 routes Whisper's attention through `AttentionInterface`, where this is
registered under its own name; older versions (the platform container's 4.51) pick
attention classes by name and keep "sdpa" and float32 keys and values.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from speech_endpoint.whisper.precision import BF16Linear

NAME = "endpoint_sdpa"


def implementation() -> str:
    """The `attn_implementation` to load Whisper with: this module's where transformers
    can route Whisper's attention to it (registered on first call), else "sdpa"."""
    try:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.masking_utils import sdpa_mask
        from transformers.models.whisper import modeling_whisper
    except ImportError:
        return "sdpa"
    if not hasattr(modeling_whisper, "ALL_ATTENTION_FUNCTIONS"):
        return "sdpa"

    def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        plain = attention_mask is None and query.device.type == "cpu" and not dropout
        if plain and (query.shape[2] == 1 or key.dtype != query.dtype):
            return matmul_attention(query, key, value, scaling), None
        if plain and query.dtype == torch.bfloat16 and not getattr(module, "is_causal", True):
            return head_by_head_attention(query, key, value, scaling), None
        key, value = key.to(query.dtype), value.to(query.dtype)
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # same masks as SDPA
    return NAME


def cross_attention_cache_in_bf16(model: nn.Module) -> None:
    """The keys and values of every decoder layer's cross-attention (computed once per
    window, read at every step) in bfloat16. Only with this module's attention, which
    takes them as they are."""
    for layer in model.get_decoder().layers:
        attn = layer.encoder_attn
        attn.k_proj = BF16Linear(attn.k_proj, out_dtype=torch.bfloat16)
        attn.v_proj = BF16Linear(attn.v_proj, out_dtype=torch.bfloat16)


@contextmanager
def eager_for_token_timestamps(model: nn.Module) -> Iterator[None]:
    """Around transformers' word timestamps (the sequential strategy): its Whisper
    `generate` switches the model to eager attention to read attention weights, and leaves
    it so. Eager attention gets float32 keys and values meanwhile, and the model's own
    attention is restored afterwards."""
    implementation = model.config._attn_implementation
    projections = [m for m in model.modules() if isinstance(m, BF16Linear) and m.out_dtype == torch.bfloat16]
    for projection in projections:
        projection.out_dtype = torch.float32
    try:
        yield
    finally:
        for projection in projections:
            projection.out_dtype = torch.bfloat16
        model.config._attn_implementation = implementation


def matmul_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     scaling: float | None = None) -> torch.Tensor:
    """Unmasked softmax(q kᵀ · scaling) v for query [batch, heads, rows, dim] against
    key/value [batch, heads, frames, dim], computed in the keys' dtype and returned in the
    query's as [batch, rows, heads, dim] (transformers' layout)."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query.to(key.dtype), key.transpose(-1, -2))
    if scale != 1.0:
        scores = scores * scale
    out = torch.matmul(scores.softmax(dim=-1), value)
    return out.transpose(1, 2).to(query.dtype).contiguous()


def head_by_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           scaling: float | None = None) -> torch.Tensor:
    """Unmasked attention one head at a time (its scores stay in cache), as [batch, rows,
    heads, dim]."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    b, h, n, d = query.shape
    q, k, v = (t.reshape(b * h, t.shape[2], d) for t in (query, key, value))
    out = torch.empty(b, n, h, d, dtype=query.dtype, device=query.device)
    for i in range(b * h):
        scores = torch.mm(q[i], k[i].T)
        if scale != 1.0:
            scores = scores * scale
        out[i // h, :, i % h] = torch.mm(scores.softmax(dim=-1), v[i])
    return out
