"""Stereo calls: one speaker per channel. Pure logic for `multichannel` requests: where each
channel's own speaker talks, and that channel's words labelled and merged with the others.

Crosstalk: a call recorded per side still carries the other side at a low level on each
channel (the far end leaking through a handset, echo, a shared room), and a speech
detector or Whisper hears that bleed as speech: the other speaker's words would come back
a second time, under the wrong label. Bleed is the other channel's signal scaled down by
a coupling that stays about constant over a call, so it is told apart by level, frame by
frame. Each channel's level is smoothed over `SMOOTH_S` (longer than a bleed's delay, so a
word's echoed tail is not taken for the other side's speech); the coupling from channel B
into A is the median of A's level minus B's over the frames where B's speaker talks (B
near its own speech level: mostly alone, in a conversation). A's speech then counts only
where A is at least `MARGIN_DB` above what B's bleed alone would put there, or is the
loudest channel (bleed no weaker than `MARGIN_DB` below its source), so two people talking
at once each count on their own channel, whatever the two sides' recording levels.
Stretches shorter than a Silero speech region are dropped, and the channel is silenced
elsewhere (with a short fade), so Whisper never hears the bleed. A fixed margin to the
loudest channel was tried first: it lost overlapping speech on a side recorded quieter,
or let strong bleed through (docs/benchmarks.md, "Stereo calls").
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from speech_endpoint.schema import Audio, SpeechActivity, Transcript, Turn, Word
from speech_endpoint.speech.activity import MIN_SPEECH_S, speech_runs

MARGIN_DB = 6.0
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
    """(channels, frames) bool: whether each channel's speech may count in each frame,
    i.e. its smoothed level is `margin_db` above what every other channel's bleed alone
    would put there (or it is the loudest)."""
    levels = np.array([_levels(samples, frame_s, sample_rate, frames, smooth_s) for samples in channels])
    out = np.ones(levels.shape, bool)
    if not levels.size:
        return out
    for b, source in enumerate(levels):
        loud = source >= np.percentile(source, 90) - 10.0  # where b's own speaker talks (mostly alone)
        for a in range(len(levels)):
            if a != b and loud.any():
                coupling = float(np.median(levels[a][loud] - source[loud]))  # b's bleed into a, in dB
                out[a] &= levels[a] >= source + min(coupling + margin_db, 0.0)
    return out


def _levels(samples: np.ndarray, frame_s: float, sample_rate: int, frames: int, smooth_s: float) -> np.ndarray:
    """Per-frame level in dB, power averaged over `smooth_s`."""
    hop = int(round(frame_s * sample_rate))
    power = np.zeros(frames)
    full = min(frames, len(samples) // hop)
    blocks = np.asarray(samples[:full * hop], np.float32).reshape(full, hop)
    power[:full] = np.einsum("ij,ij->i", blocks, blocks) / hop
    if full < frames and len(samples) > full * hop:  # the last, partial frame
        tail = np.asarray(samples[full * hop:(full + 1) * hop], np.float64)
        power[full] = np.sum(tail * tail) / hop
    width = max(1, int(round(smooth_s / frame_s)))
    return 10 * np.log10(np.convolve(power, np.ones(width) / width, mode="same") + 1e-10)


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
