"""The one rule that makes overlapping diarization turns exclusive (pyannote 3, the oracle)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from speech_endpoint.schema import Turn
from speech_endpoint.attribution.turns import exclusive_turns, merge_per_speaker


def rows(turns):
    return [(round(t.start, 6), round(t.end, 6), t.speaker) for t in turns]


def test_hand_over_is_cut_in_the_middle_and_a_back_channel_keeps_its_turn():
    turns = [Turn(0.5, 3.5, "alice"), Turn(4.0, 7.0, "bob"), Turn(6.5, 9.0, "alice"), Turn(7.2, 7.5, "bob")]
    assert rows(exclusive_turns(turns)) == [
        (0.5, 3.5, "alice"),
        (4.0, 6.75, "bob"),     # hand-over overlap 6.5-7.0 cut in its middle
        (6.75, 7.2, "alice"),
        (7.2, 7.5, "bob"),      # the back-channel keeps its whole turn
        (7.5, 9.0, "alice"),
    ]
    assert exclusive_turns([]) == []


def test_a_hand_over_near_the_start_of_a_turn_is_cut_in_the_middle_too():
    assert rows(exclusive_turns([Turn(1.03, 2.67, "A"), Turn(0.9, 1.08, "B")])) == [
        (0.9, 1.055, "B"), (1.055, 2.67, "A")]


def test_one_speakers_overlapping_turns_are_one_stretch():
    """A speaker's own overlapping turns never hand the floor to themselves and back."""
    turns = [Turn(3.72, 7.21, "B"), Turn(5.44, 7.78, "A"), Turn(6.49, 10.1, "A"), Turn(7.42, 10.62, "A")]
    assert merge_per_speaker(turns) == [Turn(3.72, 7.21, "B"), Turn(5.44, 10.62, "A")]
    assert rows(exclusive_turns(turns)) == [(3.72, 6.325, "B"), (6.325, 10.62, "A")]


def test_three_at_once_goes_to_the_latest_start():
    turns = [Turn(0, 10, "A"), Turn(2, 12, "B"), Turn(4, 6, "C")]
    pieces = exclusive_turns(turns)
    assert ("C" in {t.speaker for t in pieces if t.start <= 5 <= t.end})


times = st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 2))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(times, st.floats(0.05, 6).map(lambda x: round(x, 2)), st.sampled_from("ABC")),
                max_size=8))
def test_exclusive_turns_never_overlap_and_cover_exactly_what_the_turns_cover(spec):
    turns = [Turn(s, s + d, spk) for s, d, spk in spec]
    pieces = exclusive_turns(turns)
    for a, b in zip(pieces, pieces[1:]):
        assert a.end <= b.start + 1e-9
    for piece in pieces:
        assert piece.start < piece.end
        middle = (piece.start + piece.end) / 2
        assert any(t.speaker == piece.speaker and t.start <= middle <= t.end for t in turns)
    for t in turns:  # every covered instant stays covered by someone
        middle = (t.start + t.end) / 2
        assert any(p.start - 1e-9 <= middle <= p.end + 1e-9 for p in pieces)
