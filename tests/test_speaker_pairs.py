"""The known-speaker study's bookkeeping (evaluation/speaker_pairs.py): who speaks alone
where, whose a diarized speaker is, and which names count as right or wrong."""
import pytest

from evaluation.speaker_pairs import alone_spans, kind, majority_speakers, named_rates, take, total
from speech_endpoint.schema import Turn


def test_speech_alone_leaves_out_overlap():
    spans = alone_spans([Turn(0.0, 2.0, "a"), Turn(1.5, 3.0, "b"), Turn(4.0, 5.0, "a")], 6.0)
    assert spans["a"] == [(0.0, 1.5), (4.0, 5.0)] and spans["b"] == [(2.0, 3.0)]
    assert take(spans["a"], 2.0) == [(0.0, 1.5), (4.0, 4.5)] and total(take(spans["a"], 9.0)) == pytest.approx(2.5)


def test_a_diarized_speaker_is_whoever_has_most_of_its_time():
    gold = [Turn(0.0, 4.0, "a"), Turn(4.0, 10.0, "b")]
    owner = majority_speakers([Turn(0.0, 5.0, "S0"), Turn(5.0, 6.0, "S1"), Turn(3.5, 4.2, "S1")], gold)
    assert owner == {"S0": "a", "S1": "b"}


def test_a_name_on_anothers_speaker_is_wrong_whether_or_not_the_person_is_there():
    clip = {"owner": {"S0": "a", "S1": "b"}, "speakers": ["a", "b"], "present": ["a"],
            "references": ["a@m1", "z@x1"], "embeddings": {"S0": [1.0, 0.0], "S1": [0.0, 1.0]}}
    assert [kind("a", "S0", clip), kind("a", "S1", clip), kind("z", "S0", clip)] == ["same", "misplaced", "absent"]
    refs = {"a@m1": [0.9, 0.1], "z@x1": [0.2, 0.8]}  # z resembles b
    assert named_rates([clip], refs, 0.9, single=True) == {
        "true": 1, "named": 1, "no_own_speaker": 0, "absent": 1, "misplaced": 0}
    assert named_rates([clip], refs, 0.99, single=True)["absent"] == 0
