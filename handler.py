"""Hugging Face Inference Endpoints custom handler: audio in, transcript with word timings
and speaker labels out.

The platform builds `EndpointHandler(path)` once, then calls it per request with
`{"inputs": base64 str | bytes, "parameters": {...}}`. Anything raised reaches the client
as HTTP 400 `{"error": str(e)}`, so client mistakes raise `ClientError` with a plain message.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from config import InferenceConfig, ModelSettings
from speech_endpoint import audio as audio_io
from speech_endpoint.asr import DecodeOptions, WhisperASR
from speech_endpoint.diarizer import Diarization, Diarizer
from speech_endpoint.errors import ClientError
from speech_endpoint.response import build_response
from speech_endpoint.schema import Audio, ResponseJSON, Transcript
from speech_endpoint.vad import has_speech

log = logging.getLogger("speech_endpoint")


@dataclass(frozen=True)
class Plan:
    """What one request will run, decided before any audio work."""

    decode: DecodeOptions
    diarize: bool
    notes: tuple[str, ...] = ()


class EndpointHandler:
    def __init__(self, path: str = ""):
        self.settings = ModelSettings.from_env()
        s = self.settings
        started = time.perf_counter()
        if s.cpu_threads:
            torch.set_num_threads(s.cpu_threads)
        self.asr = WhisperASR(s.asr_model, assistant_id=s.assistant_model, token=s.token, quantize=s.quantize)
        self.diarizer = (
            Diarizer(s.diarization_model, token=s.token, device=self.asr.device)
            if s.diarization_model else None
        )
        if s.warmup:
            self._warmup()
        log.info("models loaded in %.1f s (device %s)", time.perf_counter() - started, self.asr.device)

    def __call__(self, data: dict[str, Any]) -> ResponseJSON:
        started = time.perf_counter()
        if not isinstance(data, dict):
            raise ClientError("The request body must be a JSON object with 'inputs'")
        config = InferenceConfig.from_parameters(data.get("parameters"))
        self.plan(config, duration=0.0)  # refuse what this endpoint cannot do before decoding
        payload = audio_io.payload_bytes(data.get("inputs"), self.settings.max_payload_bytes)
        audio = audio_io.decode(payload, input_format=config.input_format,
                                sampling_rate=config.sampling_rate, max_seconds=self.settings.max_audio_s)
        plan = self.plan(config, duration=audio.duration)
        decoded = time.perf_counter()
        speech = has_speech(audio.samples, audio.sample_rate)
        transcript = self.asr.transcribe(audio, plan.decode) if speech else Transcript("", [])
        transcribed = time.perf_counter()
        diarization = None  # did not run; an empty Diarization means it found nobody
        if plan.diarize:
            diarization = self.diarizer(
                audio, num_speakers=config.num_speakers, min_speakers=config.min_speakers,
                max_speakers=config.max_speakers) if speech else Diarization()
        finished = time.perf_counter()
        metadata = {
            "duration": round(audio.duration, 3),
            "language": transcript.language,
            "task": config.task,
            "assisted": plan.decode.use_assistant,
            "batch_size": plan.decode.batch_size,
            "chunk_length_s": plan.decode.chunk_length_s,
            "timestamp_granularity": config.timestamp_granularity,
            "diarization": plan.diarize,
            "speech_detected": speech,
            "notes": list(plan.notes),
            "timings": {
                "decode_s": round(decoded - started, 3),
                "asr_s": round(transcribed - decoded, 3),
                "diarization_s": round(finished - transcribed, 3),
                "total_s": round(time.perf_counter() - started, 3),
            },
        }
        return build_response(
            transcript,
            exclusive_turns=diarization.exclusive if diarization is not None else None,
            full_turns=diarization.full if diarization is not None else None,
            output_formats=config.output_formats,
            word_chunks=config.timestamp_granularity == "word",
            metadata=metadata,
        )

    def plan(self, config: InferenceConfig, duration: float) -> Plan:
        """Check the request against what this endpoint has, and decide how to decode
        `duration` seconds of audio."""
        s = self.settings
        batch_size = config.batch_size
        if batch_size > s.max_batch_size:
            if "batch_size" in config.model_fields_set:
                raise ClientError(f"parameter 'batch_size': at most {s.max_batch_size} on this endpoint")
            batch_size = s.max_batch_size  # the default (24) must not refuse requests on a smaller limit
        diarize = self.diarizer is not None and config.diarize is not False
        if self.diarizer is None and (config.wants_speakers or config.diarize or "rttm" in config.output_formats):
            raise ClientError(
                "Speaker diarization was requested (diarize, num_speakers, min_speakers, max_speakers "
                "or rttm) but this endpoint has no DIARIZATION_MODEL configured"
            )
        assisted = config.assisted if config.assisted is not None else s.default_assisted
        notes: list[str] = []
        if assisted is True and self.asr.assistant is None:
            raise ClientError("parameter 'assisted': this endpoint has no ASSISTANT_MODEL configured")
        # "auto": the assistant where it wins (audio that fits one window is decoded at
        # batch 1 anyway); batched windows for longer audio.
        use_assistant = self.asr.assistant is not None and (
            assisted is True or (assisted == "auto" and duration <= s.auto_assist_max_s))
        if use_assistant and config.batch_size != 1:
            notes.append("the assistant runs at batch size 1 (speculative decoding decodes one sequence)")
        decode = DecodeOptions(
            task=config.task,
            language=config.language,
            chunk_length_s=config.chunk_length_s,
            batch_size=1 if use_assistant else batch_size,
            use_assistant=use_assistant,
            prompt=config.prompt,
        )
        return Plan(decode=decode, diarize=diarize, notes=tuple(notes))

    def _warmup(self) -> None:
        """One short decode so the first real request does not pay for lazy initialisation."""
        rng = np.random.default_rng(0)
        samples = (0.1 * rng.standard_normal(16000)).astype(np.float32)
        self.asr.transcribe(Audio(samples), DecodeOptions(batch_size=1))
