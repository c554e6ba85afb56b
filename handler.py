"""Hugging Face Inference Endpoints custom handler: audio in, transcript with word timings
and speaker labels out.

The platform builds `EndpointHandler(path)` once, then calls it per request with
`{"inputs": base64 str | bytes, "parameters": {...}}`. Anything raised reaches the client
as HTTP 400 `{"error": str(e)}`, so client mistakes raise `ClientError` with a plain message.

A request runs through public stages, in this order; scripts and tests call them directly:
  check           parameters validated, the decoding plan checked (`config.plan_decoding`),
                  before any audio work
  decode          the audio decoded once, in memory, to mono 16 kHz
  references      known speakers' clips decoded and embedded (refused before transcription)
  speech          one Silero VAD pass: whether Whisper runs at all, where its windows are cut
  decode_options  the decoding plan for this audio's duration (assistant, beams, batch size)
  transcribe      Whisper's timed words, then speech left without words decoded again
  fit_to_speech   word times cut to the speech found under them
  diarize         who spoke when (pyannote)
  attribute       every word to one speaker; sentence segments and speaker utterances
  identify        known speakers' names where their voices match
  render          the response JSON and the subtitle / RTTM formats
A `multichannel` request takes `multichannel.py`'s stages instead (one speaker per channel).

The models are components (Protocols in `speech_endpoint.schema`): `EndpointHandler(path)` loads them
from the environment, as the platform builds it; `EndpointHandler.from_components` takes them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

import diarization_utils
from config import InferenceConfig, ModelSettings, plan_decoding
from multichannel import MultichannelStages
from request import Outcome, Request
from speech_endpoint.render import response
from speech_endpoint.speech import audio as audio_io
from speech_endpoint.speech import skipped_speech
from speech_endpoint.whisper.precision import Placement, choose
from speech_endpoint.whisper.asr import WhisperASR
from speech_endpoint.attribution.diarizer import Diarizer
from speech_endpoint.schema import (
    SAMPLE_RATE,
    Attribution,
    Audio,
    ClientError,
    DecodeOptions,
    Diarization,
    MetadataJSON,
    Recogniser,
    ResponseJSON,
    SpeakerDiarizer,
    SpeechActivity,
    SpeechDetector,
    Transcript,
)
from speech_endpoint.speech.silero import SileroVAD
from speech_endpoint.attribution.speaker_names import Match, match_known_speakers
from speech_endpoint.speech.activity import activity_from_probabilities, fit_to_speech, has_speech

log = logging.getLogger("speech_endpoint")


class EndpointHandler(MultichannelStages):
    def __init__(self, path: str = "", *, settings: ModelSettings | None = None):
        """The platform's constructor: models and limits from the environment (or from
        `settings`, for tests and evaluation: `ModelSettings.from_env(asr_model=...)`)."""
        s = settings or ModelSettings.from_env()
        started = time.perf_counter()
        if s.cpu_threads:
            torch.set_num_threads(s.cpu_threads)
        placement = choose(s.device, s.cpu_bf16, s.cpu_int8)
        vad = SileroVAD()
        asr = WhisperASR(s.asr_model, placement=placement, assistant_id=s.assistant_model, token=s.token)
        diarizer = (Diarizer(s.diarization_model, token=s.token, device=placement.device,
                             segmentation_step=s.diarization_step, params=s.diarization_params,
                             embedding_stride=s.diarization_embedding_stride)
                    if s.diarization_model else None)
        self._compose(s, asr.placement, asr, vad, diarizer)  # what the recogniser runs (it may drop int8)
        log.info("models loaded in %.1f s on %s (%s)", time.perf_counter() - started, self.placement.device,
                 self.placement.dtype_name)

    @classmethod
    def from_components(cls, *, asr: Recogniser, vad: SpeechDetector, diarizer: SpeakerDiarizer | None = None,
                        settings: ModelSettings | None = None, placement: Placement | None = None):
        """A handler on models built elsewhere; the environment is not read. `settings`
        (limits and defaults) defaults to `ModelSettings.from_values` with nothing but
        `warmup` off; `placement` to the recogniser's, else the CPU in float32."""
        handler = cls.__new__(cls)
        settings = settings or ModelSettings.from_values(asr_model="(given)", warmup=False)
        placement = placement or getattr(asr, "placement", None) or Placement("cpu", torch.float32)
        handler._compose(settings, placement, asr, vad, diarizer)
        return handler

    def _compose(self, settings: ModelSettings, placement: Placement, asr: Recogniser,
                 vad: SpeechDetector, diarizer: SpeakerDiarizer | None) -> None:
        self.settings, self.placement, self.asr, self.vad, self.diarizer = settings, placement, asr, vad, diarizer
        if settings.warmup:  # the first request must not pay for lazy initialisation
            self.vad.probabilities(np.zeros(SAMPLE_RATE, np.float32))
            self.asr.warm_up()

    def __call__(self, data: dict[str, Any], progress=None) -> ResponseJSON:
        """One request. `progress(done_s, total_s)`, for command lines, is called as
        Whisper's windows finish."""
        lap = response.Stopwatch()
        request = self.check(data)
        if request.config.multichannel:  # stereo calls: `multichannel.py`
            return self.transcribe_call(data, request, lap, progress=progress)
        audio = self.decode(data, request)
        timings = {"decode_s": lap()}
        references = self.references(request)
        timings["references_s"] = lap()
        activity = self.speech(audio)
        timings["speech_detection_s"] = lap()
        options = self.decode_options(request, audio.duration)
        transcript = self.fit_to_speech(self.transcribe(audio, activity, options, progress=progress), activity)
        timings["transcription_s"] = lap()
        diarization = self.diarize(audio, activity, request)
        timings["diarization_pipeline_s"] = lap()
        attribution, matches = self.identify(self.attribute(transcript, diarization), references)
        timings["attribution_s"] = lap()
        timings.update(response.legacy_timings(timings, transcript.redecoded.seconds), total_s=lap.total())
        return self.render(Outcome(request, audio, activity, options, transcript, attribution, timings, matches))

    # ---- stages -----------------------------------------------------------------------------

    def check(self, data: Any) -> Request:
        """Validate the body's shape and parameters against what this endpoint has;
        refuses (ClientError) before any audio is decoded."""
        if not isinstance(data, dict):
            raise ClientError("The request body must be a JSON object with 'inputs'")
        config = InferenceConfig.from_parameters(data.get("parameters"))
        s = self.settings
        self._plan(config, duration=None)  # refusals only: the plan itself needs the duration
        wants_diarizer = config.wants_speakers or config.diarize or "rttm" in config.output_formats
        if self.diarizer is None and not config.multichannel and wants_diarizer:  # channels are speakers
            raise ClientError(
                "Speaker diarization was requested (diarize, num_speakers, min_speakers, max_speakers, "
                "known_speakers, return_speaker_embeddings or rttm) but this endpoint has no "
                "DIARIZATION_MODEL configured"
            )
        if config.known_speakers:
            if self.diarizer.embedding_dimension is None:
                raise ClientError("parameter 'known_speakers': this endpoint's diarization pipeline has no "
                                  "speaker embedding model")
            if len(config.known_speakers) > s.max_known_speakers:
                raise ClientError(f"parameter 'known_speakers': at most {s.max_known_speakers} on this endpoint")
        return Request(config=config,
                       diarize=self.diarizer is not None and config.diarize is not False and not config.multichannel)

    def decode(self, data: dict[str, Any], request: Request) -> Audio:
        """The request's audio as mono 16 kHz float32, decoded once, in memory."""
        payload = audio_io.payload_bytes(data.get("inputs"), self.settings.max_payload_bytes)
        return audio_io.decode(payload, input_format=request.config.input_format,
                               sampling_rate=request.config.sampling_rate, max_seconds=self.settings.max_audio_s)

    def speech(self, audio: Audio) -> SpeechActivity:
        """Where the audio has speech: the request's one speech-activity pass (Silero VAD),
        which decides whether Whisper runs at all and where its windows are cut."""
        return activity_from_probabilities(self.vad.probabilities(audio.samples), self.vad.frame_s, audio.duration)

    def decode_options(self, request: Request, duration: float) -> DecodeOptions:
        """How to decode `duration` seconds (`config.plan_decoding`)."""
        return self._plan(request.config, duration)

    def _plan(self, config: InferenceConfig, duration: float | None) -> DecodeOptions:
        return plan_decoding(config, self.settings, has_assistant=self.asr.assistant is not None,
                             device=self.placement.device, duration=duration)

    def transcribe(self, audio: Audio, activity: SpeechActivity, options: DecodeOptions,
                   progress=None) -> Transcript:
        """Whisper's words with times; nothing is decoded where there is no speech.
        `progress(done_s, total_s)` is called as windows finish (for CLIs)."""
        if not has_speech(activity):
            return Transcript("", [], options.language)
        return self.asr.transcribe(audio, activity, options, progress=progress)

    def fit_to_speech(self, transcript: Transcript, activity: SpeechActivity) -> Transcript:
        """Word times cut to the speech found: Whisper's spill over pauses removed
        (`speech_endpoint.speech.activity.fit_to_speech`)."""
        return replace(transcript, words=fit_to_speech(transcript.words, activity))

    def diarize(self, audio: Audio, activity: SpeechActivity, request: Request) -> Diarization | None:
        """Who spoke when: None when diarization does not run for this request, empty
        when there is no speech."""
        if not request.diarize:
            return None
        if not has_speech(activity):
            return Diarization()
        c = request.config
        return self.diarizer(audio, num_speakers=c.num_speakers, min_speakers=c.min_speakers,
                             max_speakers=c.max_speakers, embeddings=bool(c.known_speakers or c.return_speaker_embeddings))

    def attribute(self, transcript: Transcript, diarization: Diarization | None) -> Attribution:
        """Every word to exactly one speaker, then sentences and utterances. The rules use
        the transcript's language's word lists; an English-only model's is English."""
        language = transcript.language or (None if self.asr.multilingual else "en")
        return diarization_utils.attribute(transcript.words, diarization, language=language)

    def references(self, request: Request) -> dict[str, list[float]]:
        """A speaker vector per known speaker: from their clip (decoded, its speech found
        and embedded with the pipeline's own model) or as given. Bad references are refused
        before any transcription."""
        return {name: self._reference(name, value) for name, value in (request.config.known_speakers or {}).items()}

    def identify(self, attribution: Attribution, references: dict[str, list[float]]) -> tuple[Attribution, list[Match]]:
        """Known speakers' names instead of their SPEAKER_xx, where their voices match."""
        if not references:
            return attribution, []
        matches = match_known_speakers(references, attribution.embeddings, self.settings.known_speaker_threshold)
        names = {m.speaker: m.name for m in matches if m.speaker is not None}
        return diarization_utils.rename_speakers(attribution, names), matches

    def render(self, outcome: Outcome) -> ResponseJSON:
        request, audio, activity, options = outcome.request, outcome.audio, outcome.activity, outcome.options
        transcript, attribution, timings, matches = outcome.transcript, outcome.attribution, outcome.timings, outcome.matches
        config = request.config
        notes = []
        if options.use_assistant and config.batch_size != 1:
            notes.append("the assistant runs at batch size 1 (speculative decoding decodes one sequence)")
        redecoded = transcript.redecoded
        notes.extend(skipped_speech.notes(redecoded))
        metadata: MetadataJSON = {
            "duration": round(audio.duration, 3),
            "device": self.placement.device,
            "dtype": self.placement.dtype_name,
            "language": transcript.language,
            "task": config.task,
            "assisted": options.use_assistant,
            "batch_size": options.batch_size,
            "beam_size": options.beam_size,
            "chunk_length_s": options.chunk_length_s,
            "timestamp_granularity": config.timestamp_granularity,
            "diarization": request.diarize,
            "speech_detected": has_speech(activity),
            "speech_s": round(activity.speech_s, 3),
            "redecoded": {"stretches": len(redecoded.skips), "words": sum(k.words for k in redecoded.skips),
                          "speech_s": round(sum(k.speech_s for k in redecoded.skips), 3),
                          "loops_dropped": len(redecoded.loops)},
            "notes": notes,
            "timings": {name: round(value, 3) for name, value in timings.items()},  # type: ignore[typeddict-item]
        }
        if request.diarize and self.diarizer.params:  # what it ran with (DIARIZATION_PARAMS over its own)
            metadata["diarization_params"] = self.diarizer.params
        if matches:
            metadata["known_speakers"] = {m.name: {"matched": m.speaker is not None,
                                                   "similarity": round(m.similarity, 3)} for m in matches}
        return response.render(transcript.text, attribution, output_formats=config.output_formats,
                               word_chunks=config.timestamp_granularity == "word", metadata=metadata,
                               speaker_embeddings=config.return_speaker_embeddings)

    def _reference(self, name: str, value: str | list[float]) -> list[float]:
        s, where = self.settings, f"parameter 'known_speakers', '{name}'"
        if isinstance(value, list):
            if len(value) != self.diarizer.embedding_dimension:
                raise ClientError(f"{where}: a vector must have {self.diarizer.embedding_dimension} values "
                                  f"(this endpoint's speaker embeddings), not {len(value)}")
            return value
        try:
            clip = audio_io.decode(audio_io.payload_bytes(value, s.max_reference_bytes), max_seconds=s.max_reference_s)
        except ClientError as exc:
            raise ClientError(f"{where}: {exc}") from None
        activity = self.speech(clip)
        if activity.speech_s < s.min_reference_speech_s:
            raise ClientError(f"{where}: the clip has {activity.speech_s:.1f} s of speech; at least "
                              f"{s.min_reference_speech_s:g} s of that person alone is needed")
        frames = np.repeat(activity.mask, int(round(activity.frame_s * clip.sample_rate)))[: len(clip.samples)]
        return self.diarizer.embed(clip.samples[frames])
