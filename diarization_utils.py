"""Who said which word: diarization turns joined to Whisper's word timings.

The old reference labelled whole Whisper chunks (up to ~45 s, many turns) with a single
speaker, which put most of a dialogue under the wrong name. Here every word gets the
speaker it overlaps most, then three small, explainable smoothing rules undo the errors
a diarizer's boundaries (often a few hundred ms off) cause at speaker changes:

1. islands:   1-2 words of another speaker inside a sentence, with the same speaker on
              both sides, go back to that speaker (a boundary wobble, not a new turn);
2. edges:     a sentence's leading/trailing words assigned to another speaker go back to
              the sentence's main speaker when they all lie within `tolerance` seconds of
              that speaker's turns (a sentence-final word straddling the boundary);
3. orphans:   a turn left with no words of its speaker (who does speak elsewhere)
              claims the whole short sentence (<= `max_island_words` words) lying
              within `tolerance` of it that it overlaps most (or is nearest) - a
              one-word reply ("Yes.") that a boundary error gave to the neighbour.

Sentences (punctuation, or pauses longer than `sentence_pause`) are what protects a real
one-word reply: a sentence on its own is never an island or an edge of another sentence.

Pure logic: no model I/O, no torch.
"""
from __future__ import annotations

from bisect import bisect_left
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


# ---- smoothing rules -------------------------------------------------------------------


def _fill_islands(labels: list[str], sentence: range, max_words: int, firm: list[bool]) -> None:
    """Rule 1: up to `max_words` words between two words of speaker Y in one sentence
    become Y, unless one of them is firm."""
    if max_words <= 0:
        return
    changed = True
    while changed:
        changed = False
        last_seen: dict[str, int] = {}
        for i in sentence:
            speaker = labels[i]
            j = last_seen.get(speaker)
            # j is Y's previous word, so everything between is someone else
            if j is not None and 0 < i - j - 1 <= max_words and not any(firm[j + 1:i]):
                for k in range(j + 1, i):
                    labels[k] = speaker
                changed = True
                break
            last_seen[speaker] = i


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
    """Rule 2: the leading and trailing runs of words not of the sentence's main speaker
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


def _claim_orphans(
    labels: list[str],
    spans: list[tuple[float, float]],
    sentences: list[range],
    turns: list[Turn],
    tolerance: float,
    max_words: int,
    min_turn: float,
    firm: list[bool],
) -> None:
    """Rule 3: a turn (at least `min_turn` long) that no word of its speaker touches
    takes the short whole sentence lying within `tolerance` of it that it overlaps
    most, or failing any overlap, the nearest one (jittered boundaries can shrink a
    one-word reply's turn to a sliver beside its word). Only speakers who have words
    elsewhere claim: one with no words at all is more likely noise or laughter than a
    swallowed reply. Each sentence is claimed at most once."""
    if max_words <= 0:
        return
    spoken: dict[str, list[tuple[float, float]]] = {}
    for label, span in zip(labels, spans):
        spoken.setdefault(label, []).append(span)
    said = {speaker: Coverage(s) for speaker, s in spoken.items()}
    short = sorted(
        (spans[r.start][0], max(spans[i][1] for i in r), k)
        for k, r in enumerate(sentences)
        if len(r) <= max_words
    )
    firsts = [first for first, _, _ in short]
    claimed: set[int] = set()
    for turn in turns:
        if turn.end - turn.start < min_turn or turn.speaker not in said:
            continue
        if said[turn.speaker].distance(turn.start, turn.end) <= 0.0:
            continue  # some word of this speaker touches the turn
        best, best_score = None, None
        lo = bisect_left(firsts, turn.start - tolerance)
        for first, last, k in short[lo:]:
            if first > turn.end + tolerance:
                break
            if k in claimed or last > turn.end + tolerance or any(firm[i] for i in sentences[k]):
                continue
            overlap = min(last, turn.end) - max(first, turn.start)  # < 0: a gap
            score = (max(overlap, 0.0), min(overlap, 0.0))  # most overlap, else nearest
            if best_score is None or score > best_score:
                best, best_score = k, score
        if best is not None:
            claimed.add(best)
            for i in sentences[best]:
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
    raw = assign_speakers(words, diarization.exclusive, relabel=False) if words else []
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
    relabel: bool = True,
    smooth: bool = True,
    tolerance: float = 0.5,
    max_island_words: int = 2,
    sentence_pause: float = 1.0,
    min_turn: float = 0.0,
    firm_margin: float | None = 0.0,
    rules: Sequence[str] = ("islands", "edges", "orphans"),
) -> list[Word]:
    """Give every word exactly one speaker.

    Same words, same order, same text and timings; only `speaker` is set. With `relabel`
    (default) speakers are named SPEAKER_00, SPEAKER_01, ... in order of first appearance
    in the words, whatever pyannote called them; `relabel=False` keeps the diarizer's
    labels, e.g. to build one `speaker_label_map(words, full_turns)` that renames the
    words and the RTTM turns alike (see `relabel_in_order`). A word goes to
    the speaker whose turns cover most of it, or, in a gap or with zero length, to the
    nearest turn; a word with start > end counts as a point midway. Turns may be unsorted
    and may overlap (overlapping turns of one speaker are merged first).

    With `smooth` the three rules of the module docstring fix boundary wobble:
    islands of <= `max_island_words` words, sentence edges within `tolerance` seconds of
    the sentence's main speaker, and turns left without words claiming a short sentence
    (turns shorter than `min_turn` never claim). Sentences end at . ? ! (and CJK forms)
    or at pauses longer than `sentence_pause`. `smooth=False` is plain maximum overlap.

    No usable turns (none, or none with finite times): every word gets speaker None,
    leaving the caller to decide (e.g. report no speakers).
    """
    clean = clean_turns(turns)
    if not clean:
        return [replace(w, speaker=None) for w in words]
    if not words:
        return []
    cover = coverages(clean)
    spans = [word_span(w) for w in words]
    labels = max_overlap_speakers(spans, cover)
    if smooth:
        firm = [firm_margin is not None and cover[label].overlap(s - firm_margin, e + firm_margin)
                >= (e - s) + 2 * firm_margin - 1e-9 for label, (s, e) in zip(labels, spans)]
        sentences = sentence_ranges(words, max_pause=sentence_pause)
        for sentence in sentences:
            if "islands" in rules:
                _fill_islands(labels, sentence, max_island_words, firm)
            if "edges" in rules:
                _fix_edges(labels, spans, sentence, cover, tolerance, firm)
        if "orphans" in rules:
            _claim_orphans(labels, spans, sentences, clean, tolerance, max_island_words, min_turn, firm)
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
