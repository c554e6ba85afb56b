"""The OLD reference attribution, kept only so the evaluation can compare against it."""
from __future__ import annotations

import math
from collections.abc import Sequence

from speech_endpoint.attribution.turns import clean_turns
from speech_endpoint.schema import Segment, Turn, Utterance


def nearest_chunk_end_speakers(segments: Sequence[Segment], turns: Sequence[Turn]) -> list[Utterance]:
    """As in the reference's `post_process_segments_and_transcripts`: consecutive turns of one
    speaker are merged into a super-turn ending where the next speaker starts (the last
    one at its own end); for each super-turn in order, the remaining Whisper chunks up to
    the one whose end is nearest the super-turn's end go, whole, to that speaker (chunks
    with no end never match unless nothing else is left). Chunks left after the last
    super-turn are dropped, as in the reference. No turns or no segments: [] (the
    reference crashed on no turns)."""
    clean = clean_turns(turns)
    if not clean or not segments:
        return []
    supers: list[tuple[str, float, float]] = []
    current = clean[0]
    for turn in clean[1:]:
        if turn.speaker != current.speaker:
            supers.append((current.speaker, current.start, turn.start))
            current = turn
    supers.append((current.speaker, current.start, clean[-1].end))

    remaining = list(segments)
    utterances: list[Utterance] = []
    for speaker, _, end_time in supers:
        if not remaining:
            break
        ends = [s.end if math.isfinite(s.end) else math.inf for s in remaining]
        upto = min(range(len(ends)), key=lambda i: abs(ends[i] - end_time))
        taken, remaining = remaining[: upto + 1], remaining[upto + 1 :]
        text = " ".join(s.text.strip() for s in taken if s.text.strip())
        start = taken[0].start
        utterances.append(Utterance(speaker=speaker, text=text, start=start, end=max(taken[-1].end, start)))
    return utterances
