"""Typed records passed between the steps, and the JSON response contract.

Internal steps exchange frozen dataclasses (seconds as floats, never None); the response
is described by TypedDicts so clients and tests share one definition of its shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples at 16 kHz: the one decoded form every step shares."""

    samples: "object"  # numpy.ndarray[float32], 1-D; typed loosely to keep this module numpy-free
    sample_rate: int = 16000

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Word:
    """One recognised word. `text` keeps Whisper's leading space and punctuation."""

    text: str
    start: float
    end: float
    speaker: str | None = None


@dataclass(frozen=True)
class Segment:
    """A sentence-level span of the transcript (the response's `chunks`)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Turn:
    """A diarization turn: `speaker` spoke from `start` to `end` (seconds)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Utterance:
    """Consecutive words of one speaker (the response's `speakers` entries)."""

    speaker: str
    text: str
    start: float
    end: float


@dataclass
class Transcript:
    """What the ASR step produces. `words` is empty unless word timings were computed."""

    text: str
    segments: list[Segment]
    words: list[Word] = field(default_factory=list)
    language: str | None = None


# ---- response contract -------------------------------------------------------------


class ChunkJSON(TypedDict):
    text: str
    timestamp: list[float]  # [start, end], seconds, never null


class SpeakerJSON(TypedDict):
    speaker: str
    text: str
    timestamp: list[float]


class WordJSON(TypedDict):
    word: str
    start: float
    end: float
    speaker: str | None


class ResponseJSON(TypedDict):
    text: str
    chunks: list[ChunkJSON]
    speakers: list[SpeakerJSON]  # [] when diarization is off
    words: NotRequired[list[WordJSON]]  # present whenever word timings exist
    metadata: NotRequired[dict]
    srt: NotRequired[str]
    vtt: NotRequired[str]
    rttm: NotRequired[str]
