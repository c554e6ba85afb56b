"""Pieces of cross-attention word timing that need no model."""
import numpy as np
import pytest
import torch

from speech_endpoint.whisper.alignment import clamp_long_words, dtw, median_filter
from speech_endpoint.schema import Word


def test_dtw_follows_the_cheap_diagonal_and_is_monotonic():
    cost = np.ones((4, 12))
    for i, frames in enumerate([(0, 3), (3, 6), (6, 9), (9, 12)]):
        cost[i, frames[0]:frames[1]] = 0
    rows, cols = dtw(cost)
    assert rows[0] == 0 and cols[0] == 0 and rows[-1] == 3 and cols[-1] == 11
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0)
    first_frame_of_row = [int(cols[np.argmax(rows == r)]) for r in range(4)]
    assert first_frame_of_row == [0, 3, 6, 9]


def test_dtw_single_row_and_column():
    rows, cols = dtw(np.zeros((1, 5)))
    assert list(rows) == [0] * 5 and list(cols) == [0, 1, 2, 3, 4]
    rows, cols = dtw(np.zeros((3, 1)))
    assert list(rows) == [0, 1, 2] and list(cols) == [0, 0, 0]


def test_words_that_swallowed_a_pause_are_clamped():
    words = [Word(" Hello?", 0.0, 5.0), Word(" I", 5.0, 5.2), Word(" am", 5.2, 5.5), Word(" here.", 5.5, 9.0),
             Word(" Yes", 9.0, 9.3)]
    out = clamp_long_words(words)
    assert out[0].end == 5.0 and out[0].start > 4.0       # kept its end, lost the leading pause
    assert out[3].start == 5.5 and out[3].end < 6.5       # sentence end kept its start
    assert out[1:3] == words[1:3] and out[4] == words[4]
    assert clamp_long_words([]) == [] and clamp_long_words(words[:1]) == words[:1]


@pytest.mark.parametrize("width", [3, 7])
@pytest.mark.parametrize("frames", [4, 50])
def test_median_filter_is_the_running_median(width, frames):
    """The sorting network gives exactly what a median over each reflected window gives."""
    torch.manual_seed(frames + width)
    x = torch.randn(2, 5, frames)
    x[0, 0, :3] = 0.25  # ties
    padded = torch.nn.functional.pad(x, (width // 2, width // 2), mode="reflect")
    assert torch.equal(median_filter(x, width), padded.unfold(-1, width, 1).median(dim=-1).values)
    assert torch.equal(median_filter(x[..., :1], width), x[..., :1])  # too short to filter
