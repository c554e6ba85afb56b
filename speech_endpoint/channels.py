"""Stereo calls: one speaker per channel. Pure logic for `multichannel` requests: where each
channel's own speaker talks, and that channel's words labelled and merged with the others.

Crosstalk: a call recorded per side still carries the other side at a low level on each
channel (the far end leaking through a handset, echo, a shared room), and a speech
detector or Whisper hears that bleed as speech: the other speaker's words would come back
a second time, under the wrong label. What tells them apart is level, frame by frame: where
a channel's own speaker talks, that channel is the loudest or close to it (two people
talking at once are each loud on their own channel), while bleed lies far below the
channel it comes from (telephone echo and handset leakage: 15 dB down or more). So a
channel's speech counts only in frames whose level, smoothed over `SMOOTH_S` (longer than
a bleed's delay, so a word's echoed tail is not taken for the other side's speech), is
within `MARGIN_DB` of the loudest channel; stretches shorter than a Silero speech region
are dropped, and the channel is silenced elsewhere (with a short fade), so Whisper never
hears the bleed. It assumes the sides are recorded at similar levels: a side recorded more
than `MARGIN_DB` below the other loses its overlapping speech. Measured in
docs/benchmarks.md ("Stereo calls").
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from speech_endpoint.schema import Audio, SpeechActivity, Transcript, Turn, Word
from speech_endpoint.speech_activity import MIN_SPEECH_S, speech_runs

MARGIN_DB = 10.0
SMOOTH_S = 0.25
PAD_S = 0.1  # speech kept around the detected speech, where no other channel dominates
FADE_S = 0.01
SAME_DB = -30.0  # channels whose difference is this far below their level carry the same audio


@dataclass(frozen=True)
class Channel:
    """One channel made ready for Whisper: its samples silenced where another channel
    dominates, and where its own speaker talks."""

    audio: Audio
    activity: SpeechActivity


def speaker_label(index: int) -> str:
    """Channel `index` (0 = the first, left) speaks as SPEAKER_00, SPEAKER_01, ..."""
    return f"SPEAKER_{index:02d}"


def same_audio(channels: Sequence[np.ndarray]) -> tuple[int, int] | None:
    """The first pair of channels carrying the same audio (a mono recording stored as
    stereo, where every word would come back once per channel), or None. Compared on
    at most about a million evenly spaced samples: identical channels agree on any."""
    step = max(1, min(len(c) for c in channels) // 1_000_000) if channels else 1
    rows = [np.asarray(c[::step], np.float64) for c in channels]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            a, b = rows[i], rows[j]
            level = max(np.mean(a * a), np.mean(b * b)) if len(a) else 0.0
            if level > 0 and np.mean((a - b) ** 2) <= level * 10 ** (SAME_DB / 10):
                return i, j
    return None


def dominance(channels: Sequence[np.ndarray], frame_s: float, sample_rate: int, frames: int, *,
              margin_db: float = MARGIN_DB, smooth_s: float = SMOOTH_S) -> np.ndarray:
    """(channels, frames) bool: whether each channel's smoothed level is within
    `margin_db` of the loudest channel's in that frame."""
    hop = int(round(frame_s * sample_rate))
    width = max(1, int(round(smooth_s / frame_s)))
    kernel = np.ones(width) / width
    levels = np.zeros((len(channels), frames))
    for k, samples in enumerate(channels):
        power = np.zeros(frames)
        full = min(frames, len(samples) // hop)
        blocks = np.asarray(samples[:full * hop], np.float32).reshape(full, hop)
        power[:full] = np.einsum("ij,ij->i", blocks, blocks) / hop
        if full < frames and len(samples) > full * hop:  # the last, partial frame
            tail = np.asarray(samples[full * hop:(full + 1) * hop], np.float64)
            power[full] = np.sum(tail * tail) / hop
        levels[k] = 10 * np.log10(np.convolve(power, kernel, mode="same") + 1e-10)
    return levels >= levels.max(axis=0, keepdims=True) - margin_db


def own_speech(activity: SpeechActivity, dominant: np.ndarray, min_speech_s: float = MIN_SPEECH_S) -> SpeechActivity:
    """The channel's speech where it dominates, without stretches of `min_speech_s` or less
    (a bleed's tail outlasting the smoothing)."""
    mask = np.asarray(activity.mask) & dominant
    for start, end in speech_runs(mask):
        if (end - start) * activity.frame_s <= min_speech_s:
            mask[start:end] = False
    return replace(activity, mask=mask)


def silence_elsewhere(audio: Audio, activity: SpeechActivity, dominant: np.ndarray, pad_s: float = PAD_S,
                      fade_s: float = FADE_S) -> Audio:
    """`audio` kept only around `activity`'s speech (padded by `pad_s`, not into frames
    another channel dominates), faded over `fade_s` at each edge, silent elsewhere."""
    frame_s = activity.frame_s
    pad = int(round(pad_s / frame_s))
    mask = np.asarray(activity.mask)
    keep = mask.copy()
    for start, end in speech_runs(mask):
        keep[max(0, start - pad):start] |= dominant[max(0, start - pad):start]
        keep[end:end + pad] |= dominant[end:end + pad]
    hop = int(round(frame_s * audio.sample_rate))
    samples = np.asarray(audio.samples, np.float32)
    gain = np.zeros(len(samples), np.float32)
    fade = max(1, int(fade_s * audio.sample_rate))
    ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
    for start, end in speech_runs(keep):
        a, b = start * hop, min(len(samples), end * hop)
        gain[a:b] = 1.0
        n = min(fade, (b - a) // 2)
        if n:
            gain[a:a + n] = ramp[:n]
            gain[b - n:b] = ramp[:n][::-1]
    return replace(audio, samples=samples * gain)


def merge_words(transcripts: Sequence[Transcript]) -> list[Word]:
    """Every channel's words under its speaker label, in time order (ties: channel order)."""
    labelled = [(w.start, k, i, replace(w, speaker=speaker_label(k)))
                for k, transcript in enumerate(transcripts) for i, w in enumerate(transcript.words)]
    return [w for *_, w in sorted(labelled, key=lambda item: item[:3])]


def channel_turns(activities: Sequence[SpeechActivity]) -> list[Turn]:
    """Who spoke when: each channel's own speech, under its speaker label (overlaps kept)."""
    turns = [Turn(a * act.frame_s, b * act.frame_s, speaker_label(k))
             for k, act in enumerate(activities) for a, b in speech_runs(act.mask)]
    return sorted(turns, key=lambda t: (t.start, t.end, t.speaker))


def language(transcripts: Sequence[Transcript]) -> str | None:
    """The language of the channel with the most words (each channel detects its own)."""
    best = max(transcripts, key=lambda t: len(t.words), default=None)
    return best.language if best else None
