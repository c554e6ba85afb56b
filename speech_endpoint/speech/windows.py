"""Cut audio at pauses into decoding windows of at most one Whisper window (30 s).

Whisper sees 30 s at a time. The transformers pipeline's fixed chunks overlap (and decode
the overlap twice) and cut through words; cutting at pauses instead, as whisperX and
faster-whisper do, decodes each stretch once, never splits a word, and skips long
silences, which Whisper would otherwise fill with invented text.
"""
from __future__ import annotations

import numpy as np

from speech_endpoint.schema import SpeechActivity
from speech_endpoint.speech.activity import speech_runs

PAD_S = 0.2  # context kept around speech so word onsets/offsets are not clipped (not at cuts)


def speech_windows(activity: SpeechActivity, num_samples: int, sample_rate: int, max_window_s: float = 30.0,
                   min_gap_s: float = 0.3) -> list[tuple[int, int]]:
    """[start, end) sample ranges of audio `num_samples` long covering every speech stretch
    of `activity`, each at most `max_window_s`, cut where the speech score is lowest.
    Silence longer than `min_gap_s` between windows is left out. Empty without speech."""
    mask, scores, frame_s = activity.mask, activity.scores, activity.frame_s
    if not mask.any():
        return []
    regions = _regions(mask, gap_frames=int(round(min_gap_s / frame_s)))
    pad = int(round(PAD_S / frame_s))
    limit = max(1, int(max_window_s / frame_s) - 2 * pad)
    n = len(scores)
    windows: list[tuple[int, int]] = []
    start, end = regions[0]
    for r_start, r_end in regions[1:]:
        if r_end - start <= limit:
            end = r_end  # merge: the window still fits
            continue
        windows.extend(_split(start, end, limit, scores))
        start, end = r_start, r_end
    windows.extend(_split(start, end, limit, scores))
    frame = int(round(frame_s * sample_rate))
    total = num_samples
    cuts = {e for _, e in windows} & {s for s, _ in windows}  # inside a stretch: no context to add
    out = []
    prev_end = 0
    for s, e in windows:
        s_sample = max(prev_end, (s - (0 if s in cuts else pad)) * frame, 0)
        e_sample = min(total, (e + (0 if e in cuts else pad)) * frame) if e < n else total
        if e_sample > s_sample:
            out.append((s_sample, e_sample))
            prev_end = e_sample
    return out


def _regions(mask: np.ndarray, gap_frames: int) -> list[tuple[int, int]]:
    """Runs of speech frames, bridging gaps shorter than `gap_frames`."""
    merged: list[tuple[int, int]] = []
    for s, e in speech_runs(mask):
        if merged and s - merged[-1][1] < gap_frames:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _split(start: int, end: int, limit: int, scores: np.ndarray) -> list[tuple[int, int]]:
    """Split one long stretch into pieces of at most `limit` frames, each cut at the
    least speech-like frame of its last third (speech rarely pauses on a schedule)."""
    pieces = []
    while end - start > limit:
        lo = start + max(1, (2 * limit) // 3)  # at least one frame in, so the loop always ends
        hi = max(start + limit, lo + 1)
        cut = lo + int(np.argmin(scores[lo:hi]))
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
