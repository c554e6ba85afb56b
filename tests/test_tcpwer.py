"""tcpWER against its definition: cpWER when time does not matter, and a word at the wrong
time (right speaker, right text) costs a deletion and an insertion."""
import pytest

from evaluation import scoring
from evaluation.tcpwer import TimedWord, constrained_errors, reference_words, tcpwer

STM = [("alice", 0.0, 3.0, "Good morning everyone."), ("bob", 3.5, 5.0, "Morning, shall we start?"),
       ("alice", 6.0, 8.0, "Yes, let us begin.")]


def words_of(rows, shift=0.0, swap=()):
    """Response-style words for `rows`, each word spread over its row, speakers as given
    (or swapped for the row indices in `swap`)."""
    out = []
    for k, (speaker, start, end, text) in enumerate(rows):
        tokens = text.split()
        step = (end - start) / len(tokens)
        for i, token in enumerate(tokens):
            who = {"alice": "bob", "bob": "alice"}[speaker] if k in swap else speaker
            out.append({"word": token, "start": start + shift + i * step, "end": start + shift + (i + 1) * step,
                        "speaker": f"S_{who}"})
    return out


def test_a_perfect_hypothesis_scores_zero():
    result = tcpwer(STM, words_of(STM))
    assert result["tcpwer"] == 0 and result["mapping"] == {"alice": "S_alice", "bob": "S_bob"}
    assert result["ref_words"] == len(scoring.normalize(" ".join(r[3] for r in STM)).split())


def test_with_a_huge_collar_it_is_cpwer():
    hypothesis = words_of(STM, swap=(1,))
    cp = scoring.cpwer_details(scoring.speaker_texts(STM),
                               scoring.speaker_texts([(w["speaker"], w["word"]) for w in hypothesis]))
    assert tcpwer(STM, hypothesis, collar=1000.0)["errors"] == cp["errors"]


def test_the_right_words_at_the_wrong_time_are_errors():
    late = tcpwer(STM, words_of(STM, shift=20.0), collar=5.0)
    n = late["ref_words"]
    assert late["errors"] == 2 * n  # every word: a deletion plus an insertion
    assert tcpwer(STM, words_of(STM, shift=4.0), collar=5.0)["errors"] == 0  # within the collar


def test_constrained_levenshtein():
    ref = [TimedWord("a", 0, 1), TimedWord("b", 1, 2)]
    assert constrained_errors(ref, [TimedWord("a", 0.5, 0.5), TimedWord("x", 1.5, 1.5)], 0.0) == 1
    assert constrained_errors(ref, [TimedWord("a", 9, 9), TimedWord("b", 9, 9)], 0.0) == 4
    assert constrained_errors(ref, [], 0.0) == 2 and constrained_errors([], ref, 0.0) == 2


def test_reference_words_share_their_row_by_characters():
    (alice, *_) = reference_words([("alice", 0.0, 3.0, "aa bbbb")])["alice"], None
    assert [w.text for w in alice] == ["aa", "bbbb"]
    assert alice[0].end == pytest.approx(1.0) and alice[1].end == pytest.approx(3.0)
