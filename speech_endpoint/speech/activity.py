"""Where the audio has speech, from per-frame speech probabilities (Silero VAD), and what
follows from it: the decoding windows, and word times held to the speech. Computed once per
request, it decides whether Whisper runs at all (no speech, no invented "Thank you.") and
where its windows are cut. Pure logic.

Regions follow Silero's own `get_speech_timestamps`: speech starts at a frame with
probability >= `threshold`, ends once the probability has stayed below `threshold - 0.15`
for `min_silence_s`; regions not longer than `min_speech_s` are dropped, and each is
padded by `pad_s` (a gap shorter than two pads is split in its middle).

Windows (`speech_windows`): Whisper sees 30 s at a time. The transformers pipeline's fixed
chunks overlap (and decode the overlap twice) and cut through words; cutting at pauses
instead, as whisperX and faster-whisper do, decodes each stretch once, never splits a
word, and skips long silences, which Whisper would otherwise fill with invented text.

Word times (`fit_to_speech`): Whisper's come from cross-attention (DTW over 20 ms frames)
and spill over pauses: the first word after a pause starts inside it, and a clause's last
word runs on into the silence after it (`alignment.clamp_long_words` only catches words
longer than twice the median, at sentence edges). A word that covers frames Silero calls
silence keeps only speech: the first stretch of speech under it when it ends a clause or a
sentence (it ran on), the last one otherwise (it started early). A word with no speech under
it keeps its times (quiet speech the VAD missed). Words only shrink, inside their own span,
so their order and the gaps between them stay valid (measured with `python -m
evaluation.word_times`: docs/benchmarks.md).
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from speech_endpoint.schema import SpeechActivity, Word
from speech_endpoint.text import is_clause_end, is_sentence_end

THRESHOLD = 0.5
MIN_SPEECH_S = 0.25
MIN_SILENCE_S = 0.1
PAD_S = 0.03
WINDOW_PAD_S = 0.2  # context kept around speech so word onsets/offsets are not clipped (not at cuts)


def speech_regions(probs: np.ndarray, frame_s: float, duration_s: float, *, threshold: float = THRESHOLD,
                   min_speech_s: float = MIN_SPEECH_S, min_silence_s: float = MIN_SILENCE_S,
                   pad_s: float = PAD_S) -> list[tuple[float, float]]:
    """[start_s, end_s) speech regions (see the module docstring); a region still open at
    the end of the audio runs to `duration_s`."""
    neg_threshold = max(threshold - 0.15, 0.01)
    min_silence = round(min_silence_s / frame_s, 9)  # in frames, exactly (0.096 / 0.032 == 3)
    min_speech = round(min_speech_s / frame_s, 9)
    regions: list[list[float]] = []
    start = dip = None
    for i, p in enumerate(np.asarray(probs, dtype=np.float64)):
        if p >= threshold:
            dip = None
            if start is None:
                start = i
            continue
        if p < neg_threshold and start is not None:
            dip = i if dip is None else dip
            if i - dip < min_silence:
                continue
            if dip - start > min_speech:
                regions.append([start * frame_s, dip * frame_s])
            start = dip = None
    if start is not None and duration_s - start * frame_s > min_speech_s + 1e-9:
        regions.append([start * frame_s, duration_s])
    for k, region in enumerate(regions):
        if k + 1 < len(regions):
            gap = regions[k + 1][0] - region[1]
            half = gap / 2 if gap < 2 * pad_s else pad_s
            region[1] += half
            regions[k + 1][0] -= half
        else:
            region[1] = min(duration_s, region[1] + pad_s)
    if regions:
        regions[0][0] = max(0.0, regions[0][0] - pad_s)
    return [(float(a), float(b)) for a, b in regions]


def activity_from_probabilities(probs: np.ndarray, frame_s: float, duration_s: float, **region_options) -> SpeechActivity:
    """Probabilities as scores; the frames inside speech regions as speech."""
    probs = np.asarray(probs, dtype=np.float32)
    mask = np.zeros(len(probs), bool)
    for start, end in speech_regions(probs, frame_s, duration_s, **region_options):
        mask[int(start / frame_s + 1e-9):int(np.ceil(end / frame_s - 1e-9))] = True
    return SpeechActivity(frame_s=frame_s, scores=probs, mask=mask)


def speech_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame indices of each run of speech frames in `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def has_speech(activity: SpeechActivity) -> bool:
    """Whether any speech region was found (regions are already at least MIN_SPEECH_S)."""
    return bool(np.any(activity.mask))


def speech_windows(activity: SpeechActivity, num_samples: int, sample_rate: int, max_window_s: float = 30.0,
                   min_gap_s: float = 0.3) -> list[tuple[int, int]]:
    """[start, end) sample ranges of audio `num_samples` long covering every speech stretch
    of `activity`, each at most `max_window_s`, cut where the speech score is lowest.
    Silence longer than `min_gap_s` between windows is left out. Empty without speech."""
    mask, scores, frame_s = activity.mask, activity.scores, activity.frame_s
    if not mask.any():
        return []
    regions = _regions(mask, gap_frames=int(round(min_gap_s / frame_s)))
    pad = int(round(WINDOW_PAD_S / frame_s))
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


def fit_to_speech(words: Sequence[Word], activity: SpeechActivity, min_silence_s: float = 0.0) -> list[Word]:
    """`words` with each span cut to the speech under it (see the module docstring). Only
    words covering more than `min_silence_s` of silence are cut: the default, any silent
    frame, measured best (`evaluation.word_times --min-silence`)."""
    runs = [(a * activity.frame_s, b * activity.frame_s) for a, b in speech_runs(activity.mask)]
    run_ends = [b for _, b in runs]
    out = []
    for word in words:
        pieces = []  # the word's overlap with each run that ends after it starts and starts before it ends
        i = bisect_right(run_ends, word.start)
        while i < len(runs) and runs[i][0] < word.end:
            pieces.append((max(runs[i][0], word.start), min(runs[i][1], word.end)))
            i += 1
        if pieces and sum(b - a for a, b in pieces) < (word.end - word.start) - max(min_silence_s, 1e-9):
            ran_on = is_clause_end(word.text) or is_sentence_end(word.text)
            start, end = pieces[0] if ran_on else pieces[-1]
            word = replace(word, start=start, end=end)
        out.append(word)
    return out
