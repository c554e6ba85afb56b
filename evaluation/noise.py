"""Generated non-speech and degraded speech, seeded, numpy only (nothing downloaded): the
audio that makes Whisper invent text, and the conditions under which speech must survive.

Every generator returns mono float32 at 16 kHz. Levels are in dBFS (RMS).
"""
from __future__ import annotations

import numpy as np

from speech_endpoint.schema import SAMPLE_RATE

SR = SAMPLE_RATE


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x * 10 ** ((dbfs - rms_db(x)) / 20)).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise, unit RMS."""
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def music_notes(seconds: float, seed: int = 0, dbfs: float = -20.0) -> np.ndarray:
    """A plucked-string melody: decaying harmonics on a major scale, some two-note chords."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.zeros(n)
    scale = (0, 2, 4, 5, 7, 9, 11, 12, 14, 16)
    pos = 0
    while pos < n:
        step = float(rng.choice([0.2, 0.3, 0.4, 0.6]))
        length = min(int(step * SR * 2.5), n - pos)
        t = np.arange(length) / SR
        chord = [int(rng.choice(scale))] + ([int(rng.choice(scale)) - 12] if rng.random() < 0.3 else [])
        for semitone in chord:
            f0 = 196.0 * 2 ** (semitone / 12)
            for k in range(1, 12):
                if f0 * k < 7000:
                    x[pos:pos + length] += (0.6 / k) * np.exp(-t * (2.5 + 1.2 * k)) * np.sin(
                        2 * np.pi * f0 * k * t + rng.random() * 6)
        pos += int(step * SR)
    return at_level(x, dbfs)


def clicks_over_room_tone(seconds: float, seed: int = 0) -> np.ndarray:
    """Keyboard-like clicks (short decaying noise bursts, -30..-6 dBFS peaks) over quiet
    pink room tone at -60 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = 10 ** (-60 / 20) * pink_noise(n, rng)
    pos = int(0.2 * SR)
    while pos < n - 400:
        length = int(rng.integers(20, 300))
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / 5))
        x[pos:pos + length] += 10 ** (rng.uniform(-30, -6) / 20) * burst
        pos += int(rng.exponential(0.15) * SR) + 200
    return x.astype(np.float32)


def hum_with_beeps(seconds: float, seed: int = 0) -> np.ndarray:
    """50 Hz mains hum with harmonics at -30 dBFS, and 0.2 s beeps (1 and 2.5 kHz)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = at_level(sum((0.5 / k) * np.sin(2 * np.pi * 50 * k * t + k) for k in range(1, 8)), -30).astype(np.float64)
    for start in np.arange(0.5 + rng.random(), seconds - 0.5, 1.3):
        i = int(start * SR)
        tt = np.arange(int(0.2 * SR)) / SR
        tone = 1000 if rng.random() < 0.5 else 2500
        x[i:i + len(tt)] += 0.1 * np.sin(2 * np.pi * tone * tt) * np.minimum(1, np.minimum(tt, tt[::-1]) / 0.005)
    return x.astype(np.float32)


def babble_like(seconds: float, seed: int = 0, talkers: int = 6, dbfs: float = -25.0) -> np.ndarray:
    """Crowd-like noise: several streams of speech-shaped noise (pink, rolled off above
    3.5 kHz), each switched on and off at a syllabic rate (~4 Hz) with random pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    shape = np.where(freqs > 3500, np.exp(-((freqs - 3500) / 800) ** 2), 1.0)
    shape *= np.where(freqs < 100, freqs / 100, 1.0)
    x = np.zeros(n)
    frame = SR // 50
    for _ in range(talkers):
        noise = np.fft.irfft(np.fft.rfft(pink_noise(n, rng)) * shape, n)
        syllables = rng.random(n // frame + 1) < 0.5
        envelope = np.convolve(np.repeat(syllables.astype(float), frame)[:n], np.hanning(frame * 6), "same")
        x += noise * envelope / (envelope.max() + 1e-9)
    return at_level(x, dbfs)


NON_SPEECH = {
    "music": music_notes,
    "clicks": clicks_over_room_tone,
    "hum_beeps": hum_with_beeps,
    "babble": babble_like,
}


def active_rms_db(speech: np.ndarray, floor_db: float = 30.0) -> float:
    """RMS of the speech-active part: 20 ms frames within `floor_db` of the loudest."""
    frames = speech[: len(speech) // 320 * 320].reshape(-1, 320).astype(np.float64)
    energy = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    active = frames[energy > energy.max() - floor_db]
    return 10 * np.log10(np.mean(active ** 2) + 1e-12)


def with_pink_noise(speech: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Speech plus pink noise at `snr_db` against the speech-active RMS, clipped to [-1, 1]."""
    noise = pink_noise(len(speech), np.random.default_rng(seed))
    noise *= 10 ** ((active_rms_db(speech) - snr_db) / 20)
    return np.clip(speech + noise, -1, 1).astype(np.float32)


def attenuated(speech: np.ndarray, db: float) -> np.ndarray:
    return (speech * 10 ** (-db / 20)).astype(np.float32)


def with_insert(before: np.ndarray, insert: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """before + insert + after, and the insert's span in seconds."""
    start = len(before) / SR
    return np.concatenate([before, insert, after]).astype(np.float32), (start, start + len(insert) / SR)
