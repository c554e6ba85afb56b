"""Hugging Face Inference Endpoints custom handler: audio in, transcript with word timings
and speaker labels out.

The platform builds `EndpointHandler(path)` once, then calls it per request with
`{"inputs": base64 str | bytes, "parameters": {...}}`. Anything raised reaches the client
as HTTP 400 `{"error": str(e)}`, so client mistakes raise `ClientError` with a plain message.

A request runs through public stages, in this order; scripts and tests call them directly:
check -> decode -> speech -> transcribe -> fit_to_speech -> diarize -> attribute -> render.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

import diarization_utils
from config import InferenceConfig, ModelSettings
from multichannel import MultichannelStages
from speech_endpoint import audio as audio_io
from speech_endpoint import device, response, skipped_speech
from speech_endpoint.asr import DecodeOptions, WhisperASR
from speech_endpoint.diarizer import Diarizer
from speech_endpoint.errors import ClientError
from speech_endpoint.schema import (
    SAMPLE_RATE,
    Attribution,
    Audio,
    Diarization,
    MetadataJSON,
    ResponseJSON,
    SpeechActivity,
    Transcript,
)
from speech_endpoint.silero import SileroVAD
from speech_endpoint.speaker_names import Match, match_known_speakers
from speech_endpoint.speech_activity import activity_from_probabilities, has_speech
from speech_endpoint.word_timing import fit_to_speech

log = logging.getLogger("speech_endpoint")


@dataclass(frozen=True)
class Request:
    """A checked request: its parameters and what this endpoint runs for it, decided before
    any audio work. `assisted` is "auto" until the audio's duration is known."""

    config: InferenceConfig
    batch_size: int
    beam_size: int
    assisted: bool | Literal["auto"]
    diarize: bool


class EndpointHandler(MultichannelStages):
    def __init__(self, path: str = ""):
        self.settings = ModelSettings.from_env()
        s = self.settings
        started = time.perf_counter()
        if s.cpu_threads:
            torch.set_num_threads(s.cpu_threads)
        self.placement = device.choose(s.device, s.cpu_bf16)
        self.vad = SileroVAD()
        self.asr = WhisperASR(s.asr_model, placement=self.placement, assistant_id=s.assistant_model, token=s.token)
        self.diarizer = (
            Diarizer(s.diarization_model, token=s.token, device=self.placement.device,
                     segmentation_step=s.diarization_step, params=s.diarization_params,
                     embedding_stride=s.diarization_embedding_stride)
            if s.diarization_model else None
        )
        if s.warmup:  # the first request must not pay for lazy initialisation
            self.vad.probabilities(np.zeros(SAMPLE_RATE, np.float32))
            self.asr.warm_up()
        log.info("models loaded in %.1f s on %s (%s)", time.perf_counter() - started, self.placement.device,
                 self.placement.dtype_name)

    def __call__(self, data: dict[str, Any], progress=None) -> ResponseJSON:
        """One request. `progress(done_s, total_s)`, for command lines, is called as
        Whisper's windows finish."""
        started = time.perf_counter()
        request = self.check(data)
        if request.config.multichannel:  # stereo calls: `multichannel.py`
            return self.transcribe_call(data, request, started, progress=progress)
        audio = self.decode(data, request)
        decoded = time.perf_counter()
        references = self.references(request)
        activity = self.speech(audio)
        options = self.decode_options(request, audio.duration)
        transcript = self.fit_to_speech(self.transcribe(audio, activity, options, progress=progress), activity)
        transcribed = time.perf_counter()
        diarization = self.diarize(audio, activity, request)
        attribution, matches = self.identify(self.attribute(transcript, diarization), references)
        finished = time.perf_counter()
        timings = {"decode_s": decoded - started, "asr_s": transcribed - decoded,
                   "redecode_s": transcript.redecoded.seconds,  # part of asr_s: speech decoded again
                   "diarization_s": finished - transcribed, "total_s": time.perf_counter() - started}
        return self.render(request, audio, activity, options, transcript, attribution, timings, matches)

    # ---- stages -----------------------------------------------------------------------------

    def check(self, data: Any) -> Request:
        """Validate the body's shape and parameters against what this endpoint has;
        refuses (ClientError) before any audio is decoded."""
        if not isinstance(data, dict):
            raise ClientError("The request body must be a JSON object with 'inputs'")
        config = InferenceConfig.from_parameters(data.get("parameters"))
        s = self.settings
        batch_size = config.batch_size
        if batch_size > s.max_batch_size:
            if "batch_size" in config.model_fields_set:
                raise ClientError(f"parameter 'batch_size': at most {s.max_batch_size} on this endpoint")
            batch_size = s.max_batch_size  # the default (24) must not refuse requests on a smaller limit
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
        assisted = config.assisted if config.assisted is not None else s.default_assisted
        if assisted is True and self.asr.assistant is None:
            raise ClientError("parameter 'assisted': this endpoint has no ASSISTANT_MODEL configured")
        if config.chunk_length_s == 0 and (config.beam_size or 1) > 1:
            # transformers 4.51's word timestamps fail under beam search (beam_indices' shape)
            raise ClientError("parameter 'beam_size': sequential decoding (chunk_length_s 0) is greedy; "
                              "use beam_size 1 or chunk_length_s above 0")
        beam_size = 1 if config.chunk_length_s == 0 else config.beam_size or s.default_beam_size
        if assisted is True and beam_size > 1:  # speculative decoding is greedy: what was asked beats a default
            if config.assisted is not None and config.beam_size is not None:
                raise ClientError("parameters 'assisted' and 'beam_size': speculative decoding is greedy, "
                                  "so 'assisted: true' needs 'beam_size: 1'")
            if config.assisted is not None:
                beam_size = 1
            else:
                assisted = False
        return Request(config=config, batch_size=batch_size, beam_size=beam_size, assisted=assisted,
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
        """How to decode `duration` seconds: "auto" takes the assistant where it wins: on a
        GPU, for audio up to AUTO_ASSIST_MAX_S (one window, decoded at batch 1 anyway), and
        never on a CPU, where a trained 2-layer draft was slower at every length (README)."""
        has_assistant = self.asr.assistant is not None
        use_assistant = has_assistant and request.beam_size == 1 and (
            request.assisted is True
            or (request.assisted == "auto" and self.placement.device != "cpu"
                and duration <= self.settings.auto_assist_max_s))
        config = request.config
        return DecodeOptions(task=config.task, language=config.language, chunk_length_s=config.chunk_length_s,
                             batch_size=1 if use_assistant else request.batch_size,
                             use_assistant=use_assistant, prompt=config.prompt,
                             beam_size=request.beam_size)

    def transcribe(self, audio: Audio, activity: SpeechActivity, options: DecodeOptions,
                   progress=None) -> Transcript:
        """Whisper's words with times; nothing is decoded where there is no speech.
        `progress(done_s, total_s)` is called as windows finish (for CLIs)."""
        if not has_speech(activity):
            return Transcript("", [], options.language)
        return self.asr.transcribe(audio, activity, options, progress=progress)

    def fit_to_speech(self, transcript: Transcript, activity: SpeechActivity) -> Transcript:
        """Word times cut to the speech found: Whisper's spill over pauses removed
        (`speech_endpoint.word_timing`)."""
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

    def render(self, request: Request, audio: Audio, activity: SpeechActivity, options: DecodeOptions,
               transcript: Transcript, attribution: Attribution, timings: dict[str, float],
               matches: list[Match] = ()) -> ResponseJSON:
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
