"""Whisper's attention with the decoding step computed as two matrix products on a CPU.

Each decoding step attends from one query row per head to the 1500 encoder frames of its
window. torch's CPU flash-attention kernel, which SDPA picks for that shape, is slow for a
single row: two plain matrix products and a softmax, same float32 numbers, took 1.06 ms
instead of 1.61 ms per call (3 windows, caches cold) and 7% off the handler's CPU time on
the 60 s dev dialogue. Every other call (the encoder, teacher-forced passes, masks, GPUs)
stays on transformers' SDPA.

Transformers 5 routes Whisper's attention through `AttentionInterface`, where this is
registered under its own name; older versions (the platform container's 4.51) pick
attention classes by name and keep "sdpa".
"""
from __future__ import annotations

import torch

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
        if plain and query.shape[2] == 1:
            return single_row_attention(query, key, value, scaling), None
        if plain and query.dtype == torch.bfloat16 and not getattr(module, "is_causal", True):
            return head_by_head_attention(query, key, value, scaling), None
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # same masks as SDPA
    return NAME


def single_row_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         scaling: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scaling) v for query [batch, heads, 1, dim] against key/value
    [batch, heads, frames, dim], returned as [batch, 1, heads, dim] (transformers' layout)."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2))
    if scale != 1.0:
        scores = scores * scale
    return torch.matmul(scores.softmax(dim=-1), value).transpose(1, 2).contiguous()


def head_by_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           scaling: float | None = None) -> torch.Tensor:
    """Full (unmasked) attention one head at a time, as [batch, rows, heads, dim]."""
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
