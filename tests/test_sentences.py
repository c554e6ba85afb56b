"""Sentence-level segments from word timings, and word records from pipeline chunks."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech_endpoint.schema import Segment, Word
from speech_endpoint.text import sentence_openers
from speech_endpoint.attribution.segmentation import segments_from_words, sentence_ranges
from speech_endpoint.text import is_sentence_end, starts_sentence
from speech_endpoint.whisper.sequential import decoded_once, words_from_chunks


def words_from(spec: str, start: float = 0.0, step: float = 0.3, gap: float = 0.0, speaker=None) -> list[Word]:
    out, t = [], start
    for token in spec.split():
        out.append(Word(" " + token, round(t, 6), round(t + step, 6), speaker))
        t += step + gap
    return out


@pytest.mark.parametrize(
    "text, expected",
    [
        (" done.", True), (" why?", True), (" wow!", True), (" so...", True), (" 好。", True),
        (" 吗？", True), (" 好！", True), (' "no."', True), (" (really?)", True), (" well,", False),
        (" Mr.", False), (" Dr.", False), (" e.g.", False), (" word", False), ("", False), (" ", False),
        (" 3.5", False),
    ],
)
def test_is_sentence_end(text, expected):
    assert is_sentence_end(text) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (" The", True), (" We", True), (" So", True), (" Okay.", True), (' "Yes,', True), (" the", False),
        (" I", False), (" I'm", False), (" Laura", False), (" Friday", False), (" Team", False), ("", False),
    ],
)
def test_starts_sentence(text, expected):
    assert starts_sentence(text, sentence_openers("en")) is expected
    assert starts_sentence(text, sentence_openers(None)) is False


def test_capitals_split_sentences_only_with_the_languages_openers():
    """Whisper dropped the full stop between two overlapping speakers but kept the capital."""
    words = words_from("from desktop users The page went up with Laura from Chicago")
    assert sentence_ranges(words) == [range(0, 11)]
    assert sentence_ranges(words, openers=sentence_openers("en")) == [range(0, 3), range(3, 11)]
    assert sentence_ranges(words, openers=sentence_openers("de")) == [range(0, 11)]


def test_only_validated_languages_have_word_lists():
    """English is the one language whose opener list was measured; other languages, an
    unknown one and None get none, so no English word can split their sentences."""
    assert "the" in sentence_openers("en") and sentence_openers("en") == sentence_openers(" EN ")
    for language in ("de", "fr", "es", "zh", "xx", "", None):
        assert sentence_openers(language) == frozenset()


def test_empty():
    assert segments_from_words([]) == []
    assert sentence_ranges([]) == []
    assert words_from_chunks([], duration=5.0) == []


def test_cut_at_sentence_punctuation():
    words = words_from("Hello there. How are you? Fine!")
    assert segments_from_words(words) == [
        Segment("Hello there.", 0.0, 0.6),
        Segment("How are you?", 0.6, 1.5),
        Segment("Fine!", 1.5, 1.8),
    ]


def test_cut_at_long_pause():
    words = words_from("no punctuation here", gap=0.1) + words_from("after a pause", start=5.0)
    segments = segments_from_words(words, max_pause=1.0)
    assert [s.text for s in segments] == ["no punctuation here", "after a pause"]
    assert [s.text for s in segments_from_words(words, max_pause=10.0)] == [
        "no punctuation here after a pause"
    ]


def test_cut_at_speaker_change():
    words = words_from("so I said", speaker="A") + words_from("yes", start=0.9, speaker="B")
    assert [s.text for s in segments_from_words(words)] == ["so I said", "yes"]


def test_cjk_words_join_without_spaces():
    words = [Word("你好", 0.0, 0.5), Word("。", 0.5, 0.6), Word("再见", 0.7, 1.0), Word("！", 1.0, 1.1)]
    assert [s.text for s in segments_from_words(words)] == ["你好。", "再见！"]


def test_long_sentence_cut_at_comma_in_second_half():
    # 40 words of 1 s with a comma after word 25: the 30 s limit cuts right after it.
    tokens = [f"w{i}" + ("," if i == 25 else "") for i in range(40)]
    words = words_from(" ".join(tokens), step=1.0)
    segments = segments_from_words(words, max_duration=30.0)
    assert segments[0].text.endswith("w25,")
    assert all(s.end - s.start <= 30.0 for s in segments)


def test_long_sentence_without_comma_cut_at_largest_pause():
    words = words_from(" ".join(f"w{i}" for i in range(20)), step=1.0, gap=0.1)
    # a 0.8 s pause (under max_pause) after w17
    words = words[:18] + [Word(w.text, w.start + 0.7, w.end + 0.7) for w in words[18:]]
    segments = segments_from_words(words, max_duration=20.0, max_pause=1.0)
    assert segments[0].text.endswith("w17")
    assert all(s.end - s.start <= 20.0 for s in segments)


def test_single_word_longer_than_max_duration_is_kept():
    segments = segments_from_words([Word(" loooong", 0.0, 50.0)], max_duration=30.0)
    assert segments == [Segment("loooong", 0.0, 50.0)]


def test_segments_monotonic_with_disordered_words():
    words = [Word(" a.", 1.0, 2.0), Word(" b.", 0.5, 0.8), Word(" c.", 3.0, 2.0)]
    segments = segments_from_words(words, duration=2.2)
    assert [s.text for s in segments] == ["a.", "b.", "c."]
    for s in segments:
        assert 0.0 <= s.start <= s.end <= 2.2
    for prev, cur in zip(segments, segments[1:]):
        assert prev.end <= cur.start


def test_words_from_chunks_fills_missing_ends_and_starts():
    chunks = [
        {"text": " Hello", "timestamp": (0.0, 0.5)},
        {"text": " big", "timestamp": (0.6, None)},  # end -> next start
        {"text": " world", "timestamp": (None, 1.4)},  # start -> previous end
        {"text": " again.", "timestamp": (1.5, None)},  # last end -> duration
    ]
    words = words_from_chunks(chunks, duration=2.0)
    assert [(w.text, w.start, w.end) for w in words] == [
        (" Hello", 0.0, 0.5),
        (" big", 0.6, 1.4),  # next start unknown: the next known time (its end)
        (" world", 1.4, 1.4),
        (" again.", 1.5, 2.0),
    ]
    simple = [{"text": " a", "timestamp": (0.0, None)}, {"text": " b", "timestamp": (0.7, None)}]
    assert [(w.start, w.end) for w in words_from_chunks(simple, duration=1.0)] == [(0.0, 0.7), (0.7, 1.0)]
    assert all(w.speaker is None for w in words)


def test_words_from_chunks_backwards_and_out_of_range():
    chunks = [
        {"text": " a", "timestamp": (-0.2, 0.3)},
        {"text": " b", "timestamp": (29.8, 30.1)},
        {"text": " c", "timestamp": (29.6, 29.9)},  # steps back at a window seam
        {"text": " d", "timestamp": (31.0, 40.0)},  # past the end of the audio
        {"text": " e", "timestamp": (None, None)},
        {"text": " f", "timestamp": (float("nan"), None)},
    ]
    words = words_from_chunks(chunks, duration=32.0)
    assert [(w.start, w.end) for w in words] == [
        (0.0, 0.3), (29.8, 30.1), (29.8, 29.9), (31.0, 32.0), (32.0, 32.0), (32.0, 32.0)
    ]


def test_a_window_decoded_again_keeps_only_its_later_reading():
    """OpenAI's long-form resumes at an incomplete last segment; transformers 5 keeps both
    readings of it. The later one replaces the earlier words from its start on."""
    first = [(" Well,", 21.8, 22.2), (" there's", 22.2, 22.5), (" not", 22.5, 22.7), (" much.", 22.7, 23.0),
             (" Oh", 29.6, 29.98)]
    again = [(" There's", 22.0, 22.7), (" not", 22.7, 22.8), (" much", 22.8, 23.3)]
    chunks = [{"text": t, "timestamp": (a, b)} for t, a, b in first + again]
    assert [c["text"] for c in decoded_once(chunks, duration=30.0)] == [" Well,", " There's", " not", " much"]
    # a seam's small step back is not a second reading
    seam = [{"text": " b", "timestamp": (29.8, 30.1)}, {"text": " c", "timestamp": (29.6, 29.9)}]
    assert decoded_once(seam, duration=32.0) == seam


def test_nothing_is_read_from_the_last_sliver_of_audio():
    """transformers 4.51 decodes the 20 ms after the last segment into a loop."""
    chunks = [{"text": " now.", "timestamp": (29.6, 29.98)}]
    chunks += [{"text": t, "timestamp": (29.98, 29.98)} for t in (" I", " don't", " know.") * 20]
    assert decoded_once(chunks, duration=30.0) == chunks[:1]
    assert decoded_once([{"text": " a", "timestamp": (None, None)}], duration=1.0) == [{"text": " a", "timestamp": (None, None)}]


# ---- properties -------------------------------------------------------------------------

DURATION = 40.0
maybe_time = st.one_of(st.none(), st.floats(min_value=-5, max_value=50, allow_nan=False), st.just(math.nan))
texts = st.sampled_from([" yes", " no.", " well,", " ok?", " and", " so", "。", " ", ""])
chunk_st = st.builds(lambda t, a, b: {"text": t, "timestamp": (a, b)}, texts, maybe_time, maybe_time)


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(chunk_st, max_size=40), duration=st.floats(min_value=0.0, max_value=DURATION))
def test_property_words_from_chunks(chunks, duration):
    words = words_from_chunks(chunks, duration=duration)
    assert [w.text for w in words] == [c["text"] for c in chunks]
    for w in words:
        assert isinstance(w.start, float) and isinstance(w.end, float)
        assert 0.0 <= w.start <= w.end <= duration
    for prev, cur in zip(words, words[1:]):
        assert prev.start <= cur.start


times = st.floats(min_value=0.0, max_value=DURATION, allow_nan=False)


@st.composite
def word_lists(draw):
    n = draw(st.integers(0, 40))
    out = []
    for i in range(n):
        punct = draw(st.sampled_from(["", "", "", ",", ".", "?"]))
        a, b = draw(times), draw(times)
        out.append(Word(f" w{i}{punct}", a, b, draw(st.sampled_from([None, "A", "B"]))))
    return out


@settings(max_examples=300, deadline=None)
@given(words=word_lists(), max_duration=st.floats(min_value=0.5, max_value=30.0))
def test_property_segments_monotonic_and_complete(words, max_duration):
    segments = segments_from_words(words, max_duration=max_duration, duration=DURATION)
    # every word appears exactly once, in order
    assert " ".join(s.text for s in segments).split() == [w.text.strip() for w in words]
    for s in segments:
        assert s.text and isinstance(s.start, float) and isinstance(s.end, float)
        assert 0.0 <= s.start <= s.end <= DURATION
        if len(s.text.split()) > 1:
            assert s.end - s.start <= max_duration + 1e-9
    for prev, cur in zip(segments, segments[1:]):
        assert prev.end <= cur.start
    # a sentence-final word always ends its segment
    for s in segments:
        for token in s.text.split()[:-1]:
            assert not is_sentence_end(token)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(chunk_st, max_size=30))
def test_property_chunks_to_segments_pipeline(chunks):
    words = words_from_chunks(chunks, duration=DURATION)
    segments = segments_from_words(words, duration=DURATION)
    for prev, cur in zip(segments, segments[1:]):
        assert prev.end <= cur.start
    assert all(0.0 <= s.start <= s.end <= DURATION for s in segments)


def test_non_finite_word_times_never_reach_segments():
    words = [Word(" a", math.nan, 1.0), Word(" b", 0.5, math.inf), Word(" c.", -math.inf, math.nan)]
    segments = segments_from_words(words, duration=3.0)
    assert [s.text for s in segments] == ["a b c."]
    assert all(math.isfinite(s.start) and math.isfinite(s.end) for s in segments)
