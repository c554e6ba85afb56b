"""Diarization turns as per-speaker coverage of time, and each word's best speaker by it.
Pure geometry, no rules: `diarization_utils` builds the attribution on it."""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

from speech_endpoint.schema import Turn


def clean_turns(turns: Iterable[Turn]) -> list[Turn]:
    """Finite turns, start <= end (a reversed turn becomes its midpoint), sorted by time."""
    cleaned = []
    for turn in turns:
        start, end = float(turn.start), float(turn.end)
        if not (math.isfinite(start) and math.isfinite(end)):
            continue
        if end < start:
            start = end = (start + end) / 2
        cleaned.append(Turn(start=start, end=end, speaker=turn.speaker))
    cleaned.sort(key=lambda t: (t.start, t.end, str(t.speaker)))
    return cleaned


class Coverage:
    """One speaker's turns merged into sorted disjoint intervals, so that overlapping or
    duplicated turns are not counted twice and look-ups are a bisect."""

    def __init__(self, intervals: list[tuple[float, float]]):
        merged: list[list[float]] = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def overlap(self, start: float, end: float) -> float:
        """Seconds of [start, end] this speaker covers."""
        total = 0.0
        i = bisect_right(self.starts, end) - 1
        while i >= 0 and self.ends[i] > start:
            total += max(0.0, min(end, self.ends[i]) - max(start, self.starts[i]))
            i -= 1
        return total

    def interval_at(self, t: float) -> tuple[float, float] | None:
        """The merged interval holding time `t`, if any."""
        i = bisect_right(self.starts, t) - 1
        return (self.starts[i], self.ends[i]) if i >= 0 and self.ends[i] >= t else None

    def nearest(self, start: float, end: float) -> tuple[float, float] | None:
        """The merged interval nearest to [start, end] (the earlier one on a tie)."""
        i = bisect_right(self.starts, end) - 1  # the last interval starting by `end`, or the next
        candidates = [k for k in (i, i + 1) if 0 <= k < len(self.starts)]
        if not candidates:
            return None
        k = min(candidates, key=lambda k: (gap((self.starts[k], self.ends[k]), start, end), k))
        return self.starts[k], self.ends[k]

    def distance(self, start: float, end: float) -> float:
        """Seconds between [start, end] and the nearest interval (0 when they touch; inf
        without intervals)."""
        interval = self.nearest(start, end)
        return gap(interval, start, end) if interval else math.inf


def gap(interval: tuple[float, float], start: float, end: float) -> float:
    """Seconds between `interval` and [start, end] (0 when they touch or overlap)."""
    return max(0.0, interval[0] - end, start - interval[1])


def coverages(turns: list[Turn]) -> dict[str, Coverage]:
    by_speaker: dict[str, list[tuple[float, float]]] = {}
    for turn in turns:  # time order, so dict order is order of first turn
        by_speaker.setdefault(turn.speaker, []).append((turn.start, turn.end))
    return {speaker: Coverage(spans) for speaker, spans in by_speaker.items()}


def max_overlap_speakers(spans: list[tuple[float, float]], cover: dict[str, Coverage],
                         full: dict[str, Coverage] | None = None) -> list[str]:
    """Each word to the speaker covering most of it; a zero-length word (or one in a
    gap) to the nearest turn. With `full` (the diarization with its overlaps) coverage is
    measured there, and among speakers covering a word equally, one whose turn contains
    the others' (a back-channel or interjection inside it) keeps the word: Whisper
    transcribes the main speech, not the "mhm" on top of it. Remaining ties go to the
    exclusive coverage `cover` (a hand-over split in its middle), then to the previous
    word's speaker (speech continues more often than it switches), then to the speaker
    who spoke first."""
    order = {speaker: rank for rank, speaker in enumerate(cover)}
    labels: list[str] = []
    for start, end in spans:
        main = full or cover
        scores = {speaker: (-c.overlap(start, end), c.distance(start, end)) for speaker, c in main.items()}
        best_score = min(scores.values())
        tied = [s for s, score in scores.items() if score == best_score]
        if len(tied) > 1 and full:
            tied = _containers(tied, full, (start + end) / 2) or tied
        if len(tied) > 1 and full:
            exclusive = {s: (-cover[s].overlap(start, end), cover[s].distance(start, end)) if s in cover
                         else (0.0, math.inf) for s in tied}
            tied = [s for s in tied if exclusive[s] == min(exclusive.values())]
        if labels and labels[-1] in tied:
            labels.append(labels[-1])
        else:
            labels.append(min(tied, key=lambda s: order.get(s, len(order))))
    return labels


def _containers(speakers: list[str], full: dict[str, Coverage], t: float) -> list[str]:
    """The speaker whose turn at `t` contains every other's turn there (and is longer), as
    a one-item list; [] when there is no such speaker."""
    intervals = {s: full[s].interval_at(t) for s in speakers}
    if any(i is None for i in intervals.values()):
        return []
    for s, (a, b) in intervals.items():
        if all(a <= x and y <= b and (b - a) > (y - x) for o, (x, y) in intervals.items() if o != s):
            return [s]
    return []
