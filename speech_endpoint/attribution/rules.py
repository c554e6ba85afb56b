"""Who said which word, repaired: after maximum overlap (rule 0, in `coverage`), three
rules repair what boundary errors of a few hundred ms do at speaker changes
(`speakers.assign_speakers` applies them). Only words that no single speaker's turn clearly
covers may move: a "firm" word (wholly inside its speaker's turn, with no other speaker's
turn within `margin` = 0.25 s of it, a diarizer's plausible boundary error) never does,
whatever Whisper's punctuation says. Each rule is here because it paid on the conversation
corpus (evaluation/attribution_study.py) and did not lose on real meetings
(evaluation/rule_ablation.py); the figures, and which seeds informed which change, are in
docs/benchmarks.md ("Who said it", "How the rules were arrived at").

0. coverage on the full diarization, not the exclusive one: a back-channel ("mhm" inside
   the other speaker's turn, which Whisper does not transcribe) does not take the words
   spoken under it. Among speakers covering a word equally, the one whose turn contains
   the other's keeps it, then the exclusive diarization decides (a hand-over is split in
   the middle of its overlap).
1. edges: the leading and trailing words of a sentence that are not firm and lie within
   `tolerance` of the sentence's main speaker's turn next to them go to that speaker (a
   sentence-final word straddling a boundary that moved). "Next to them" is the turn
   holding the sentence's adjacent word, not a later turn of that speaker after someone
   else's: an unpunctuated "I'm on it which one?" does not send "which" back across the
   other speaker's turn. A sentence also starts at a capitalised function word without a
   full stop before it ("... desktop users The page load time", Whisper in crosstalk;
   `text.starts_sentence`).
2. claims: a turn left without any word of its speaker, and not inside someone else's
   turn, takes the non-firm words whose middle lies in it; failing that, the words near
   it that rule 0 gave its speaker and rule 1 took away ("takeback"); failing that, the
   one word overlapping it most ("overlapped"). This is a one-word reply ("Right,", "No,")
   that Whisper glued to the next speaker's sentence, or that a boundary error gave away.
   When no word overlaps the turn, the last fallback takes the nearest word within
   `tolerance` only if no turn touches that word (Whisper timed it into a pause): on real
   meetings Whisper leaves many short turns without a word, and taking any nearby word
   ("nearest", dropped) gave such a turn its neighbour's word.
3. clause hand-overs: when the speaker changes one word after a comma or full stop and
   that word is not firm, with the next speaker's turn within `margin` of it, the change
   moves to the mark ("Right, [and] I can see", the reply's turn running late into "and").
Rule 1's sentence openers are a word list, used only for the transcript's language where
one was validated (`speech_endpoint.text`: English).

Sentences end at punctuation or at pauses longer than `sentence_pause` (1 s).
Pure logic: no model I/O, no torch.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from speech_endpoint.attribution.turns import Coverage, gap
from speech_endpoint.schema import Turn, Word
from speech_endpoint.attribution.segmentation import sentence_ranges
from speech_endpoint.text import is_clause_end, is_sentence_end, sentence_openers

__all__ = ["DROPPED", "RULES", "Evidence", "RuleSettings", "repair"]

# Rules 1-3, and the parts that can be switched off on their own: "openers" (rule 1's
# sentences also start at a capitalised opener of the language's list), "takeback" and
# "overlapped" (rule 2's second and last fallbacks).
RULES = ("edges", "openers", "claims", "takeback", "overlapped", "clauses")
# What rule 2 no longer does, named so that evaluation/rule_ablation.py can still show what
# it cost: "nearest", its last fallback (see above); "shared", taking a word whose own
# speaker's turn also covers its middle (see `_claim_words`).
DROPPED = ("nearest", "shared")


@dataclass(frozen=True)
class Evidence:
    """What the rules read: the words, their (start, end) spans, the exclusive diarization's
    coverage (`cover`) and the full one's (`full`, `full_turns`)."""

    words: Sequence[Word]
    spans: list[tuple[float, float]]
    cover: dict[str, Coverage]
    full: dict[str, Coverage]
    full_turns: list[Turn]


@dataclass(frozen=True)
class RuleSettings:
    """Which rules run (names from `RULES`), their distances in seconds, and the
    transcript's language, whose sentence openers rule 1 may use (`text.sentence_openers`)."""

    rules: Sequence[str] = RULES
    tolerance: float = 0.5
    sentence_pause: float = 1.0
    margin: float = 0.25
    language: str | None = None


def repair(labels: list[str], evidence: Evidence, settings: RuleSettings) -> None:
    """Apply the rules of `settings` to `labels` (rule 0's answer, one per word) in place."""
    words, spans, cover, full = evidence.words, evidence.spans, evidence.cover, evidence.full
    rules, tolerance, margin = settings.rules, settings.tolerance, settings.margin
    firm = [full[label].overlap(s, e) >= (e - s) - 1e-9
            and not any(o != label and c.overlap(s - margin, e + margin) > 1e-9 for o, c in full.items())
            for label, (s, e) in zip(labels, spans)]
    overlap_labels = list(labels)  # rule 0's answer, which rule 2 may restore
    if "edges" in rules:
        split_at = sentence_openers(settings.language) if "openers" in rules else frozenset()
        for sentence in sentence_ranges(words, max_pause=settings.sentence_pause, openers=split_at):
            _fix_edges(labels, spans, sentence, cover, tolerance, firm)
    if "claims" in rules:
        _claim_words(labels, overlap_labels if "takeback" in rules else None, spans, evidence.full_turns, full, margin, firm,
                     tolerance, rules)
    if "clauses" in rules:
        _clause_handovers(labels, spans, words, full, firm, margin)


def _main_speaker(
    labels: list[str],
    spans: list[tuple[float, float]],
    sentence: range,
    cover: dict[str, Coverage],
) -> str | None:
    """The speaker of more than half the sentence's words. On an exact tie (a two-word
    sentence split one-one) the speaker whose turns cover more of the sentence's time
    span decides; None when that is tied too."""
    counts: dict[str, int] = {}
    for i in sentence:
        counts[labels[i]] = counts.get(labels[i], 0) + 1
    top = max(counts.values())
    leaders = [speaker for speaker, count in counts.items() if count == top]
    if len(leaders) == 1:
        return leaders[0] if top * 2 > len(sentence) else None
    first = min(spans[i][0] for i in sentence)
    last = max(spans[i][1] for i in sentence)
    covered = {speaker: cover[speaker].overlap(first, last) for speaker in leaders}
    best = max(covered.values())
    winners = [speaker for speaker, seconds in covered.items() if seconds == best]
    return winners[0] if len(winners) == 1 else None


def _fix_edges(
    labels: list[str],
    spans: list[tuple[float, float]],
    sentence: range,
    cover: dict[str, Coverage],
    tolerance: float,
    firm: list[bool],
) -> None:
    """Rule 1: the leading and trailing runs of words not of the sentence's main speaker
    M go back to M when every word of the run is not firm and lies within `tolerance` of
    M's turn next to the run. A run reaching further is a genuine change of speaker
    (missing punctuation) and stays."""
    main = _main_speaker(labels, spans, sentence, cover)
    if main is None:
        return
    indices = list(sentence)
    for run_indices in (indices, indices[::-1]):
        run = []
        for i in run_indices:
            if labels[i] == main:
                break
            run.append(i)
        if not run:
            continue
        # near the turn holding the sentence's main-speaker word next to the run, not a
        # later turn of that speaker after someone else's
        turn = cover[main].nearest(*spans[run_indices[len(run)]])
        if turn and all(gap(turn, *spans[i]) <= tolerance and not firm[i] for i in run):
            for i in run:
                labels[i] = main


def _claim_words(labels: list[str], overlap_labels: list[str] | None, spans: list[tuple[float, float]],
                 turns: list[Turn], full: dict[str, Coverage], margin: float, firm: list[bool],
                 tolerance: float, parts: Sequence[str]) -> None:
    """Rule 2: a turn that no word of its speaker touches, and that does not lie inside
    another speaker's turn (a back-channel, which Whisper does not transcribe), takes the
    words whose middle lies in it; failing that, the words within `margin` of it that
    maximum overlap (`overlap_labels`, None without "takeback") gave its speaker and rule 1
    took away ("takeback" in `parts`); failing that, the word overlapping it most
    ("overlapped"), else the nearest within `tolerance` that no turn touches. This is a
    one-word reply that a boundary error, or Whisper gluing it to the next sentence, gave
    to the neighbour. Firm words are never taken, nor a word beside the turn that another
    turn holds (unless "nearest"), nor a word inside it whose own speaker's turn also
    covers its middle (unless "shared"): on real speech a turn without a word is often an
    utterance Whisper did not transcribe (overlapped speech, where Whisper writes one
    voice), and the word beside or under it is the other speaker's."""
    spoken: dict[str, list[tuple[float, float]]] = {}
    for label, span in zip(labels, spans):
        spoken.setdefault(label, []).append(span)
    said = {speaker: Coverage(s) for speaker, s in spoken.items()}
    for turn in turns:
        if turn.speaker not in said or said[turn.speaker].distance(turn.start, turn.end) <= 0.0:
            continue  # a speaker without words elsewhere (noise?), or one with words here
        if any(o != turn.speaker and (iv := full[o].interval_at((turn.start + turn.end) / 2)) is not None
               and iv[0] <= turn.start and turn.end <= iv[1] for o in full):
            continue  # inside someone else's turn: a back-channel
        inside = [i for i, (a, b) in enumerate(spans) if turn.start <= (a + b) / 2 <= turn.end and not firm[i]
                  and ("shared" in parts or full[labels[i]].interval_at((a + b) / 2) is None)]
        if not inside and overlap_labels is not None:
            inside = [i for i, (a, b) in enumerate(spans) if overlap_labels[i] == turn.speaker != labels[i]
                      and not firm[i] and a - margin <= turn.end and b + margin >= turn.start]
        if not inside and "overlapped" in parts:  # the word overlapping it most, else the nearest
            near = [(-(min(b, turn.end) - max(a, turn.start)), i) for i, (a, b) in enumerate(spans)
                    if not firm[i] and a - tolerance <= turn.end and b + tolerance >= turn.start]
            if "nearest" not in parts:  # beside the turn: only a word that no turn touches
                near = [(o, i) for o, i in near if o < 0 or all(c.distance(*spans[i]) > 0 for c in full.values())]
            inside = [min(near)[1]] if near else []
        for i in inside:
            labels[i] = turn.speaker


def _ends_clause(text: str) -> bool:
    return is_clause_end(text) or is_sentence_end(text)


def _clause_handovers(labels: list[str], spans: list[tuple[float, float]], words: Sequence[Word],
                      full: dict[str, Coverage], firm: list[bool], margin: float) -> None:
    """Rule 3: a change of speaker one word after a clause or sentence end ("Right, [and]
    I can see") moves to that mark when the word between is not firm and the next
    speaker's turn lies within `margin` of it."""
    for i in range(1, len(labels) - 1):
        a, b = labels[i], labels[i + 1]
        if a == b or labels[i - 1] != a or firm[i]:
            continue
        if _ends_clause(words[i - 1].text) and not _ends_clause(words[i].text) and full[b].distance(*spans[i]) <= margin:
            labels[i] = b
