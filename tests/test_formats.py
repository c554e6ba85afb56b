"""SRT / WebVTT / RTTM output, checked by parsing it back with independent parsers
(`srt`, `webvtt-py`, a minimal RTTM reader) rather than by comparing strings."""
from __future__ import annotations

import html
import io
import re

import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from speech_endpoint.render.formats import MAX_CUE_CHARS, MAX_CUE_SECONDS, cues_from, to_rttm, to_srt, to_vtt
from speech_endpoint.schema import Segment, Turn, Utterance, Word

# ---- readers -------------------------------------------------------------------------


def read_srt(text: str) -> list[tuple[int, int, str]]:
    """(start_ms, end_ms, content) per cue."""
    return [
        (int(s.start.total_seconds() * 1000 + 0.5), int(s.end.total_seconds() * 1000 + 0.5), s.content)
        for s in srt.parse(text)
    ]


def _vtt_ms(stamp: str) -> int:
    parts = stamp.replace(",", ".").split(":")
    seconds = float(parts[-1]) + 60 * int(parts[-2]) + (3600 * int(parts[-3]) if len(parts) == 3 else 0)
    return int(seconds * 1000 + 0.5)


VOICE = re.compile(r"^<v(?:\.[^\s>]+)*\s+([^>]+)>")


def read_vtt(text: str) -> list[tuple[int, int, str, str | None]]:
    """(start_ms, end_ms, unescaped text, voice) per cue; works with webvtt-py 0.4-0.6."""
    reader = getattr(webvtt, "from_buffer", None) or webvtt.read_buffer
    out = []
    for caption in reader(io.StringIO(text)):
        raw = caption.raw_text
        match = VOICE.match(raw)
        voice = html.unescape(match.group(1)) if match else None
        body = raw[match.end():] if match else raw
        body = re.sub(r"</?[a-z][^>]*>", "", body)
        out.append((_vtt_ms(caption.start), _vtt_ms(caption.end), html.unescape(body), voice))
    return out


def read_rttm(text: str) -> list[tuple[str, int, int, str]]:
    """(file_id, start_ms, end_ms, speaker) per SPEAKER line, validating the 10 fields."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        assert len(fields) == 10, line
        kind, file_id, channel, onset, duration, ortho, stype, speaker, conf, lookahead = fields
        assert (kind, channel, ortho, stype, conf, lookahead) == ("SPEAKER", "1", "<NA>", "<NA>", "<NA>", "<NA>")
        assert re.fullmatch(r"\d+\.\d{3}", onset) and re.fullmatch(r"\d+\.\d{3}", duration), line
        start = round(float(onset) * 1000)
        rows.append((file_id, start, start + round(float(duration) * 1000), speaker))
    return rows


def ms(seconds: float) -> int:
    return int(seconds * 1000 + 0.5)


# ---- SRT / VTT ------------------------------------------------------------------------


SEGMENTS = [
    Segment(" Hello there.", 0.0, 1.2345),
    Segment(" General Kenobi!", 1.5, 62.0),
    Segment(" An hour later.", 3723.456, 3725.0),
]
UTTERANCES = [
    Utterance("SPEAKER_00", "Hello there.", 0.0, 1.5),
    Utterance("SPEAKER_01", "General Kenobi!", 1.7, 3.25),
]


def test_srt_round_trips_segments_without_speakers():
    parsed = read_srt(to_srt(cues_from(SEGMENTS)))
    assert parsed == [(ms(s.start), ms(s.end), s.text.strip()) for s in SEGMENTS]


def test_vtt_round_trips_segments_without_voice():
    text = to_vtt(cues_from(SEGMENTS))
    assert text.startswith("WEBVTT\n")
    assert read_vtt(text) == [(ms(s.start), ms(s.end), s.text.strip(), None) for s in SEGMENTS]


def test_speakers_shown_as_srt_prefix_and_vtt_voice():
    cues = cues_from(UTTERANCES)
    assert read_srt(to_srt(cues)) == [(ms(u.start), ms(u.end), f"{u.speaker}: {u.text}") for u in UTTERANCES]
    assert read_vtt(to_vtt(cues)) == [(ms(u.start), ms(u.end), u.text, u.speaker) for u in UTTERANCES]
    assert "<v SPEAKER_00>Hello there." in to_vtt(cues)


def test_timestamp_layout():
    cues = [Utterance(None, "a", 62.345, 63.0), Utterance(None, "b", 3723.456, 3724.0)]
    s, v = to_srt(cues), to_vtt(cues)
    assert "00:01:02,345 --> 00:01:03,000" in s
    assert "01:02:03,456 --> 01:02:04,000" in s
    assert "01:02.345 --> 01:03.000" in v  # hours only when needed
    assert "01:02:03.456 --> 01:02:04.000" in v


def test_rounding_never_ends_before_start_and_output_is_sorted():
    cues = [
        Utterance(None, "later", 5.0, 6.0),
        Utterance(None, "end before start after rounding", 1.0004, 1.0001),
        Utterance(None, "zero length", 2.0, 2.0),
        Utterance(None, "negative start", -0.2, 0.5),
    ]
    for parsed in (read_srt(to_srt(cues)), [c[:3] for c in read_vtt(to_vtt(cues))]):
        starts = [p[0] for p in parsed]
        assert starts == sorted(starts)
        assert all(end > start for start, end, _ in parsed)
        assert parsed[0][:2] == (0, 500)


def test_escaping_keeps_cue_structure():
    tricky = [Utterance(None, "a --> b", 0, 1), Utterance(None, "x < y & z > w", 1, 2), Utterance(None, "two\n\nparagraphs", 2, 3)]
    srt_cues = read_srt(to_srt(tricky))
    assert [c[2] for c in srt_cues] == ["a -> b", "x < y & z > w", "two paragraphs"]
    vtt_cues = read_vtt(to_vtt(tricky))
    assert [c[2] for c in vtt_cues] == ["a --> b", "x < y & z > w", "two paragraphs"]
    assert "-->" not in to_vtt(tricky).split("\n", 3)[3].replace(" --> ", "")


def test_speaker_names_are_escaped_in_vtt():
    cues = [Utterance("Ann & <Bob>", "hi", 0, 1)]
    assert read_vtt(to_vtt(cues)) == [(0, 1000, "hi", "Ann & <Bob>")]


def test_empty_input_gives_valid_empty_files():
    assert to_srt([]) == ""
    assert read_srt(to_srt([])) == []
    assert to_vtt([]).startswith("WEBVTT")
    assert read_vtt(to_vtt([])) == []
    assert cues_from([]) == []
    assert cues_from([Segment("  ", 0, 1)]) == []


def test_renderers_accept_segments_and_utterances_directly():
    assert read_srt(to_srt(UTTERANCES))[1][2] == "SPEAKER_01: General Kenobi!"
    assert read_srt(to_srt(SEGMENTS))[0][2] == "Hello there."


# ---- splitting long cues --------------------------------------------------------------


def _speech(n: int, speaker: str | None = None, t0: float = 0.0, step: float = 0.5):
    words, t = [], t0
    for i in range(n):
        words.append(Word(f" word{i}" + ("," if i % 5 == 4 else ""), t, t + 0.4, speaker))
        t += step
    text = "".join(w.text for w in words).strip()
    return words, text


def test_long_utterance_is_split_at_word_boundaries():
    words, text = _speech(40, "SPEAKER_00")
    item = Utterance("SPEAKER_00", text, 0.0, words[-1].end)
    cues = cues_from([item], words)
    assert len(cues) > 1
    assert " ".join(c.text for c in cues) == text  # no word lost, duplicated or cut
    assert all(c.speaker == "SPEAKER_00" for c in cues)
    assert all(c.end - c.start <= MAX_CUE_SECONDS and len(c.text) <= MAX_CUE_CHARS for c in cues)
    assert cues[0].start == item.start and cues[-1].end == item.end
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:], strict=False))
    # each cut falls on a word's own timing
    starts = {w.start for w in words}
    assert all(c.start in starts for c in cues[1:])
    # sizes are balanced rather than greedy-full + a stub
    lengths = [len(c.text) for c in cues]
    assert max(lengths) - min(lengths) < MAX_CUE_CHARS / 2


def test_long_segment_split_by_duration_alone():
    words, text = _speech(6, step=3.0)  # short text, 18 s long
    cues = cues_from([Segment(text, 0.0, 18.0)], words)
    assert len(cues) >= 2 and all(c.end - c.start <= MAX_CUE_SECONDS for c in cues)
    assert " ".join(c.text for c in cues) == text
    # the trailing silence is not stretched into a cue longer than the limit
    assert cues[0].start == 0.0 and words[-1].end <= cues[-1].end <= 18.0
    assert all(c.speaker is None for c in cues)


def test_words_go_to_their_own_speakers_utterance():
    a_words, a_text = _speech(30, "SPEAKER_00")
    b_words, b_text = _speech(30, "SPEAKER_01", t0=a_words[-1].end + 0.05)
    items = [
        Utterance("SPEAKER_00", a_text, 0.0, a_words[-1].end),
        Utterance("SPEAKER_01", b_text, b_words[0].start, b_words[-1].end),
    ]
    cues = cues_from(items, a_words + b_words)
    assert " ".join(c.text for c in cues if c.speaker == "SPEAKER_00") == a_text
    assert " ".join(c.text for c in cues if c.speaker == "SPEAKER_01") == b_text
    assert len(cues) > 2


def test_not_split_without_words_or_when_words_disagree():
    words, text = _speech(40)
    long_segment = Segment(text, 0.0, 20.0)
    assert cues_from([long_segment]) == [Utterance(None, text, 0.0, 20.0)]
    other = [Word(" different", w.start, w.end) for w in words]
    assert cues_from([long_segment], other) == [Utterance(None, text, 0.0, 20.0)]


def test_short_cues_and_single_long_word_stay_whole():
    assert cues_from([Segment(" Hi.", 0, 1)], [Word(" Hi.", 0, 1)]) == [Utterance(None, "Hi.", 0, 1)]
    assert cues_from([Segment("Aaaah", 0, 10)], [Word("Aaaah", 0, 10)]) == [Utterance(None, "Aaaah", 0, 10)]


def test_cjk_text_without_spaces_is_split_on_its_own_characters():
    words = [Word(ch, i * 0.5, i * 0.5 + 0.4) for i, ch in enumerate("今日は良い天気ですね" * 2)]
    text = "".join(w.text for w in words)
    cues = cues_from([Segment(text, 0.0, 10.0)], words)
    assert len(cues) == 2 and "".join(c.text for c in cues) == text


# ---- RTTM -----------------------------------------------------------------------------


def test_rttm_round_trip_keeps_overlaps_sorted():
    turns = [
        Turn(3.0, 5.5, "SPEAKER_01"),
        Turn(0.5, 4.0, "SPEAKER_00"),  # overlaps the turn above
        Turn(3725.1234, 3726.0, "SPEAKER_00"),
    ]
    text = to_rttm(turns, file_id="call_42")
    assert read_rttm(text) == [
        ("call_42", 500, 4000, "SPEAKER_00"),
        ("call_42", 3000, 5500, "SPEAKER_01"),
        ("call_42", 3725123, 3726000, "SPEAKER_00"),
    ]
    assert text.splitlines()[0] == "SPEAKER call_42 1 0.500 3.500 <NA> <NA> SPEAKER_00 <NA> <NA>"


def test_rttm_edge_cases():
    assert to_rttm([]) == ""
    rows = read_rttm(to_rttm([Turn(1.0, 1.0, "S"), Turn(0.0, 1.0, "Mr Smith")], file_id="my file"))
    assert rows == [("my_file", 0, 1000, "Mr_Smith")]  # zero-length dropped, no spaces in fields


def test_timestamps_must_be_finite():
    with pytest.raises(ValueError):
        to_srt([Utterance(None, "x", float("nan"), 1.0)])


# ---- properties -----------------------------------------------------------------------

_times = st.floats(min_value=0, max_value=20_000, allow_nan=False)
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_times, _times, _text, st.sampled_from([None, "SPEAKER_00", "SPEAKER_01"])), max_size=8))
def test_any_cues_parse_back_with_the_same_times(raw):
    cues = [Utterance(s, t, a, b) for a, b, t, s in raw]
    parsed_srt, parsed_vtt = read_srt(to_srt(cues)), read_vtt(to_vtt(cues))
    expected = sorted((ms(c.start), max(ms(c.end), ms(c.start) + 1)) for c in cues if c.text.split())
    assert [p[:2] for p in parsed_srt] == expected
    assert [p[:2] for p in parsed_vtt] == expected
    for start, end, body, _voice in parsed_vtt:
        assert end > start and body.strip() and "\n" not in body
