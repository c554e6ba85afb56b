"""Speech activity: where in the audio anything could be speech, computed once per request.

Whisper hallucinates on silence and steady noise ("Thank you."), so audio without a single
stretch clearly louder than its own noise floor is not sent to the model at all, and the
same frames decide where the decoding windows are cut (`speech_endpoint.windows`).
The gate is deliberately permissive: it only has to reject silence and stationary noise,
the model handles the rest.
"""
from __future__ import annotations

import numpy as np

from speech_endpoint.schema import SpeechActivity

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


def energy_activity(samples: np.ndarray, sample_rate: int) -> SpeechActivity:
    """Frame energies as scores, frames over the noise floor as speech."""
    energies = frame_energies_db(samples, sample_rate)
    return SpeechActivity(frame_s=FRAME_S, scores=energies, mask=speech_mask(energies))


def has_speech(activity: SpeechActivity, *, min_speech_s: float = 0.2) -> bool:
    """True when at least `min_speech_s` of frames count as speech."""
    return activity.speech_s >= min_speech_s - 1e-9
