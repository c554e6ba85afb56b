"""Whisper language codes and the request's language from several windows (pure logic)."""
import numpy as np

from speech_endpoint.whisper.languages import most_likely_language, normalize_language

TOKENS = ["<|en|>", "<|fi|>", "<|de|>"]


def test_codes_and_names():
    assert normalize_language("English") == normalize_language("<|en|>") == normalize_language(" EN ") == "en"
    assert normalize_language("klingon") is None


def test_the_language_of_most_of_the_audio_wins_over_the_first_window():
    probabilities = np.array([[0.36, 0.46, 0.18],   # a short, noisy opening
                              [0.93, 0.05, 0.02],
                              [0.90, 0.07, 0.03]])
    assert most_likely_language(TOKENS, probabilities[:1], [3.0]) == "fi"
    assert most_likely_language(TOKENS, probabilities, [3.0, 20.0, 15.0]) == "en"


def test_weights_are_window_lengths():
    probabilities = np.array([[0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    assert most_likely_language(TOKENS, probabilities, [1.0, 1.0]) == "fi"
    assert most_likely_language(TOKENS, probabilities, [1.0, 4.0]) == "en"
    assert most_likely_language(TOKENS, probabilities, [0.0, 0.0]) == "fi"  # no lengths: plain mean
