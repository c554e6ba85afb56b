"""Diarization turns: made exclusive (one speaker at a time, the form words are matched to), and
as per-speaker coverage of time with each word's best speaker by it. Pure geometry, no rules:
`attribution.speakers` builds the attribution on it.

Exclusive turns (`exclusive_turns`): pyannote 4 returns such an exclusive diarization itself;
pyannote 3 and the evaluation's oracle double return turns that overlap, and this is the one
rule that makes them exclusive. First each speaker's overlapping or touching turns are merged
(one person, one stretch); then, where two speakers overlap:

- interruption (B starts and ends inside A's turn, e.g. a back-channel "mhm"): B has the
  floor for its whole turn and A gets it back after;
- hand-over (B starts inside A's turn and ends after it): A keeps the floor until the
  middle of the overlap and B takes it from there, a neutral cut where the turns only
  say that both were talking;
- otherwise (three or more at once) the speaker whose turn started last.

Stretches nobody covers stay uncovered.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

from speech_endpoint.schema import Turn, sort_turns


def merge_per_speaker(turns: Iterable[Turn]) -> list[Turn]:
    """Each speaker's overlapping or touching turns as one turn; sorted by time."""
    merged: dict[str, list[Turn]] = {}
    for turn in sort_turns(turns):
        own = merged.setdefault(turn.speaker, [])
        if own and turn.start <= own[-1].end:
            if turn.end > own[-1].end:
                own[-1] = Turn(own[-1].start, turn.end, turn.speaker)
        else:
            own.append(turn)
    return sort_turns(t for own in merged.values() for t in own)


def exclusive_turns(turns: Iterable[Turn]) -> list[Turn]:
    """Overlap-free turns by the rules of the module docstring; touching pieces of one
    speaker are joined."""
    ordered = merge_per_speaker(turns)
    bounds = {t for turn in ordered for t in (turn.start, turn.end)}
    handover: dict[tuple[int, int], float] = {}  # (earlier, later) turn index -> middle of overlap
    for i, a in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            b = ordered[j]
            if b.start >= a.end:
                break
            if a.start < b.start and a.end < b.end:
                handover[(i, j)] = (b.start + a.end) / 2
                bounds.add(handover[(i, j)])
    edges = sorted(bounds)
    pieces: list[Turn] = []
    active: list[int] = []
    upcoming = 0
    for left, right in zip(edges, edges[1:]):
        while upcoming < len(ordered) and ordered[upcoming].start <= left:
            active.append(upcoming)
            upcoming += 1
        active = [i for i in active if ordered[i].end > left]
        covering = [i for i in active if ordered[i].end >= right]
        if not covering:
            continue
        winner = max(covering, key=lambda i: (ordered[i].start, i))
        for earlier in sorted(covering, key=lambda i: (ordered[i].start, i), reverse=True):
            middle = handover.get((earlier, winner))
            if middle is not None and right <= middle:
                winner = earlier
                break
        speaker = ordered[winner].speaker
        if pieces and pieces[-1].speaker == speaker and pieces[-1].end == left:
            pieces[-1] = Turn(pieces[-1].start, right, speaker)
        else:
            pieces.append(Turn(left, right, speaker))
    return pieces


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
