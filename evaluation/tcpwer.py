"""tcpWER: time-constrained minimum-permutation WER (the CHiME-8 / NOTSOFAR metric, as
meeteval defines it), which scores words, speakers and times together.

As cpWER, each reference speaker's words are compared with one hypothesis speaker's under
the best one-to-one assignment; but a hypothesis word may only count as correct (or as a
substitution) for a reference word when their times overlap, the hypothesis word widened
by `collar` seconds on each side. A word given to the right speaker at the wrong time is
one deletion plus one insertion.

Timings, as meeteval's defaults: reference words share their STM row's span in proportion
to their length in characters ("character_based"); a hypothesis word is the point in the
middle of its own start and end (its real timing, where meeteval would estimate it).
Words are normalised one by one with Whisper's English normaliser, like WER. Collar:
`COLLAR_S` = 5 s, CHiME-8's and NOTSOFAR's.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.scoring import normalize, permutation_errors

COLLAR_S = 5.0


@dataclass(frozen=True)
class TimedWord:
    text: str
    start: float
    end: float


def reference_words(rows: Iterable[Sequence]) -> dict[str, list[TimedWord]]:
    """Per speaker, the normalised words of (speaker, start, end, text) rows with
    character-based pseudo timings, in time order."""
    out: dict[str, list[TimedWord]] = {}
    for speaker, start, end, text in sorted(rows, key=lambda r: (float(r[1]), float(r[2]))):
        words = normalize(str(text)).split()
        total = sum(len(w) for w in words) or 1
        t = float(start)
        for w in words:
            span = (float(end) - float(start)) * len(w) / total
            out.setdefault(speaker, []).append(TimedWord(w, t, t + span))
            t += span
    return out


def hypothesis_words(words: Iterable[dict]) -> dict[str, list[TimedWord]]:
    """Per speaker, the normalised response words (`word`, `start`, `end`, `speaker`) as
    points at their middles, in time order."""
    out: dict[str, list[TimedWord]] = {}
    for w in sorted(words, key=lambda w: (float(w["start"]), float(w["end"]))):
        middle = (float(w["start"]) + float(w["end"])) / 2
        for token in normalize(str(w["word"])).split():
            out.setdefault(str(w.get("speaker")), []).append(TimedWord(token, middle, middle))
    return out


def constrained_errors(ref: Sequence[TimedWord], hyp: Sequence[TimedWord], collar: float) -> int:
    """Levenshtein distance where a pair may be aligned only if their times overlap."""
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return n + m
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    h_start = np.array([h.start - collar for h in hyp])
    h_end = np.array([h.end + collar for h in hyp])
    h_text = [h.text for h in hyp]
    for i, r in enumerate(ref, start=1):
        overlaps = (h_start <= r.end) & (h_end >= r.start)
        for j in range(1, m + 1):
            best = min(cost[i - 1, j], cost[i, j - 1]) + 1
            if overlaps[j - 1]:
                best = min(best, cost[i - 1, j - 1] + (h_text[j - 1] != r.text))
            cost[i, j] = best
    return int(cost[n, m])


def tcpwer(reference_rows: Iterable[Sequence], hypothesis: Iterable[dict], collar: float = COLLAR_S) -> dict:
    """{"tcpwer", "errors", "ref_words", "mapping"} of the response words against the
    reference rows (`read_stm`)."""
    result = permutation_errors(reference_words(reference_rows), hypothesis_words(hypothesis),
                                lambda ref, hyp: constrained_errors(ref, hyp, collar))
    return {"tcpwer": result.pop("rate"), **result}
