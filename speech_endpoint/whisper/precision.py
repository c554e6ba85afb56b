"""Where Whisper runs and in what number format: the device (setting DEVICE), bfloat16 on CPUs
that compute it, int8 decoder weights, and the attention that goes with them.

Device (`choose`: auto, cuda, cpu): the current torch wheel needs a recent NVIDIA driver (CUDA
13); on an older one CUDA is simply unavailable, and an endpoint quietly on the CPU would be
slow and expensive. So `cuda` refuses to start without a usable GPU, saying why, and `auto`
says in the log and in every response's metadata what it chose.

bfloat16 on CPUs that compute it natively (AVX512-BF16, AMX, Arm BF16): the encoder, the
output layer and the decoder's linear layers, the costs that dominate Whisper on a CPU; the
decoder's residual stream and layer norms stay float32 (all in bfloat16 was no faster and
changed the text). Elsewhere bfloat16 is emulated slowly: `auto` uses it only where native.

Attention (`implementation`): torch's CPU flash kernel, which SDPA picks, is slow for a
decoding step's one query row against 1500 encoder frames and for the bfloat16 encoder's
1500 x 1500 attention; those two unmasked cases are computed here directly (the same
numbers), and the cross-attention keys and values may stay in bfloat16 (read once per
step and layer). Every other call (masked or causal, GPUs) stays on transformers' SDPA.
Transformers 5 routes Whisper's attention through `AttentionInterface`, where this is
registered under its own name; older versions (the platform container's 4.51) pick
attention classes by name and keep "sdpa" and float32 keys and values.

int8 (`Int8Linear`, CPU_INT8): a decoding step multiplies a few rows by each decoder weight
matrix, so it waits on reading them: int8 reads half of bfloat16's bytes (docs/benchmarks.md).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

NATIVE_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 flags; "bf16" on Arm (Features)


def cpu_flags() -> set[str]:
    """This CPU's feature flags (from /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.lower().startswith(("flags", "features"))
            for f in line.split(":", 1)[-1].split()}


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively."""
    return any(flag in cpu_flags() for flag in NATIVE_FLAGS)


def int8_kernel() -> bool:
    """Whether torch has its weight-only int8 CPU kernel, vectorised here (x86 AVX2 or later;
    measured with AVX512 and with AVX2 dispatch)."""
    return hasattr(torch.ops.aten, "_weight_int8pack_mm") and "avx2" in cpu_flags()


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


class Int8Linear(nn.Module):
    """A Linear layer with int8 weights (symmetric, one scale per output row) and bfloat16
    activations, through torch's weight-only int8 CPU kernel (`_weight_int8pack_mm`, torch
    2.5 and later), returning float32. That kernel's time grows with every row, a dense
    product's hardly: above `MAX_ROWS` rows (a decoding step of many windows, a prompt, beams)
    the layer it was made from (`dense`, kept) computes instead."""

    MAX_ROWS = 8  # measured crossover against a bfloat16 product (docs/benchmarks.md)

    def __init__(self, dense: nn.Module):
        super().__init__()
        weight = dense.weight.detach().float()
        scales = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.register_buffer("weight", torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(torch.bfloat16))
        self.register_buffer("bias", None if dense.bias is None else dense.bias.detach().to(torch.bfloat16))
        self.dense, self.out_features = dense, weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] > self.MAX_ROWS:
            return self.dense(x).float()
        y = torch.ops.aten._weight_int8pack_mm(rows.to(torch.bfloat16).contiguous(), self.weight, self.scales)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features).float()


def decoder_weights_in_int8(model: nn.Module) -> None:
    """The output layer and the decoder's per-step linear layers (not the cross-attention
    keys and values, computed once per window) as `Int8Linear` over the layers they were."""
    decoder = model.get_decoder()
    skip = {id(getattr(layer.encoder_attn, name, None)) for layer in getattr(decoder, "layers", [])
            if hasattr(layer, "encoder_attn") for name in ("k_proj", "v_proj")}
    _replace_linears(decoder, Int8Linear, (nn.Linear, BF16Linear), skip)
    model.proj_out = Int8Linear(model.proj_out)


def _replace_linears(decoder: nn.Module, make, kinds: tuple[type, ...], skip: set[int] = frozenset()) -> None:
    for module in list(decoder.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, kinds) and id(child) not in skip:
                setattr(module, name, make(child))


def output_layer_in_bf16(model: nn.Module) -> None:
    """The output layer (`proj_out`) of a Whisper model or decoder-only draft in bfloat16
    (a copy: the float32 input embeddings it was tied to stay as they are)."""
    model.proj_out = BF16Linear(model.proj_out)


def decoder_linears_in_bf16(model: nn.Module) -> None:
    """Every Linear layer of a Whisper model's decoder (or a decoder-only draft) computed in
    bfloat16 with float32 in and out."""
    _replace_linears(model.get_decoder(), BF16Linear, (nn.Linear,))


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


# ---- attention ----------------------------------------------------------------------------

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


log = logging.getLogger(__name__)
# where a loaded NVIDIA driver shows itself; without them there is no GPU to advise about
NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


class DeviceError(RuntimeError):
    """DEVICE=cuda, but no usable GPU (raised at start-up)."""


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda:0" or "cpu"
    dtype: torch.dtype  # float16 on a GPU; float32 on CPU (float16 matmuls are slow or missing there)
    cpu_bf16: bool = False  # CPU: bfloat16 where it pays (speech_endpoint.whisper.precision)
    cpu_int8: bool = False  # CPU: the decoder's weights in int8 (Int8Linear)

    @property
    def dtype_name(self) -> str:
        name = str(self.dtype).removeprefix("torch.")
        extras = [label for on, label in ((self.cpu_bf16, "bfloat16 (CPU_BF16)"),
                                          (self.cpu_int8, "int8 decoder weights (CPU_INT8)")) if on]
        return f"{name} with {' and '.join(extras)}" if extras else name


def cuda_problem() -> str | None:
    """Why torch cannot use a GPU here (None: it can)."""
    if torch.cuda.is_available():
        return None
    built = torch.version.cuda
    if built is None:
        return "this torch build has no CUDA support (a CPU wheel)"
    if not any(os.path.exists(p) for p in NVIDIA_DRIVER_PATHS):
        return "no GPU was found: this machine has no NVIDIA driver"
    try:
        torch.cuda.init()  # raises with the driver's own explanation
    except Exception as exc:  # noqa: BLE001 - only its message is used
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    else:
        reason = "no CUDA device is visible"
    return (f"this torch is built for CUDA {built} and cannot use a GPU here ({reason}). A driver too old "
            f"for CUDA {built} is the usual cause: install a torch build for the driver's CUDA version "
            "(see the Dockerfile's TORCH_INDEX_URL) or update the driver")


def choose(setting: str = "auto", cpu_bf16: bool | str = "auto", cpu_int8: bool | str = "auto") -> Placement:
    """`setting` is DEVICE: auto (a GPU when usable), cuda (a GPU or a start-up error), cpu.
    `cpu_bf16` is CPU_BF16: on the CPU, bfloat16 where it counts (auto: where native);
    `cpu_int8` is CPU_INT8: on the CPU, the decoder's weights in int8 (auto: `int8_kernel`)."""
    if setting != "cpu":
        problem = cuda_problem()
        if problem is None:
            return Placement("cuda:0", torch.float16)
        if setting == "cuda":
            raise DeviceError(f"DEVICE=cuda, but {problem}; or set DEVICE=cpu to run on the CPU")
        log.warning("no usable GPU, running on the CPU: %s", problem)
    return Placement("cpu", torch.float32, cpu_bf16=native_bf16() if cpu_bf16 == "auto" else bool(cpu_bf16),
                     cpu_int8=int8_kernel() if cpu_int8 == "auto" else bool(cpu_int8))
