"""Sentence-level segments built from word timings, and clean word records from the
transformers pipeline's word chunks.

Whisper's own segments can span 30-45 s and several speakers; cutting at sentence
punctuation, pauses and speaker changes gives chunks a reader (and an SRT file) can use.
Pure logic: no model I/O, no torch.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from speech_endpoint.schema import Segment, Word

# Sentence-final marks: Latin, CJK (full/half width), Arabic, Devanagari, Armenian, Ethiopic.
SENTENCE_END = frozenset(".?!…。？！｡؟۔।॥։።")
# Marks after which a long segment is preferably cut (clause boundaries).
CLAUSE_END = frozenset(",;:，、；：،")
# Closing quotes/brackets that may follow the final mark: `He said "no."` ends a sentence.
_CLOSERS = "\"'”’»)]}」』）】"
_OPENERS = "\"'“‘«([{"
# Abbreviations whose dot does not end a sentence (lower-case, with the dot).
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "approx."}
)


def _finite(x: object) -> float | None:
    """`x` as a float, or None when it is missing or not a finite number."""
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def word_span(word: Word) -> tuple[float, float]:
    """(start, end) with start <= end. A word whose start is after its end (a timing
    glitch) is treated as a point at the middle of the two, so it still has one place.
    A non-finite time (NaN, inf) takes the other one, or 0 when both are broken, so no
    NaN ever reaches a response."""
    start, end = _finite(word.start), _finite(word.end)
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


def join_words(words: Sequence[Word]) -> str:
    """The words' text joined as Whisper tokens are: each word carries its own leading
    space (none in CJK), so plain concatenation is right; the result is stripped."""
    return "".join(w.text for w in words).strip()


def is_sentence_end(text: str) -> bool:
    """Whether a word ends a sentence (`done.`, `why?"`, `好。`), ignoring `Mr.`-style
    abbreviations whose dot is not a full stop."""
    stripped = text.strip().rstrip(_CLOSERS)
    if not stripped or stripped[-1] not in SENTENCE_END:
        return False
    return stripped.lower() not in _ABBREVIATIONS


def is_clause_end(text: str) -> bool:
    """Whether a word ends with a comma-like mark: the preferred place to cut a sentence
    that is too long."""
    stripped = text.strip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in CLAUSE_END


def starts_sentence(text: str, openers: frozenset[str]) -> bool:
    """Whether a word is a capitalised function word from `openers` (lower case; the
    language's list in `speech_endpoint.word_lists`): "The", "We", "So" are written with a
    capital only at the start of a sentence. Whisper keeps that capital where it drops the
    full stop before it, typically when two speakers overlap ("... desktop users The page
    load time ..."). "I" and names are never in a list; with no list, punctuation alone
    decides."""
    stripped = text.strip().lstrip(_OPENERS).rstrip(_CLOSERS + ".,;:?!")
    return stripped[:1].isupper() and stripped.lower() in openers


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


REDECODE_S = 1.0  # a word starting this much before the previous one: a window decoded again
END_SLIVER_S = 0.04  # no word starts this close to the end of the audio


def _chunk_fields(chunk: object) -> tuple[str, float | None, float | None]:
    """A pipeline word chunk's text, start and end (None where missing or not finite)."""
    stamp = chunk.get("timestamp") if isinstance(chunk, dict) else None
    if not isinstance(stamp, (tuple, list)):
        stamp = (None, None)
    start = _finite(stamp[0]) if len(stamp) > 0 else None
    end = _finite(stamp[1]) if len(stamp) > 1 else None
    text = chunk.get("text", "") if isinstance(chunk, dict) else ""
    return (text if isinstance(text, str) else str(text)), start, end


def decoded_once(chunks: Sequence[dict], *, duration: float) -> list[dict]:
    """The pipeline's word chunks without what its long-form decoding read twice or out of
    nothing. When a 30 s window's last segment is incomplete, decoding resumes at that
    segment's start and transformers 5 keeps both readings: where the start times jump
    back by more than `REDECODE_S`, the later reading replaces the earlier words from that
    time on (as in OpenAI's algorithm). The sliver of audio after the last segment is
    decoded too, and transformers 4.51 fills it with a loop ("I don't know." 50 times in
    the last 20 ms of the 30.0 s telephone sample): words starting within `END_SLIVER_S`
    of the end go."""
    total = _finite(duration)
    kept: list[tuple[float | None, dict]] = []
    last = None  # the latest kept start
    for chunk in chunks:
        _, start, _ = _chunk_fields(chunk)
        if start is not None:
            if total is not None and start >= total - END_SLIVER_S:
                continue
            if last is not None and start < last - REDECODE_S:
                kept = kept[:next(i for i, (s, _) in enumerate(kept) if s is not None and s >= start)]
            last = start
        kept.append((start, chunk))
    return [chunk for _, chunk in kept]


def words_from_chunks(chunks: Sequence[dict], *, duration: float) -> list[Word]:
    """Word records from the pipeline's word-level chunks
    (`{"text": " Hello", "timestamp": (start, end)}`).

    The pipeline leaves the last word's end (and, at 30 s window seams, other ends or
    starts) as None, and timestamps may step backwards slightly at those seams. Repairs,
    in order: a missing end becomes the next known timestamp (the next word's start,
    else `duration`); a missing start becomes the previous word's end (0 for the first);
    everything is clamped to [0, duration]; starts are made non-decreasing; each end is
    at least its start. Every chunk becomes one word, text untouched.
    """
    total = _finite(duration)
    total = max(total, 0.0) if total is not None else 0.0
    raw = [_chunk_fields(chunk) for chunk in chunks]

    # Next known time after each word, for filling missing ends (scan from the right).
    next_known: list[float] = [total] * len(raw)
    following = total
    for i in range(len(raw) - 1, -1, -1):
        next_known[i] = following
        _, start, end = raw[i]
        if start is not None:
            following = start
        elif end is not None:
            following = end

    words: list[Word] = []
    previous_start, previous_end = 0.0, 0.0
    for i, (text, start, end) in enumerate(raw):
        if start is None:
            start = previous_end
        if end is None:
            end = max(next_known[i], start)
        start = min(max(start, 0.0), total)
        end = min(max(end, 0.0), total)
        start = max(start, previous_start)
        end = max(end, start)
        words.append(Word(text=text, start=start, end=end))
        previous_start, previous_end = start, end
    return words
