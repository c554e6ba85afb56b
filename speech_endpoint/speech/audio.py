"""Request payload -> `Audio` (mono float32, 16 kHz), decoded once, in memory; for
stereo calls, one `Audio` per channel (`decode_channels`).

Containers (wav, flac, mp3, ogg/opus, webm, m4a, amr, ...) are decoded with PyAV, which
bundles FFmpeg's libraries, so no ffmpeg binary is needed. A container's own sample rate
is always used; `sampling_rate` only describes raw PCM that the request declares with
`input_format`, so a wrong parameter can never skew timestamps of a real file.
"""
from __future__ import annotations

import base64
import binascii
import io
import logging

import numpy as np

from speech_endpoint.schema import SAMPLE_RATE, Audio, ClientError


log = logging.getLogger(__name__)


def payload_bytes(inputs: object, max_bytes: int) -> bytes:
    """The audio bytes of a request's `inputs`: raw bytes, or a base64 string
    (a `data:audio/...;base64,` prefix is tolerated)."""
    if inputs is None:
        raise ClientError("The request has no 'inputs': send audio as base64 in 'inputs' or as a binary audio body")
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        data = bytes(inputs)
    elif isinstance(inputs, str):
        text = inputs.strip()
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        # base64 grows by 4/3: refuse oversize strings before decoding them.
        if len(text) * 3 // 4 > max_bytes:
            raise ClientError(_too_large(max_bytes))
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError("'inputs' is not valid base64: send audio bytes encoded as base64") from None
    else:
        raise ClientError(f"'inputs' must be a base64 string or raw bytes, not {type(inputs).__name__}")
    if not data:
        raise ClientError("The audio payload is empty")
    if len(data) > max_bytes:
        raise ClientError(_too_large(max_bytes))
    return data


def _too_large(max_bytes: int) -> str:
    return f"The audio payload is larger than the limit of {max_bytes} bytes"


def decode(data: bytes, *, input_format: str = "auto", sampling_rate: int = SAMPLE_RATE,
           max_seconds: float | None = None) -> Audio:
    """Decode bytes to mono 16 kHz float32. Raises ClientError for bytes that are no audio."""
    if input_format == "auto":
        samples = _decode_container(data, max_seconds)[0]
    else:
        samples = _decode_pcm(data, input_format, sampling_rate)
        if max_seconds is not None and len(samples) > max_seconds * SAMPLE_RATE:
            raise ClientError(_too_long(max_seconds))
    return Audio(_sanitize(samples), SAMPLE_RATE)


def decode_channels(data: bytes, *, max_seconds: float | None = None, max_channels: int = 8) -> list[Audio]:
    """Decode a container to one 16 kHz float32 `Audio` per channel, not downmixed (for
    stereo calls: one speaker per channel). `max_seconds` counts every channel's seconds,
    as each is transcribed; more than `max_channels` channels are refused."""
    channels = _decode_container(data, max_seconds, max_channels=max_channels)
    if max_seconds is not None and channels.size > max_seconds * SAMPLE_RATE:
        raise ClientError(_too_long(max_seconds) + ", counting each channel")
    return [Audio(_sanitize(samples), SAMPLE_RATE) for samples in channels]


def _too_long(max_seconds: float) -> str:
    return f"The audio is longer than the limit of {max_seconds:g} seconds"


def _decode_pcm(data: bytes, input_format: str, rate: int) -> np.ndarray:
    dtype = np.int16 if input_format == "pcm_s16le" else np.float32
    width = np.dtype(dtype).itemsize
    usable = len(data) - len(data) % width
    samples = np.frombuffer(data[:usable], dtype="<" + np.dtype(dtype).str[1:]).astype(np.float32)
    if dtype == np.int16:
        samples /= 32768.0
    return resample(samples, rate, SAMPLE_RATE)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample mono float32 with FFmpeg's resampler (via PyAV), keeping the length exact."""
    if src_rate == dst_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    import av

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[None, :], dtype=np.float32), format="flt", layout="mono")
    frame.sample_rate = src_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=dst_rate)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    result = np.concatenate(out) if out else np.zeros(0, np.float32)
    expected = int(round(len(samples) * dst_rate / src_rate))
    return _fit(result, expected)


def _fit(samples: np.ndarray, length: int) -> np.ndarray:
    if len(samples) >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - len(samples), np.float32)])


def _decode_container(data: bytes, max_seconds: float | None, max_channels: int | None = None) -> np.ndarray:
    """(channels, samples) at 16 kHz: one row, downmixed, when `max_channels` is None."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError):
        raise ClientError(
            "Could not read the audio: the bytes are not a supported audio format "
            "(wav, flac, mp3, ogg/opus, webm, m4a, amr, ...), or the file is damaged or truncated. "
            "For raw PCM set input_format."
        ) from None
    with container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise ClientError("The file has no audio track")
        resampler = None
        chunks: list[np.ndarray] = []
        total = 0
        limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
        failed = False
        try:
            for frame in container.decode(stream):
                if resampler is None:
                    resampler = _Resampler(frame, max_channels)
                for chunk in resampler.resample(frame):
                    chunks.append(chunk)
                    total += chunk.shape[1]
                if limit is not None and total > limit:
                    raise ClientError(_too_long(max_seconds))
            chunks.extend(resampler.resample(None) if resampler else ())
        except ClientError:
            raise
        except (av.FFmpegError, ValueError, OSError, EOFError):
            # A truncated or damaged upload: keep what decoded so far.
            failed = True
    if failed and not chunks:
        raise ClientError("Could not decode any audio from the file: it is damaged or truncated")
    if failed:
        log.info("audio stream ended with a decoding error; using the %.1f s decoded before it", total / SAMPLE_RATE)
    samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    if limit is not None and samples.shape[1] > limit:
        raise ClientError(_too_long(max_seconds))
    return samples


class _Resampler:
    """Frames -> (channels, samples) float32 at 16 kHz. Downmixed (`max_channels` None):
    FFmpeg's resampler follows each frame's own layout and rate. Channels kept: each is
    resampled on its own as mono, since PyAV 18 crashes converting 8-channel layouts."""

    def __init__(self, frame, max_channels: int | None):
        import av

        self.channels = None if max_channels is None else len(frame.layout.channels)
        if self.channels is not None and self.channels > max_channels:
            raise ClientError(f"The audio has {self.channels} channels; at most {max_channels} on this endpoint")
        make = lambda: av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)  # noqa: E731
        self.resamplers = [make() for _ in range(self.channels or 1)]

    def resample(self, frame) -> list[np.ndarray]:
        import av

        if frame is None:
            outs = [r.resample(None) for r in self.resamplers]
        elif self.channels is None:
            frame.pts = None  # let the resampler count samples; broken pts must not shift audio
            outs = [self.resamplers[0].resample(frame)]
        else:
            outs = []
            for resampler, row in zip(self.resamplers, _planes(frame, self.channels)):
                mono = av.AudioFrame.from_ndarray(np.ascontiguousarray(row[None, :]), format="flt", layout="mono")
                mono.sample_rate = frame.sample_rate
                outs.append(resampler.resample(mono))
        rows = [np.concatenate([f.to_ndarray().reshape(-1) for f in out]) if out else np.zeros(0, np.float32)
                for out in outs]
        length = min(len(r) for r in rows)  # FFmpeg buffers every channel alike; guard anyway
        return [np.stack([r[:length] for r in rows])] if length else []


def _planes(frame, channels: int) -> np.ndarray:
    """A frame's samples as (channels, samples) float32 in [-1, 1], whatever its format."""
    arr = frame.to_ndarray()
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    arr = arr[:channels]
    if arr.dtype.kind == "f":
        return np.ascontiguousarray(arr, dtype=np.float32)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)


def _sanitize(samples: np.ndarray) -> np.ndarray:
    """Finite values in [-1, 1]: float files may carry NaN/inf or overshoot."""
    samples = np.asarray(samples, dtype=np.float32)
    if not np.all(np.isfinite(samples)):
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0, out=samples if samples.flags.writeable else None)
