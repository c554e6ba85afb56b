"""Cutting audio into decoding windows from the speech activity: every speech frame in a
window, no window longer than the limit, cuts where the speech score is lowest."""
import numpy as np
from hypothesis import given, settings, strategies as st

from speech_endpoint.schema import SpeechActivity
from speech_endpoint.speech.activity import speech_windows

RATE = 16000
FRAME_S = 0.032


def activity(mask, scores=None) -> SpeechActivity:
    mask = np.asarray(mask, bool)
    return SpeechActivity(frame_s=FRAME_S, scores=mask.astype(np.float32) if scores is None else scores, mask=mask)


def frames(seconds: float) -> int:
    return int(round(seconds / FRAME_S))


def test_no_speech_no_windows():
    assert speech_windows(activity(np.zeros(frames(5.0))), 5 * RATE, RATE) == []


def test_long_silences_are_left_out():
    mask = np.zeros(frames(12.0), bool)
    mask[frames(3.0):frames(5.0)] = True
    mask[frames(10.0):] = True
    (start, end), = speech_windows(activity(mask), 12 * RATE, RATE)  # both fit one window
    assert 2.7 * RATE < start < 3.0 * RATE and end == 12 * RATE


def test_a_long_stretch_is_cut_where_the_score_is_lowest():
    n = frames(50.0)
    scores = np.full(n, 0.9, np.float32)
    scores[frames(27.0)] = 0.1  # the one pause-like frame in the last third of the first window
    (s1, e1), (s2, e2) = speech_windows(activity(np.ones(n), scores), 50 * RATE, RATE, 30.0)
    assert e1 == s2 == frames(27.0) * 512
    assert e1 - s1 <= 30 * RATE and e2 == 50 * RATE


@settings(max_examples=50, deadline=None)
@given(spec=st.lists(st.tuples(st.booleans(), st.integers(1, 400)), min_size=1, max_size=30),
       max_window=st.floats(5.0, 30.0), seed=st.integers(0, 100))
def test_windows_cover_the_speech_without_overlap_and_fit_the_limit(spec, max_window, seed):
    mask = np.concatenate([np.full(length, flag) for flag, length in spec])
    scores = np.random.default_rng(seed).random(len(mask)).astype(np.float32)
    total = len(mask) * 512 - 100
    windows = speech_windows(activity(mask, scores), total, RATE, max_window)
    assert bool(windows) == bool(mask.any())
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        assert e1 <= s2
    covered = np.zeros(total, bool)
    for s, e in windows:
        assert 0 <= s < e <= total
        assert (e - s) / RATE <= max_window + 1e-6
        covered[s:e] = True
    speech_samples = np.flatnonzero(np.repeat(mask, 512)[:total])
    assert covered[speech_samples].all()
