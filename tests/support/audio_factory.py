"""Test audio: real (synthetic) speech from tests/data, tones and bursts made in memory,
encoded into real containers with PyAV."""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import soundfile as sf

# container format, codec, sample format, file extension
CODECS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "ogg": ("ogg", "vorbis", "fltp"),
    "opus": ("ogg", "libopus", "flt"),
    "webm": ("webm", "libopus", "flt"),
    "m4a": ("ipod", "aac", "fltp"),
}


SPEECH_CLIP = Path(__file__).resolve().parent.parent / "data" / "speech.flac"


@lru_cache(maxsize=1)
def _speech_clip() -> np.ndarray:
    samples, _ = sf.read(SPEECH_CLIP, dtype="float32")
    return samples


def speech(seconds: float = 4.0, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Speech a speech detector recognises as such (two espeak-ng voices, repeated to
    length; `seed` starts it at another place). Shape (samples, channels), float32."""
    from speech_endpoint.speech.audio import resample

    clip = np.roll(_speech_clip(), -int(seed * 1.7 * 16000))
    n16 = int(seconds * 16000)
    mono = np.tile(clip, n16 // len(clip) + 1)[:n16]
    if rate != 16000:
        mono = resample(mono, 16000, rate)[: int(seconds * rate)]
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def bursts(seconds: float = 3.0, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """0.4 s tone+noise bursts separated by 0.3 s pauses: loud, but not speech.
    Shape (samples, channels), float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = ((t % 0.7) < 0.4).astype(np.float32)
    mono = envelope * (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t)))
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def encode(samples: np.ndarray, rate: int, kind: str) -> bytes:
    """Encode (samples, channels) float32 into the container/codec named by `kind`."""
    fmt, codec, sample_fmt = CODECS[kind]
    if samples.ndim == 1:
        samples = samples[:, None]
    channels = samples.shape[1]
    if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
        raise ValueError("opus needs a standard rate")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, options={"strict": "experimental"} if codec == "vorbis" else None)
        stream.layout = "stereo" if channels == 2 else "mono"
        frame_size = stream.codec_context.frame_size or 1024
        pcm = (samples * 32767).astype(np.int16) if sample_fmt == "s16" else samples.astype(np.float32)
        for start in range(0, len(pcm), frame_size):
            block = pcm[start:start + frame_size]
            if sample_fmt.endswith("p"):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T), format=sample_fmt, layout=stream.layout.name)
            else:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.reshape(1, -1)), format=sample_fmt, layout=stream.layout.name)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def video_only_bytes() -> bytes:
    """An mp4 with one video stream and no audio."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
