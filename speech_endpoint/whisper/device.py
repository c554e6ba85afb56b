"""Which device and number format the models run on (setting DEVICE: auto, cuda, cpu).

The current stack's torch wheel is built for CUDA 13, which needs a recent NVIDIA driver;
on an older driver `torch.cuda.is_available()` is simply False, and an endpoint that
quietly ran on the CPU would be slow and expensive. So `cuda` refuses to start without a
usable GPU, saying why, and `auto` says in the log and in every response's metadata what
it chose.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from speech_endpoint.whisper.precision import native_bf16

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

    @property
    def dtype_name(self) -> str:
        name = str(self.dtype).removeprefix("torch.")
        return f"{name} with bfloat16 (CPU_BF16)" if self.cpu_bf16 else name


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


def choose(setting: str = "auto", cpu_bf16: bool | str = "auto") -> Placement:
    """`setting` is DEVICE: auto (a GPU when usable), cuda (a GPU or a start-up error), cpu.
    `cpu_bf16` is CPU_BF16: on the CPU, bfloat16 where it counts (auto: where native)."""
    if setting != "cpu":
        problem = cuda_problem()
        if problem is None:
            return Placement("cuda:0", torch.float16)
        if setting == "cuda":
            raise DeviceError(f"DEVICE=cuda, but {problem}; or set DEVICE=cpu to run on the CPU")
        log.warning("no usable GPU, running on the CPU: %s", problem)
    return Placement("cpu", torch.float32, cpu_bf16=native_bf16() if cpu_bf16 == "auto" else bool(cpu_bf16))
