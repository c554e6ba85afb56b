"""Who said which word: diarization turns joined to Whisper's word timings.

Every word goes to the speaker whose turn covers most of it, measured on the full
diarization (overlaps kept), then two rules repair what boundary errors of a few hundred
ms do at speaker changes. Only words that no single speaker's turn clearly covers may
move: a "firm" word (wholly inside its speaker's turn, with no other speaker's turn
within `margin` = 0.25 s of it, a diarizer's plausible boundary error) never does,
whatever Whisper's punctuation says. Each rule was kept because it paid on the
conversation corpus (evaluation/corpus.py, seed 0, 19 conversations; cpWER - WER of the
worst conversation, exact turns / turns with every boundary moved by up to 0.25 s, worst
of 5 seeds; evaluation/attribution_study.py); seed 1 chose the margin (0 -> 0.25: worst
jittered 0.046 -> 0.031, no change on seed 0) and seed 2 is the held-out report (README):

0. coverage on the full diarization, not the exclusive one: a back-channel ("mhm" inside
   the other speaker's turn, which Whisper does not transcribe) no longer takes the words
   spoken under it (0.134 / 0.141 -> 0.015 / 0.056); among speakers covering a word
   equally, the one whose turn contains the other's keeps it, then the exclusive
   diarization decides (a hand-over is split in the middle of its overlap).
1. edges: the leading and trailing words of a sentence that are not firm and lie within
   `tolerance` of the turns of the sentence's main speaker go to that speaker (a
   sentence-final word straddling a boundary that moved) (with rule 2: 0.015 / 0.056 ->
   0.007 / 0.018; alone it glued one-word replies to the next sentence: 0.037 / 0.037);
2. claims: a turn left without any word of its speaker, and not inside someone else's
   turn, takes the non-firm words whose middle lies in it, or the one it overlaps most: a
   one-word reply ("Right,") that Whisper glued to the next speaker's sentence, or that a
   boundary error gave away.
Dropped as they did not pay: filling 1-2 word islands inside a sentence (no change), and
claiming only whole short sentences (rule 2 does it and more).

Sentences end at punctuation or at pauses longer than `sentence_pause`.
Pure logic: no model I/O, no torch.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from speech_endpoint.coverage import Coverage, clean_turns, coverages, max_overlap_speakers
from speech_endpoint.schema import Attribution, Diarization, Turn, Utterance, Word
from speech_endpoint.sentences import join_words, monotonic, segments_from_words, sentence_ranges, word_span

__all__ = [
    "attribute",
    "rename_speakers",
    "assign_speakers",
    "speaker_label_map",
    "relabel_in_order",
    "group_utterances",
]

T = TypeVar("T", Word, Utterance, Turn)


# ---- repair rules ----------------------------------------------------------------------


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
    M go back to M when every word of the run lies within `tolerance` of M's turns. A
    run reaching further is a genuine change of speaker (missing punctuation) and stays."""
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
        if run and all(cover[main].distance(*spans[i]) <= tolerance and not firm[i] for i in run):
            for i in run:
                labels[i] = main


def _claim_words(labels: list[str], spans: list[tuple[float, float]], turns: list[Turn],
                 full: dict[str, Coverage], tolerance: float, firm: list[bool]) -> None:
    """Rule 2: a turn that no word of its speaker touches, and that does not lie inside
    another speaker's turn (a back-channel, which Whisper does not transcribe), takes the
    words whose middle lies in it, or failing that the one word overlapping it most (or
    nearest, within `tolerance`): a one-word reply that a boundary error, or Whisper gluing
    it to the next sentence, gave to the neighbour. Firm words are never taken."""
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
        inside = [i for i, (a, b) in enumerate(spans) if turn.start <= (a + b) / 2 <= turn.end and not firm[i]]
        if not inside:
            near = [(-(min(b, turn.end) - max(a, turn.start)), i) for i, (a, b) in enumerate(spans)
                    if not firm[i] and a - tolerance <= turn.end and b + tolerance >= turn.start]
            inside = [min(near)[1]] if near else []
        for i in inside:
            labels[i] = turn.speaker


# ---- public API ----------------------------------------------------------------------------


def attribute(words: Sequence[Word], diarization: Diarization | None) -> Attribution:
    """The product's key step: words with speakers, cut into sentence segments and speaker
    utterances, with the full diarization (and the speakers' vectors) renamed like the words.

    `diarization` None means it did not run (speakers stay None); an empty one means it
    found nobody. Speakers are named SPEAKER_00, 01, ... in order of first appearance in
    the words, then in the full diarization (speakers who said no recognised word)."""
    words = list(words)
    if diarization is None:
        return Attribution(words=words, segments=segments_from_words(words))
    raw = assign_speakers(words, diarization.exclusive, full_turns=diarization.full, relabel=False) if words else []
    mapping = speaker_label_map(raw, diarization.full or diarization.exclusive)
    words = relabel_in_order(raw, mapping)
    turns = relabel_in_order(diarization.full, mapping)
    return Attribution(words=words, segments=segments_from_words(words), utterances=group_utterances(words),
                       turns=turns, labels={t: m for t, m in mapping.items()},
                       embeddings={mapping[k]: v for k, v in diarization.embeddings.items() if k in mapping})


def rename_speakers(attribution: Attribution, names: dict[str, str]) -> Attribution:
    """`attribution` with the speakers in `names` (response label -> name) renamed
    everywhere: words, segments' utterances, turns, vectors."""
    if not names:
        return attribution
    rename = lambda label: names.get(label, label)  # noqa: E731
    return replace(attribution,
                   words=[replace(w, speaker=rename(w.speaker)) if w.speaker else w for w in attribution.words],
                   utterances=[replace(u, speaker=rename(u.speaker)) for u in attribution.utterances],
                   turns=[replace(t, speaker=rename(t.speaker)) for t in attribution.turns],
                   labels={raw: rename(label) for raw, label in attribution.labels.items()},
                   embeddings={rename(label): v for label, v in attribution.embeddings.items()})


def assign_speakers(
    words: Sequence[Word],
    turns: Sequence[Turn],
    *,
    full_turns: Sequence[Turn] | None = None,
    relabel: bool = True,
    smooth: bool = True,
    rules: Sequence[str] = ("edges", "claims"),
    tolerance: float = 0.5,
    sentence_pause: float = 1.0,
    margin: float = 0.25,
) -> list[Word]:
    """Give every word exactly one speaker.

    Same words, same order, same text and timings; only `speaker` is set. `turns` is the
    exclusive diarization (one speaker at a time), `full_turns` the full one (overlaps
    kept; default: `turns`). With `relabel` (default) speakers are named SPEAKER_00,
    SPEAKER_01, ... in order of first appearance in the words, whatever pyannote called
    them; `relabel=False` keeps the diarizer's labels (see `attribute`). A word goes to the
    speaker whose turns cover most of it (rule 0 of the module docstring), or, in a gap or
    with zero length, to the nearest turn; a word with start > end counts as a point
    midway. Turns may be unsorted and may overlap.

    With `smooth`, `rules` (both by default) repair boundary errors; `smooth=False` is
    plain maximum overlap. No usable turns (none, or none with finite times): every word
    gets speaker None, leaving the caller to decide (e.g. report no speakers).
    """
    clean = clean_turns(turns)
    if not clean:
        return [replace(w, speaker=None) for w in words]
    if not words:
        return []
    cover = coverages(clean)
    full_clean = clean_turns(full_turns) if full_turns else clean
    full = coverages(full_clean)
    spans = [word_span(w) for w in words]
    labels = max_overlap_speakers(spans, cover, full)
    if smooth:
        firm = [full[label].overlap(s, e) >= (e - s) - 1e-9
                and not any(o != label and c.overlap(s - margin, e + margin) > 1e-9 for o, c in full.items())
                for label, (s, e) in zip(labels, spans)]
        if "edges" in rules:
            for sentence in sentence_ranges(words, max_pause=sentence_pause):
                _fix_edges(labels, spans, sentence, cover, tolerance, firm)
        if "claims" in rules:
            _claim_words(labels, spans, full_clean, full, tolerance, firm)
    out = [replace(w, speaker=label) for w, label in zip(words, labels)]
    return relabel_in_order(out) if relabel else out


def speaker_label_map(*sequences: Iterable[Word | Utterance | Turn]) -> dict[str, str]:
    """Map the diarizer's labels to SPEAKER_00, SPEAKER_01, ... in order of first
    appearance: across `sequences` in the order given, each in its own order (pass the
    words first, then the turns, so speakers who said no recognised word are numbered
    after those who did). None speakers are skipped. Stable labels within a request make
    the output readable whatever numbering pyannote used internally."""
    mapping: dict[str, str] = {}
    for sequence in sequences:
        for item in sequence:
            speaker = item.speaker
            if speaker is not None and speaker not in mapping:
                mapping[speaker] = f"SPEAKER_{len(mapping):02d}"
    return mapping


def relabel_in_order(items: Sequence[T], mapping: dict[str, str] | None = None) -> list[T]:
    """`items` (words, utterances or turns) with speakers renamed by `mapping` (default:
    `speaker_label_map(items)`). Labels missing from a given mapping get the next free
    numbers in order of appearance, so nothing is left with a raw pyannote label. Use one
    mapping for words and turns to keep e.g. RTTM output consistent with the transcript."""
    mapping = dict(mapping) if mapping is not None else speaker_label_map(items)
    for item in items:
        if item.speaker is not None and item.speaker not in mapping:
            mapping[item.speaker] = f"SPEAKER_{len(mapping):02d}"
    return [
        item if item.speaker is None else replace(item, speaker=mapping[item.speaker])
        for item in items
    ]


def group_utterances(words: Sequence[Word], *, duration: float | None = None) -> list[Utterance]:
    """Consecutive words of one speaker as one utterance.

    Text is joined as Whisper tokens are (words carry their leading space), stripped;
    the span runs from the first word's start to the latest end among its words. Spans
    are made time-ordered and non-overlapping even if word timings are slightly out of
    order (each start is clamped to the previous end, each end to at least its start),
    and clamped to [0, duration] when `duration` is given. Words without a speaker
    (assign_speakers had no turns) belong to no utterance: with no turns there are no
    speakers to report."""
    runs: list[list[Word]] = []
    for word in words:
        if word.speaker is None:
            continue
        if runs and word.speaker == runs[-1][0].speaker:
            runs[-1].append(word)
        else:
            runs.append([word])
    spans = [(word_span(run[0])[0], max(word_span(w)[1] for w in run)) for run in runs]
    floor = 0.0 if duration is not None else None
    return [Utterance(speaker=run[0].speaker, text=join_words(run), start=start, end=end)
            for run, (start, end) in zip(runs, monotonic(spans, floor=floor, ceiling=duration))]
