"""What `EndpointHandler` needs from each model, as Protocols: the recogniser (Whisper,
`whisper.asr.WhisperASR`), the speech detector (Silero VAD, `speech.silero.SileroVAD`) and
the diarizer (pyannote, `attribution.diarizer.Diarizer`). The handler is composed from
objects with these shapes, so tests and evaluation can pass their own."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from speech_endpoint.schema import Audio, DecodeOptions, Diarization, SpeechActivity, Transcript


class Recogniser(Protocol):
    """Speech to timed words. `assistant` is the draft model (None without one);
    `multilingual` whether the model knows languages other than English."""

    assistant: Any | None
    multilingual: bool

    def transcribe(self, audio: Audio, activity: SpeechActivity, options: DecodeOptions,
                   progress: Callable[[float, float], None] | None = None) -> Transcript: ...

    def warm_up(self) -> None: ...


class SpeechDetector(Protocol):
    """Per-frame speech probabilities of a whole request, `frame_s` seconds a frame."""

    frame_s: float

    def probabilities(self, samples: np.ndarray) -> np.ndarray: ...


class SpeakerDiarizer(Protocol):
    """Who spoke when, and speaker vectors for known-speaker references."""

    @property
    def params(self) -> dict: ...

    @property
    def embedding_dimension(self) -> int | None: ...

    def __call__(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None, embeddings: bool = False) -> Diarization: ...

    def embed(self, samples: np.ndarray) -> list[float]: ...
