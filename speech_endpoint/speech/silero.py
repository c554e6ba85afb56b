"""Silero VAD (PyPI `silero-vad`, MIT; the weights ship inside the wheel): speech
probability per 32 ms frame of a whole request, in one batched pass. Model I/O only; the
regions are derived in `speech_endpoint.speech.activity`.

The model is a convolutional front end (per frame, given 64 samples of left context), one
LSTM cell and a 1x1 output layer. Its own `audio_forward` steps through the frames one at
a time from TorchScript (0.35-0.5 s per minute of audio on one CPU thread); here the front
end runs batched over many frames and the LSTM cell's weights run as one `torch.nn.LSTM`
over the frame sequence: the same weights, read from the wheel's `silero_vad.jit`, the
same probabilities (within 4e-5), about 35 ms per minute of audio. At load the result is
checked against the TorchScript model; should a different silero-vad release lay out its
weights otherwise, the check fails and the TorchScript model's `audio_forward` is used.

Importing the `silero_vad` package calls `torch.set_num_threads(1)`: this module never
imports it (the weight file is found with `importlib.util.find_spec`, which does not run
the package) and puts back the caller's thread count after loading, so the endpoint's
CPU_THREADS stays in force.
"""
from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from speech_endpoint.schema import SAMPLE_RATE

log = logging.getLogger(__name__)
FRAME_SAMPLES = 512
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s
CONTEXT_SAMPLES = 64
BLOCK_FRAMES = 1024  # frames per batched pass: bounds memory on hours of audio


def _jit_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("silero-vad is not installed (pip install silero-vad==6.2.3)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.jit"


class SileroVAD:
    """Loaded once; `probabilities(samples)` for each request. No recurrent state is kept
    between calls."""

    frame_s = FRAME_S

    def __init__(self):
        threads = torch.get_num_threads()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.10: jit.load is deprecated
                self._jit = torch.jit.load(str(_jit_path()), map_location="cpu").eval()
            weights = {k: v.detach().float() for k, v in self._jit._model.state_dict().items()}  # the 16 kHz net
            self._stft = weights["stft.forward_basis_buffer"]  # (258, 1, 256), hop 128
            self._convs = [(weights[f"encoder.{i}.reparam_conv.weight"], weights[f"encoder.{i}.reparam_conv.bias"], s)
                           for i, s in enumerate((1, 2, 2, 1))]
            self._lstm = torch.nn.LSTM(128, 128).eval()
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(self._lstm, f"{name}_l0").copy_(weights[f"decoder.rnn.{name}"])
            self._out = (weights["decoder.decoder.2.weight"], weights["decoder.decoder.2.bias"])
            self.batched = self._batched_matches_reference()
            if not self.batched:
                log.warning("silero-vad's weights are not laid out as expected; using its slower per-frame model")
        finally:
            torch.set_num_threads(threads)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample frame, float32, ceil(len / 512) of them;
        the last partial frame is zero-padded (as silero does)."""
        x = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
        count = -(-len(x) // FRAME_SAMPLES)
        if count == 0:
            return np.zeros(0, np.float32)
        with torch.inference_mode():
            if not self.batched:
                padded = np.zeros(count * FRAME_SAMPLES, np.float32)
                padded[: len(x)] = x
                return self._jit.audio_forward(torch.from_numpy(padded), SAMPLE_RATE).numpy().reshape(-1)[:count]
            return self._batched(x, count)

    def _batched(self, x: np.ndarray, count: int) -> np.ndarray:
        out = np.empty(count, np.float32)
        context = np.zeros(CONTEXT_SAMPLES, np.float32)
        state = None
        for first in range(0, count, BLOCK_FRAMES):
            n = min(BLOCK_FRAMES, count - first)
            frames = np.zeros((n, FRAME_SAMPLES), np.float32)
            chunk = x[first * FRAME_SAMPLES:(first + n) * FRAME_SAMPLES]
            frames.reshape(-1)[: len(chunk)] = chunk
            contexts = np.concatenate([context[None], frames[:-1, -CONTEXT_SAMPLES:]])  # each frame's left context
            context = frames[-1, -CONTEXT_SAMPLES:].copy()
            z = F.pad(torch.from_numpy(np.concatenate([contexts, frames], axis=1)), (0, 64), mode="reflect")
            z = F.conv1d(z.unsqueeze(1), self._stft, stride=128)
            z = torch.sqrt(z[:, :129] ** 2 + z[:, 129:] ** 2)
            for weight, bias, stride in self._convs:
                z = F.relu(F.conv1d(z, weight, bias, stride=stride, padding=1))
            hidden, state = self._lstm(z.squeeze(-1).unsqueeze(1), state)  # (frames, 1, 128)
            p = torch.sigmoid(F.conv1d(F.relu(hidden.squeeze(1).unsqueeze(-1)), *self._out))
            out[first:first + n] = p.reshape(-1).numpy()
        return out

    def _batched_matches_reference(self) -> bool:
        """The batched pass against the TorchScript model on a voice-like probe signal."""
        t = np.arange(40 * FRAME_SAMPLES + 100) / SAMPLE_RATE
        probe = (0.3 * np.sin(2 * np.pi * (150 + 40 * np.sin(2 * np.pi * 3 * t)) * t) * (1 + np.sin(2 * np.pi * 4 * t))
                 + 0.02 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
        count = -(-len(probe) // FRAME_SAMPLES)
        padded = np.zeros(count * FRAME_SAMPLES, np.float32)
        padded[: len(probe)] = probe
        with torch.inference_mode():
            reference = self._jit.audio_forward(torch.from_numpy(padded), SAMPLE_RATE).numpy().reshape(-1)
            self._jit.reset_states()
            try:
                got = self._batched(probe, count)
            except (RuntimeError, ValueError):
                return False
        return got.shape == reference.shape and float(np.max(np.abs(got - reference))) < 1e-3
