"""bfloat16 on CPUs that compute it natively (AVX512-BF16, AMX, Arm BF16): the encoder,
the output layer and the decoder's linear layers, the costs that dominate Whisper on a CPU.

Measured with Whisper base on the 60 s dev dialogue at one thread (docs/benchmarks.md): the
encoder runs about 2x faster in bfloat16, and the 51865-wide output layer in float32 is
slow for 2-3 rows at a time (the handler's batched windows) where bfloat16 is flat; both
together cut the transcription by 35-39% with the same words. Decoding a token is bound by
reading weights from memory, so the decoder's linear layers in bfloat16 (half the bytes)
take a further 17-24% off; the decoder's residual stream and layer norms stay in float32
(the whole model in bfloat16 was no faster and changed the text; attention: `attention`).
CPUs without native bfloat16 would emulate it slowly, so `auto` uses it only where the CPU
has it.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

NATIVE_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 flags; "bf16" on Arm (Features)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (from /proc/cpuinfo; False elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.lower().startswith(("flags", "features"))
             for f in line.split(":", 1)[-1].split()}
    return any(flag in flags for flag in NATIVE_FLAGS)


class BF16Linear(nn.Module):
    """A Linear layer computed in bfloat16, returning `out_dtype` (float32 unless the
    consumer takes bfloat16)."""

    def __init__(self, linear: nn.Module, out_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
        self.bias = (None if linear.bias is None
                     else nn.Parameter(linear.bias.detach().to(torch.bfloat16), requires_grad=False))
        self.out_dtype = out_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.bfloat16), self.weight, self.bias).to(self.out_dtype)


def output_layer_in_bf16(model: nn.Module) -> None:
    """The output layer (`proj_out`) of a Whisper model or decoder-only draft in bfloat16
    (a copy: the float32 input embeddings it was tied to stay as they are)."""
    model.proj_out = BF16Linear(model.proj_out)


def decoder_linears_in_bf16(model: nn.Module) -> None:
    """Every Linear layer of a Whisper model's decoder (or a decoder-only draft) computed in
    bfloat16 with float32 in and out."""
    decoder = model.get_decoder()
    for module in list(decoder.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, BF16Linear(child))


def encoder_in_bf16(model: nn.Module) -> None:
    """A Whisper model's encoder in bfloat16, taking and giving float32."""
    encoder = model.get_encoder().to(torch.bfloat16)

    def cast_in(module, args, kwargs):
        args = tuple(a.to(torch.bfloat16) if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
        if torch.is_tensor(kwargs.get("input_features")):
            kwargs["input_features"] = kwargs["input_features"].to(torch.bfloat16)
        return args, kwargs

    def cast_out(module, args, output):
        output.last_hidden_state = output.last_hidden_state.float()
        return output

    encoder.register_forward_pre_hook(cast_in, with_kwargs=True)
    encoder.register_forward_hook(cast_out)
