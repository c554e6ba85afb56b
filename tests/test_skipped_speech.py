"""The skipped-speech guard: speech that decoding gave no words is decoded once more, its
words merged in time order; sequential decoding's loops are dropped. A stub decoder stands
in for Whisper (it skips the start of long windows, as Whisper base did on a real meeting),
so no model is needed."""
from __future__ import annotations

import numpy as np
import pytest

from speech_endpoint.schema import Redecoded, SpeechActivity, Transcript, Word
from speech_endpoint.speech.skipped_speech import drop_loops, fill_skipped, guard, notes, wordless_stretches

FRAME_S = 0.032
SR = 16000


def activity(duration: float, speech: list[tuple[float, float]]) -> SpeechActivity:
    n = int(np.ceil(duration / FRAME_S))
    mask = np.zeros(n, bool)
    for start, end in speech:
        mask[int(start / FRAME_S):int(np.ceil(end / FRAME_S))] = True
    return SpeechActivity(frame_s=FRAME_S, scores=mask.astype(np.float32), mask=mask)


def words_over(start: float, end: float, step: float = 0.4, tag: str = "w") -> list[Word]:
    return [Word(f" {tag}{i}", t, min(end, t + step * 0.8)) for i, t in enumerate(np.arange(start, end - 0.1, step))]


class SkippingDecoder:
    """Words only in the last 2 s of a window longer than `skip_over` s, else words over
    the whole window; records every call (a list of [start, end) sample spans)."""

    def __init__(self, skip_over: float = 8.0, silent: bool = False):
        self.skip_over, self.silent, self.calls = skip_over, silent, []

    def __call__(self, spans: list[tuple[int, int]]) -> list[Word]:
        self.calls.append(list(spans))
        if self.silent:
            return []
        out = []
        for s, e in spans:
            start, end = s / SR, e / SR
            out += words_over(max(start, end - 2.0) if end - start > self.skip_over else start, end, tag="r")
        return out


def test_speech_near_words_is_not_a_stretch():
    act = activity(20.0, [(1.0, 9.0)])
    assert wordless_stretches(words_over(1.0, 9.0), act) == []


def test_a_skipped_stretch_is_found_and_short_ones_are_not():
    act = activity(30.0, [(1.0, 12.0), (20.0, 20.6)])
    stretches = wordless_stretches(words_over(10.0, 12.0), act, min_speech_s=1.0)
    assert len(stretches) == 1
    start, end = (stretches[0][0] * FRAME_S, stretches[0][1] * FRAME_S)
    assert start == pytest.approx(1.0, abs=FRAME_S) and end < 10.0  # the 0.6 s at 20 s is too short


def test_pauses_split_stretches_and_words_between_them_too():
    act = activity(40.0, [(1.0, 4.0), (8.0, 11.0), (12.0, 14.0)])
    stretches = wordless_stretches([Word(" x", 11.2, 11.5)], act, min_speech_s=1.0, reach_s=0.3)
    assert len(stretches) == 3  # a 4 s pause, then a word between the last two


def test_skipped_speech_is_decoded_again_and_merged_in_time_order():
    act = activity(30.0, [(0.5, 29.5)])
    decoder = SkippingDecoder()
    first = decoder([(0, 30 * SR)])  # the window: words only in its last 2 s
    words, skips = fill_skipped(first, act, 30 * SR, SR, decoder, max_window_s=10.0, min_speech_s=1.0)
    assert len(decoder.calls) == 2 and len(skips) == 1
    assert all(e - s <= 10.0 * SR for s, e in decoder.calls[1])  # windows of the stretch, cut short
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))
    assert skips[0].words == len(words) - len(first) > 0
    assert wordless_stretches(words, act, min_speech_s=1.0) == []  # no speech left without words


def test_a_stretch_is_decoded_again_at_most_once_and_reported_when_it_gives_nothing():
    act = activity(30.0, [(0.5, 29.5)])
    words = words_over(27.5, 29.5)
    decoder = SkippingDecoder(silent=True)
    out, skips = fill_skipped(words, act, 30 * SR, SR, decoder, max_window_s=30.0, min_speech_s=1.0)
    assert len(decoder.calls) == 1 and out == words
    assert len(skips) == 1 and skips[0].words == 0 and skips[0].speech_s > 20
    assert "no words kept" in notes(Redecoded(tuple(skips)))[0]


def test_the_guard_leaves_a_complete_transcript_as_it_was():
    act = activity(10.0, [(1.0, 9.0)])
    transcript = Transcript("a b c", words_over(1.0, 9.0), "en")
    decoder = SkippingDecoder()
    assert guard(transcript, act, 10 * SR, SR, decoder, sequential=False, max_window_s=30.0) is transcript
    assert decoder.calls == []


def test_the_guard_rebuilds_the_text_in_time_order_and_says_what_it_did():
    act = activity(30.0, [(0.5, 29.5)])
    decoder = SkippingDecoder()
    first = decoder([(0, 30 * SR)])
    out = guard(Transcript(" ".join(w.text.strip() for w in first), first, "en"), act, 30 * SR, SR, decoder,
                sequential=False, max_window_s=10.0)
    assert out.text.split()[0].startswith("r") and out.text.split()[-1] == first[-1].text.strip()
    assert out.language == "en" and len(out.redecoded.skips) == 1 and out.redecoded.seconds >= 0
    assert "got no words; decoded again" in notes(out.redecoded)[0]


def test_a_sequential_loop_is_dropped_and_its_speech_decoded_again():
    act = activity(30.0, [(0.5, 29.5)])
    loop = [Word(t, 0.5 + 0.5 * i, 0.9 + 0.5 * i) for i, t in enumerate([" Okay.", " Okay.", " Who", " wants", " to",
                                                                        " take", " notes", " today?"] * 7)]
    decoder = SkippingDecoder(skip_over=60.0)  # the windows decoder reads it all
    out = guard(Transcript("", loop, "en"), act, 30 * SR, SR, decoder, sequential=True, max_window_s=30.0)
    assert out.redecoded.loops == ((loop[0].start, loop[-1].end),)
    assert out.words and all(w.text.startswith(" r") for w in out.words)
    assert "repeated itself" in notes(out.redecoded)[0]


def test_ordinary_speech_is_not_taken_for_a_loop():
    text = ("So the three of you and let's see myself and Marika who's not here and occasionally Melissa will "
            "all be doing checking of the transcriptions. Yeah. Yeah. Okay.").split()
    words = [Word(" " + t, i * 0.3, i * 0.3 + 0.25) for i, t in enumerate(text)]
    assert drop_loops(words) == (words, [])
