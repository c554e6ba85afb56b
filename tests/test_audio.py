"""Decoding: every common container, any rate and channel count, in memory, exact duration."""
import base64

import numpy as np
import pytest

from support.audio_factory import CODECS, bursts, encode, video_only_bytes, wav_bytes
from speech_endpoint.speech.audio import decode, payload_bytes
from speech_endpoint.schema import ClientError


@pytest.mark.parametrize("kind", sorted(CODECS))
def test_each_container_decodes_to_mono_16k_with_its_duration(kind):
    rate = 48000 if kind in ("opus", "webm") else 44100
    data = encode(bursts(2.0, rate, channels=2), rate, kind)
    audio = decode(data)
    assert audio.sample_rate == 16000 and audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    # lossy codecs add a little priming/padding, never seconds
    assert abs(audio.duration - 2.0) < 0.1
    assert np.abs(audio.samples).max() > 0.1


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_wav_at_any_rate_keeps_its_duration(rate):
    audio = decode(wav_bytes(bursts(3.0, rate), rate))
    assert abs(audio.duration - 3.0) < 0.01


def test_sampling_rate_parameter_cannot_skew_a_container():
    data = wav_bytes(bursts(2.0, 8000), 8000)
    assert abs(decode(data, sampling_rate=44100).duration - 2.0) < 0.01


def test_declared_raw_pcm_uses_the_declared_rate():
    pcm = (bursts(2.0, 8000)[:, 0] * 32767).astype("<i2").tobytes()
    audio = decode(pcm, input_format="pcm_s16le", sampling_rate=8000)
    assert abs(audio.duration - 2.0) < 0.01
    f32 = bursts(1.0, 16000)[:, 0].astype("<f4").tobytes()
    assert abs(decode(f32, input_format="pcm_f32le", sampling_rate=16000).duration - 1.0) < 0.001


def test_float_wav_with_nan_and_inf_is_sanitised():
    samples = bursts(1.0, 16000)
    samples[100:200] = np.nan
    samples[300] = np.inf
    audio = decode(wav_bytes(samples, 16000, subtype="FLOAT"))
    assert np.all(np.isfinite(audio.samples)) and np.abs(audio.samples).max() <= 1.0


def test_wav_with_no_samples_is_empty_audio_not_an_error():
    audio = decode(wav_bytes(np.zeros((0, 1), np.float32), 16000))
    assert audio.duration == 0


def test_truncated_file_with_audio_decodes_what_it_holds():
    data = encode(bursts(4.0, 44100), 44100, "mp3")
    audio = decode(data[: len(data) // 2])
    assert 1.0 < audio.duration < 3.0


@pytest.mark.parametrize("payload", [
    b"\x00" * 10, b"hello world, this is not audio at all", np.random.default_rng(1).bytes(5000),
])
def test_bytes_that_are_no_audio_are_a_client_error(payload):
    with pytest.raises(ClientError, match="(?i)audio"):
        decode(payload)


def test_a_file_with_no_audio_track_is_a_client_error():
    with pytest.raises(ClientError, match="no audio track"):
        decode(video_only_bytes())


def test_truncated_header_only_is_a_client_error():
    data = encode(bursts(1.0, 44100), 44100, "m4a")
    with pytest.raises(ClientError):
        decode(data[:40])


def test_duration_limit():
    with pytest.raises(ClientError, match="longer than the limit"):
        decode(wav_bytes(bursts(3.0, 16000), 16000), max_seconds=2)


def test_payload_forms():
    raw = wav_bytes(bursts(0.5), 16000)
    assert payload_bytes(raw, 10**6) == raw
    assert payload_bytes(base64.b64encode(raw).decode(), 10**6) == raw
    assert payload_bytes("data:audio/wav;base64," + base64.b64encode(raw).decode(), 10**6) == raw
    for bad, message in [(None, "no 'inputs'"), ("", "empty"), (b"", "empty"), ("%%%not base64", "base64"),
                         (123, "base64 string or raw bytes"), ({"a": 1}, "base64 string or raw bytes")]:
        with pytest.raises(ClientError, match=message):
            payload_bytes(bad, 10**6)
    with pytest.raises(ClientError, match="larger than the limit"):
        payload_bytes(raw, 100)
