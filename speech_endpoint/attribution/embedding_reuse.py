"""Which speaker embeddings of a sliding-window diarization to compute, and which to copy.

pyannote's diarization embeds every (chunk, local speaker) pair, and its 10 s chunks
overlap 90% (1 s step): a speaker who talks for a minute is embedded about sixty times
from nearly the same speech. Here only every `stride`-th chunk is embedded; a speaker of a
chunk in between takes the embedding of the speaker of the nearest embedded chunk whose
activity matches its own (intersection over union, within its chunk, at least
`min_agreement`), so clustering sees as many embeddings as before. A chunk with a speaker
that no embedded neighbour matches (a new voice, a turn starting in its last second) is
embedded itself, all its speakers, as pyannote would (overlap is excluded per chunk).

Pure logic on arrays; `attribution.diarizer.install` runs it inside a pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# DIARIZATION_EMBEDDING_STRIDE when unset (docs/benchmarks.md, issue 28: DER and cost per stride)
DEFAULT_EMBEDDING_STRIDE = 2


@dataclass(frozen=True)
class ReusePlan:
    """`computed`: chunk indices to embed (sorted). `sources`: (chunk, speaker) -> the
    (chunk, speaker) whose embedding it takes, for the active speakers of the other chunks."""
    computed: tuple[int, ...]
    sources: dict[tuple[int, int], tuple[int, int]]


def plan(activity: np.ndarray, step_frames: float, stride: int, min_agreement: float) -> ReusePlan:
    """`activity`: (chunks, frames, speakers) binarized segmentation (NaN = inactive);
    `step_frames`: the chunk step in frames (pyannote's step / frame step, need not be whole).
    `stride` 1 computes every chunk (pyannote's own behaviour)."""
    if stride < 1:
        raise ValueError("stride must be at least 1")
    active = np.nan_to_num(np.asarray(activity, dtype=np.float32), nan=0.0) > 0.5
    num_chunks = active.shape[0]
    grid = list(range(0, num_chunks, stride))
    if num_chunks and grid[-1] != num_chunks - 1:
        grid.append(num_chunks - 1)  # the last chunk, which holds the audio's end
    computed, sources = set(grid), {}
    for chunk in range(num_chunks):
        if chunk in computed:
            continue
        found = {}
        for speaker in np.flatnonzero(active[chunk].any(axis=0)):
            match = _best_match(active, chunk, int(speaker), _neighbours(chunk, grid), step_frames, min_agreement)
            if match is None:
                break
            found[(chunk, int(speaker))] = match
        else:
            sources.update(found)
            continue
        computed.add(chunk)
    return ReusePlan(tuple(sorted(computed)), sources)


def fill(embeddings: np.ndarray, plan_: ReusePlan) -> np.ndarray:
    """(chunks, speakers, dimension) with the copied rows filled in (a new array)."""
    filled = np.array(embeddings, copy=True)
    for (chunk, speaker), (src_chunk, src_speaker) in plan_.sources.items():
        filled[chunk, speaker] = embeddings[src_chunk, src_speaker]
    return filled


def agreement(a: np.ndarray, b: np.ndarray, shift: int) -> float:
    """Intersection over union of activity `a` (one chunk's frames) and `b` (a chunk that
    starts `shift` frames later, negative for earlier), counted over `a`'s frames only."""
    frames = len(a)
    shifted = np.zeros(frames, dtype=bool)
    lo, hi = max(0, shift), min(frames, frames + shift)
    if hi > lo:
        shifted[lo:hi] = b[lo - shift:hi - shift]
    union = np.count_nonzero(a | shifted)
    return np.count_nonzero(a & shifted) / union if union else 0.0


def _neighbours(chunk: int, grid: list[int]) -> list[int]:
    """The embedded chunks on either side of `chunk`, nearest first."""
    position = np.searchsorted(grid, chunk)
    around = [grid[i] for i in (position - 1, position) if 0 <= i < len(grid)]
    return sorted(around, key=lambda other: (abs(other - chunk), other))


def _best_match(active: np.ndarray, chunk: int, speaker: int, neighbours: list[int], step_frames: float,
                min_agreement: float) -> tuple[int, int] | None:
    best, best_score = None, min_agreement
    for other in neighbours:
        shift = int(round((other - chunk) * step_frames))
        for candidate in np.flatnonzero(active[other].any(axis=0)):
            score = agreement(active[chunk, :, speaker], active[other, :, candidate], shift)
            if score >= best_score:
                best, best_score = (other, int(candidate)), score
    return best
