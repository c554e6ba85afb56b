"""A request's records between the handler's stages: `Request`, what `check` accepted, and
`Outcome`, everything its response is rendered from (`EndpointHandler.render`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from config import InferenceConfig
from speech_endpoint.attribution.speaker_names import Match
from speech_endpoint.schema import Attribution, Audio, DecodeOptions, SpeechActivity, Transcript


@dataclass(frozen=True)
class Request:
    """A checked request: its parameters, and whether diarization runs for it. How it is
    decoded is planned once its duration is known (`EndpointHandler.decode_options`)."""

    config: InferenceConfig
    diarize: bool


@dataclass(frozen=True)
class Outcome:
    """What a response is rendered from: the checked request and each stage's result
    (`timings`: seconds per stage, `metadata.timings`; `matches`: known speakers)."""

    request: Request
    audio: Audio
    activity: SpeechActivity
    options: DecodeOptions
    transcript: Transcript
    attribution: Attribution
    timings: dict[str, float] = field(default_factory=dict)
    matches: Sequence[Match] = ()
