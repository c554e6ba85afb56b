"""Word times cut to the speech found: Whisper's spill over pauses goes, speech stays."""
import numpy as np
from hypothesis import given, settings, strategies as st

from evaluation.word_times import summary, timing_counts
from speech_endpoint.schema import SpeechActivity, Word
from speech_endpoint.speech.activity import fit_to_speech

FRAME_S = 0.032


def activity(*speech: tuple[float, float], duration: float = 10.0) -> SpeechActivity:
    """Speech frames at the given (start, end) seconds, silence elsewhere."""
    mask = np.zeros(int(round(duration / FRAME_S)), bool)
    for start, end in speech:
        mask[int(round(start / FRAME_S)):int(round(end / FRAME_S))] = True
    return SpeechActivity(frame_s=FRAME_S, scores=mask.astype(np.float32), mask=mask)


def test_the_first_word_after_a_pause_starts_where_the_speech_does():
    # Whisper stretched "I'd" back over a 2 s pause after an unpunctuated sentence
    words = [Word(" positive", 1.0, 1.6), Word(" I'd", 1.6, 4.1), Word(" like", 4.1, 4.4)]
    found = activity((0.8, 1.696), (3.904, 5.0))
    out = fit_to_speech(words, found)
    assert out[0] == words[0] and out[2] == words[2]  # inside speech: unchanged
    assert out[1].text == " I'd" and np.isclose(out[1].start, 3.904) and out[1].end == 4.1


def test_a_clause_end_that_ran_on_into_silence_ends_where_the_speech_does():
    words = [Word(" Yes,", 2.0, 2.9), Word(" and", 3.5, 3.7)]
    out = fit_to_speech(words, activity((1.984, 2.496), (3.488, 4.0)))
    assert out[0].start == 2.0 and np.isclose(out[0].end, 2.496)
    assert out[1] == words[1]


def test_a_word_without_speech_under_it_keeps_its_times():
    words = [Word(" mhm", 6.0, 6.3), Word(" oh", 7.0, 7.0)]  # quiet speech the VAD missed; zero length
    assert fit_to_speech(words, activity((1.0, 2.0))) == words


def test_nothing_changes_when_every_word_is_speech():
    words = [Word(" a", 0.5, 0.7), Word(" b.", 0.7, 1.2)]
    assert fit_to_speech(words, activity((0.0, 10.0))) == words


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 9.5), st.floats(0.0, 1.5), st.booleans()), max_size=20),
       st.lists(st.booleans(), min_size=312, max_size=312))
def test_words_only_shrink_inside_their_span_and_stay_in_order(raw, mask):
    words, t = [], 0.0
    for gap, length, comma in raw:
        start = min(t + gap / 20, 10.0)
        words.append(Word(" w," if comma else " w", start, min(start + length, 10.0)))
        t = words[-1].end
    found = SpeechActivity(frame_s=FRAME_S, scores=np.asarray(mask, np.float32), mask=np.asarray(mask, bool))
    out = fit_to_speech(words, found)
    assert [w.text for w in out] == [w.text for w in words]
    for before, after in zip(words, out):
        assert before.start <= after.start <= after.end <= before.end
    assert all(a.end <= b.start for a, b in zip(out, out[1:]))


def test_word_time_scores_count_spill_and_edges():
    utterances = [(1.0, 2.0), (4.0, 5.0)]
    words = [Word(" a", 1.0, 2.0), Word(" b", 2.5, 5.05)]  # b starts 1.5 s early, inside the pause
    counts = timing_counts(words, utterances)
    assert np.isclose(counts["outside_s"], 1.55) and counts["edges"] == 2
    s = summary(counts)
    assert s["starts_pct"] == 50.0 and s["ends_pct"] == 100.0
    assert np.isclose(s["outside_pct"], 100 * 1.55 / 3.55)
    fitted = timing_counts([words[0], Word(" b", 4.0, 5.05)], utterances)
    assert summary(fitted)["starts_pct"] == 100.0 and fitted["outside_s"] < counts["outside_s"]
