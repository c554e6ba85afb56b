"""Diarization turns made exclusive: one speaker at a time, the form words are matched to.

pyannote 4 returns such an exclusive diarization itself; pyannote 3 and the evaluation's
oracle double return turns that overlap, and this is the one rule that makes them
exclusive. First each speaker's overlapping or touching turns are merged (one person,
one stretch); then, where two speakers overlap:

- interruption (B starts and ends inside A's turn, e.g. a back-channel "mhm"): B has the
  floor for its whole turn and A gets it back after;
- hand-over (B starts inside A's turn and ends after it): A keeps the floor until the
  middle of the overlap and B takes it from there, a neutral cut where the turns only
  say that both were talking;
- otherwise (three or more at once) the speaker whose turn started last.

Stretches nobody covers stay uncovered. Pure logic.
"""
from __future__ import annotations

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
