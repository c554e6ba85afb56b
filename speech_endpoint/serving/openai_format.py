"""OpenAI's audio response bodies built from the handler's result. Pure: no web framework.

`verbose_json(result, task, granularities)` follows OpenAI's `TranscriptionVerbose` (and
`TranslationVerbose`), filled from what the handler measured; where the handler has no
such number, the field holds a documented neutral value instead of an invented one:

  task, duration, text  the request's task, metadata.duration, the transcript
  language              the language's English name, lower case ("english"), as OpenAI
                        reports it: the given or detected source language of a
                        transcription; "english" for a translation (OpenAI reports the
                        output's language); "" when unknown (no speech and none given)
  segments              the handler's sentence `chunks`, when segment timestamps are asked
                        for or no granularity is given:
    id, start, end, text  exact
    speaker               who said it, when diarization ran or the call was split by
                          channel (multichannel; this endpoint's addition)
    temperature           0.0: the handler always decodes greedily, i.e. at temperature 0
    compression_ratio     computed as Whisper does: utf-8 bytes / zlib-compressed bytes
    avg_logprob           mean log probability of the segment's words when the words carry
                          `probability` (per word; OpenAI's is per token); 0.0 otherwise
                          (not measured)
    no_speech_prob        0.0: segments exist only where the speech detector found speech
                          and Whisper emitted words; no per-segment probability is computed
    seek                  the segment's start in Whisper's 10 ms mel frames (OpenAI's is the
                          start of the 30 s window it was decoded in; this endpoint cuts its
                          windows at pauses and does not report them)
    tokens                []: the handler does not return token ids
  words                 [{word, start, end}] when word timestamps are asked for, plus
                        `speaker` when diarization ran (or multichannel) and `probability`
                        when the handler's words carry it
  usage                 {"type": "duration", "seconds": duration} (transcriptions)
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from speech_endpoint.whisper.languages import language_name
from speech_endpoint.text import compression_ratio

MEL_FRAMES_PER_SECOND = 100  # Whisper's hop of 160 samples at 16 kHz
NOT_MEASURED = 0.0


def reported_language(code: str | None, task: str) -> str:
    if task == "translate":
        return "english"
    return (language_name(code) or "") if code else ""


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def _speaker_of(start: float, end: float, utterances: Sequence[Mapping[str, Any]]) -> str | None:
    """The speaker whose utterance covers the segment most (segments never cross a speaker
    change, so this is the utterance holding it); nearest midpoint breaks ties."""
    middle = (start + end) / 2
    best, best_key = None, None
    for utterance in utterances:
        u_start, u_end = utterance["timestamp"]
        key = (_overlap(start, end, u_start, u_end), -max(u_start - middle, middle - u_end, 0.0))
        if best_key is None or key > best_key:
            best, best_key = utterance.get("speaker"), key
    return best


def _avg_logprob(start: float, end: float, words: Sequence[Mapping[str, Any]]) -> float:
    probabilities = [float(w["probability"]) for w in words
                     if w.get("probability") is not None and start <= (w["start"] + w["end"]) / 2 <= end]
    if not probabilities:
        return NOT_MEASURED
    return round(sum(math.log(max(p, 1e-12)) for p in probabilities) / len(probabilities), 4)


def segments(result: Mapping[str, Any], diarized: bool) -> list[dict[str, Any]]:
    words = result.get("words") or []
    utterances = result.get("speakers") or []
    out = []
    for index, chunk in enumerate(result.get("chunks") or []):
        start, end = (float(t) for t in chunk["timestamp"])
        text = chunk["text"]
        segment: dict[str, Any] = {
            "id": index, "seek": int(round(start * MEL_FRAMES_PER_SECOND)), "start": start, "end": end,
            "text": text, "tokens": [], "temperature": 0.0, "avg_logprob": _avg_logprob(start, end, words),
            "compression_ratio": round(compression_ratio(text.strip()), 4), "no_speech_prob": NOT_MEASURED,
        }
        if diarized and utterances:
            segment["speaker"] = _speaker_of(start, end, utterances)
        out.append(segment)
    return out


def word_entries(result: Mapping[str, Any], diarized: bool) -> list[dict[str, Any]]:
    out = []
    for word in result.get("words") or []:
        entry: dict[str, Any] = {"word": word["word"], "start": word["start"], "end": word["end"]}
        if diarized and word.get("speaker") is not None:
            entry["speaker"] = word["speaker"]
        if word.get("probability") is not None:
            entry["probability"] = word["probability"]
        out.append(entry)
    return out


def verbose_json(result: Mapping[str, Any], task: str, granularities: Collection[str]) -> dict[str, Any]:
    metadata = result.get("metadata") or {}
    duration = float(metadata.get("duration") or 0.0)
    # speakers come from the diarization or, for a multichannel call, from the channels
    diarized = bool(metadata.get("diarization", bool(result.get("speakers"))) or metadata.get("multichannel"))
    body: dict[str, Any] = {"task": task, "language": reported_language(metadata.get("language"), task),
                            "duration": duration, "text": result.get("text") or ""}
    if "segment" in granularities or not granularities:
        body["segments"] = segments(result, diarized)
    if "word" in granularities:
        body["words"] = word_entries(result, diarized)
    if task == "transcribe":
        body["usage"] = {"type": "duration", "seconds": duration}
    return body
