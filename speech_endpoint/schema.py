"""Typed records passed between the steps, the JSON response contract with its error types,
and the shapes of the models the handler is composed from.

Internal steps exchange frozen dataclasses (seconds as floats, never None); the response
is described by TypedDicts so clients and tests share one definition of its shape; a
client's mistake is a `ClientError`; the models are Protocols (at the end).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict

SAMPLE_RATE = 16000  # Whisper, Silero and pyannote all take 16 kHz mono: decoded once to this


class ClientError(ValueError):
    """A request the client can fix. Its message is shown to the client as-is (HTTP 4xx),
    so it must be plain, specific and free of secrets and stack traces."""


class ConfigurationError(RuntimeError):
    """The endpoint is misconfigured (raised at start-up, never per request)."""


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples at 16 kHz: the one decoded form every step shares."""

    samples: "object"  # numpy.ndarray[float32], 1-D; typed loosely to keep this module numpy-free
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Word:
    """One recognised word. `text` keeps Whisper's leading space and punctuation;
    `probability` is Whisper's confidence in it (`speech_endpoint.whisper.scores`)."""

    text: str
    start: float
    end: float
    speaker: str | None = None
    probability: float | None = None


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


def sort_turns(turns: Iterable[Turn]) -> list[Turn]:
    """Turns in time order (start, then end, then speaker): the one order every stage uses."""
    return sorted(turns, key=lambda t: (t.start, t.end, t.speaker))


@dataclass(frozen=True)
class Utterance:
    """Consecutive words of one speaker (the response's `speakers` entries), and one
    subtitle cue (`speaker` None without diarization)."""

    speaker: str | None
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class SpeechActivity:
    """Where the audio has speech, from the one speech-activity pass of a request: a score
    per frame (higher = more speech-like) and the frames that count as speech. The windows
    Whisper decodes are cut where the score is lowest."""

    frame_s: float
    scores: "object"  # numpy.ndarray[float], one per frame
    mask: "object"  # numpy.ndarray[bool], one per frame

    @property
    def speech_s(self) -> float:
        return float(self.mask.sum()) * self.frame_s


@dataclass(frozen=True)
class Skip:
    """A stretch of speech that decoding gave no words, and how many words its second
    decoding gave (`speech_endpoint.speech.skipped_speech`)."""

    start: float
    end: float
    speech_s: float
    words: int = 0


@dataclass(frozen=True)
class Redecoded:
    """What the skipped-speech guard did for one transcription: stretches decoded again,
    looping stretches of sequential decoding dropped (start, end), and the seconds it took."""

    skips: tuple[Skip, ...] = ()
    loops: tuple[tuple[float, float], ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class DecodeOptions:
    """What one transcription needs to know: the request's decoding plan (`config.plan_decoding`)."""

    task: str = "transcribe"
    language: str | None = None
    chunk_length_s: float = 30.0
    batch_size: int = 24
    use_assistant: bool = False
    prompt: str | None = None
    beam_size: int = 1

    @property
    def windows_per_batch(self) -> int:
        """Windows decoded together: `batch_size` counts sequences, so with beams it is
        `batch_size` // `beam_size` windows (memory as greedy's); 1 with the assistant."""
        return 1 if self.use_assistant else max(1, self.batch_size // self.beam_size)


@dataclass
class Transcript:
    """What the ASR step produces: the text and its words with times (no speakers), and
    what the skipped-speech guard did."""

    text: str
    words: list[Word] = field(default_factory=list)
    language: str | None = None
    redecoded: Redecoded = field(default_factory=Redecoded)


@dataclass(frozen=True)
class Diarization:
    """`exclusive`: one speaker at a time (for words); `full`: overlaps kept (for RTTM);
    `embeddings`: one vector per speaker label, when the pipeline gave them."""

    exclusive: list[Turn] = field(default_factory=list)
    full: list[Turn] = field(default_factory=list)
    embeddings: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Attribution:
    """The transcript cut for the response: words with their speakers, sentence segments
    (never across a speaker change), one utterance per speaker turn, and the full
    diarization under the same SPEAKER_xx names as the words (for RTTM). Without
    diarization, speakers are None and `utterances` and `turns` are empty."""

    words: list[Word]
    segments: list[Segment]
    utterances: list[Utterance] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # the diarizer's label -> the response's
    embeddings: dict[str, list[float]] = field(default_factory=dict)  # by the response's labels


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
    probability: NotRequired[float]


class TimingsJSON(TypedDict):
    decode_s: float
    references_s: NotRequired[float]  # known speakers' clips decoded and embedded
    speech_detection_s: NotRequired[float]  # the VAD pass(es)
    transcription_s: NotRequired[float]  # Whisper, skipped speech decoded again, word times fitted
    diarization_pipeline_s: NotRequired[float]  # pyannote
    attribution_s: NotRequired[float]  # words to speakers, segments, utterances, known speakers named
    asr_s: float  # references_s + speech_detection_s + transcription_s (the first keys, kept for clients)
    redecode_s: float  # part of transcription_s (and asr_s): skipped speech decoded again
    diarization_s: float  # diarization_pipeline_s + attribution_s
    total_s: float


class RedecodedJSON(TypedDict):
    """What the skipped-speech guard did: stretches of speech without words decoded again,
    the words that gave, their speech seconds, and looping stretches dropped."""

    stretches: int
    words: int
    speech_s: float
    loops_dropped: int


class MetadataJSON(TypedDict):
    duration: float
    device: str  # "cuda:0" or "cpu"
    dtype: str  # "float16" or "float32"
    language: str | None
    task: str
    assisted: bool
    batch_size: int
    beam_size: int  # 1: greedy
    chunk_length_s: float
    timestamp_granularity: str
    diarization: bool
    speech_detected: bool
    speech_s: float
    redecoded: RedecodedJSON
    notes: list[str]
    timings: TimingsJSON
    known_speakers: NotRequired[dict[str, dict]]  # name -> {"matched": bool, "similarity": best cosine}
    diarization_params: NotRequired[dict[str, dict]]  # the pipeline's parameters, when it ran and has any
    multichannel: NotRequired[dict]  # {"channels": n, "speakers": the label of each channel, in order}


class ResponseJSON(TypedDict):
    text: str
    chunks: list[ChunkJSON]
    speakers: list[SpeakerJSON]  # [] when diarization is off
    words: NotRequired[list[WordJSON]]  # present whenever word timings exist
    metadata: NotRequired[MetadataJSON]
    srt: NotRequired[str]
    vtt: NotRequired[str]
    rttm: NotRequired[str]
    speaker_embeddings: NotRequired[dict[str, list[float]]]


# ---- what EndpointHandler needs from each model ------------------------------------------
# The recogniser (Whisper, `whisper.asr.WhisperASR`), the speech detector (Silero VAD,
# `speech.silero.SileroVAD`) and the diarizer (pyannote, `attribution.diarizer.Diarizer`), as
# Protocols: the handler is composed from objects of these shapes, so tests and evaluation can
# pass their own. (numpy.ndarray annotations stay strings: this module stays numpy-free.)


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

    def probabilities(self, samples: numpy.ndarray) -> numpy.ndarray: ...


class SpeakerDiarizer(Protocol):
    """Who spoke when, and speaker vectors for known-speaker references."""

    @property
    def params(self) -> dict: ...

    @property
    def embedding_dimension(self) -> int | None: ...

    def __call__(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None, embeddings: bool = False) -> Diarization: ...

    def embed(self, samples: numpy.ndarray) -> list[float]: ...
