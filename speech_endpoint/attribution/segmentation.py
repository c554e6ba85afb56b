"""Sentence-level segments and speaker utterances built from word timings.

Whisper's own segments can span 30-45 s and several speakers; cutting at sentence
punctuation, pauses and speaker changes gives chunks a reader (and an SRT file) can use.
Pure logic: no model I/O, no torch.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from speech_endpoint.schema import Segment, Utterance, Word
from speech_endpoint.text import finite, is_clause_end, is_sentence_end, join_words, starts_sentence


def word_span(word: Word) -> tuple[float, float]:
    """(start, end) with start <= end. A word whose start is after its end (a timing
    glitch) is treated as a point at the middle of the two, so it still has one place.
    A non-finite time (NaN, inf) takes the other one, or 0 when both are broken, so no
    NaN ever reaches a response."""
    start, end = finite(word.start), finite(word.end)
    start = start if start is not None else (end if end is not None else 0.0)
    end = end if end is not None else start
    if end < start:
        middle = (start + end) / 2
        return middle, middle
    return start, end


def monotonic(spans: Iterable[tuple[float, float]], *, floor: float | None = None,
              ceiling: float | None = None) -> list[tuple[float, float]]:
    """Spans made time-ordered: each starts no earlier than the previous one ends (and than
    `floor`) and ends no earlier than it starts; with `ceiling`, both are cut to it."""
    previous = -math.inf if floor is None else floor
    out = []
    for start, end in spans:
        start = max(start, previous)
        end = max(end, start)
        if ceiling is not None:
            start, end = min(start, ceiling), min(end, ceiling)
        out.append((start, end))
        previous = end
    return out


def sentence_ranges(words: Sequence[Word], *, max_pause: float = 1.0,
                    openers: frozenset[str] = frozenset()) -> list[range]:
    """Index ranges of the sentences in `words`: a sentence ends at sentence-final
    punctuation or where the pause to the next word exceeds `max_pause` seconds (speech
    without punctuation still gets broken at silences); with `openers`, also before a
    word that `starts_sentence`. Speakers are ignored here, so diarization smoothing can
    reason about whole sentences."""
    ranges: list[range] = []
    begin = 0
    for i in range(len(words) - 1):
        gap = word_span(words[i + 1])[0] - word_span(words[i])[1]
        opener = bool(openers) and starts_sentence(words[i + 1].text, openers)
        if is_sentence_end(words[i].text) or gap > max_pause or opener:
            ranges.append(range(begin, i + 1))
            begin = i + 1
    if words:
        ranges.append(range(begin, len(words)))
    return ranges


def _split_long(words: Sequence[Word], piece: range, max_duration: float) -> list[range]:
    """Cut `piece` so no part lasts longer than `max_duration` (unless it is one word).

    Greedy from the left: when the next word would overrun, cut inside the current part,
    at a comma in its second half if there is one, else at its largest pause (latest on a
    tie). Both choices keep parts reasonably long and cut where a reader expects it."""
    parts: list[range] = []
    begin = piece.start
    while begin < piece.stop:
        part_start, first_end = word_span(words[begin])
        if first_end - part_start > max_duration:  # one overlong word: a part of its own
            parts.append(range(begin, begin + 1))
            begin += 1
            continue
        stop = begin + 1
        while stop < piece.stop and word_span(words[stop])[1] - part_start <= max_duration:
            stop += 1
        if stop == piece.stop:
            parts.append(range(begin, stop))
            break
        # words[begin:stop] fits; words[stop] would overrun. Cut before some j in (begin, stop].
        candidates = list(range(begin + 1, stop + 1))
        half = part_start + max_duration / 2

        def gap_before(j: int) -> float:
            return word_span(words[j])[0] - word_span(words[j - 1])[1]

        second_half = [j for j in candidates if word_span(words[j - 1])[1] >= half]
        commas = [j for j in second_half if is_clause_end(words[j - 1].text)]
        pool = commas or second_half or candidates
        cut = max(pool, key=lambda j: (gap_before(j), j))
        parts.append(range(begin, cut))
        begin = cut
    return parts


def segments_from_words(
    words: Sequence[Word],
    *,
    max_pause: float = 1.0,
    max_duration: float = 30.0,
    duration: float | None = None,
) -> list[Segment]:
    """Sentence-level segments from word timings.

    Cuts after sentence-final punctuation, at pauses longer than `max_pause` seconds, and
    wherever the speaker changes (words with speakers, e.g. after diarization, so a chunk
    never mixes two people); a part longer than `max_duration` is cut again at a comma or
    the largest pause. Timestamps are never null and are monotonic: each segment starts no
    earlier than the previous one ends and ends no earlier than it starts; with `duration`
    they are also clamped to [0, duration]. Segments whose text is empty are dropped.
    """
    if not words:
        return []
    pieces: list[range] = []
    for sentence in sentence_ranges(words, max_pause=max_pause):
        begin = sentence.start
        for i in range(sentence.start, sentence.stop - 1):
            if words[i].speaker != words[i + 1].speaker:
                pieces.append(range(begin, i + 1))
                begin = i + 1
        pieces.append(range(begin, sentence.stop))

    parts = [part for piece in pieces for part in _split_long(words, piece, max_duration)]
    texts = [join_words([words[i] for i in part]) for part in parts]
    kept = [(text, part) for text, part in zip(texts, parts) if text]
    spans = [(word_span(words[part.start])[0], max(word_span(words[i])[1] for i in part)) for _, part in kept]
    floor = 0.0 if duration is not None else None
    return [Segment(text=text, start=start, end=end)
            for (text, _), (start, end) in zip(kept, monotonic(spans, floor=floor, ceiling=duration))]


def group_utterances(words: Sequence[Word], *, duration: float | None = None) -> list[Utterance]:
    """Consecutive words of one speaker as one utterance.

    Text is joined as Whisper tokens are (words carry their leading space), stripped;
    the span runs from the first word's start to the latest end among its words. Spans
    are made time-ordered and non-overlapping even if word timings are slightly out of
    order (each start is clamped to the previous end, each end to at least its start),
    and clamped to [0, duration] when `duration` is given. Words without a speaker
    (`assign_speakers` had no turns) belong to no utterance: with no turns there are no
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
