"""A small energy gate: is there anything in this audio that could be speech?

Whisper hallucinates on silence and steady noise ("Thank you."), so audio without a
single stretch clearly louder than its own noise floor is not sent to the model at all.
The gate is deliberately permissive: it only has to reject silence and stationary noise,
the model handles the rest.
"""
from __future__ import annotations

import numpy as np

FRAME_S = 0.02


def frame_energies_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy of consecutive 20 ms frames, in dBFS; a trailing partial frame counts too."""
    size = int(FRAME_S * sample_rate)
    count = -(-len(samples) // size)
    if count == 0:
        return np.zeros(0, np.float32)
    squared = np.zeros(count * size, np.float64)
    squared[: len(samples)] = np.asarray(samples, dtype=np.float64) ** 2
    lengths = np.full(count, size)
    lengths[-1] = len(samples) - (count - 1) * size
    return 10.0 * np.log10(squared.reshape(count, size).sum(axis=1) / lengths + 1e-12)


def speech_mask(energies_db: np.ndarray, *, floor_db: float = -70.0, above_noise_db: float = 6.0) -> np.ndarray:
    """Frames louder than both an absolute floor and the audio's own noise floor (its
    10th-percentile frame) by `above_noise_db`."""
    if len(energies_db) == 0:
        return np.zeros(0, bool)
    threshold = max(floor_db, float(np.percentile(energies_db, 10)) + above_noise_db)
    return energies_db > threshold


def has_speech(samples: np.ndarray, sample_rate: int, *, min_speech_s: float = 0.2) -> bool:
    """True when at least `min_speech_s` of frames pass `speech_mask`."""
    mask = speech_mask(frame_energies_db(samples, sample_rate))
    return int(np.count_nonzero(mask)) * FRAME_S >= min_speech_s
