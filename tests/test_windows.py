"""Cutting audio at pauses into decoding windows, and the energy gate."""
import numpy as np
from hypothesis import given, settings, strategies as st

from support.audio_factory import bursts
from speech_endpoint.speech_activity import energy_activity, has_speech
from speech_endpoint.windows import speech_windows

RATE = 16000


def windows_of(samples, max_window=30.0):
    return speech_windows(energy_activity(samples, RATE), len(samples), RATE, max_window)


def speech_in(samples) -> bool:
    return has_speech(energy_activity(samples, RATE))


def test_silence_and_steady_noise_have_no_windows_and_no_speech():
    silence = np.zeros(5 * RATE, np.float32)
    noise = (0.003 * np.random.default_rng(0).standard_normal(20 * RATE)).astype(np.float32)
    for samples in (silence, noise):
        assert windows_of(samples) == [] and not speech_in(samples)


def test_long_silences_are_left_out_and_windows_are_cut_in_pauses():
    burst = bursts(2.0)[:, 0]
    samples = np.concatenate([np.zeros(3 * RATE), burst, np.zeros(5 * RATE), burst]).astype(np.float32)
    windows = windows_of(samples)
    assert len(windows) == 1  # both bursts fit one window, but the leading silence is skipped
    start, end = windows[0]
    assert 2.5 * RATE < start < 3.0 * RATE and end >= 12 * RATE - 1


@settings(max_examples=25, deadline=None)
@given(seconds=st.floats(1.0, 95.0), max_window=st.floats(5.0, 30.0))
def test_windows_cover_the_speech_without_overlap_and_fit_the_limit(seconds, max_window):
    samples = bursts(seconds)[:, 0]
    windows = windows_of(samples, max_window)
    assert windows, "bursts are speech-like"
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        assert e1 <= s2
    for s, e in windows:
        assert 0 <= s < e <= len(samples)
        assert (e - s) / RATE <= max_window + 1e-6
    loud = np.flatnonzero(np.abs(samples) > 0.2)
    covered = np.zeros(len(samples), bool)
    for s, e in windows:
        covered[s:e] = True
    assert covered[loud].all()


def test_quiet_speech_in_steady_noise_is_still_speech():
    rng = np.random.default_rng(1)
    samples = 0.05 * bursts(4.0)[:, 0] + (0.005 * rng.standard_normal(4 * RATE)).astype(np.float32)
    assert speech_in(samples)
