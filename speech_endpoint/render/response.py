"""The JSON response, rendered from the attributed transcript. Pure: no models, no I/O,
no decisions about speakers (`attribution.speakers.attribute` made them).

`text`, `chunks` and `speakers` keep the established shape so existing clients work;
`words`, `metadata` and the requested subtitle formats are additions.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from speech_endpoint.render import formats
from speech_endpoint.schema import Attribution, MetadataJSON, ResponseJSON, Segment, Word, WordJSON


def _r(t: float) -> float:
    return round(float(t), 3)


def _word(w: Word) -> WordJSON:
    out: WordJSON = {"word": w.text.strip(), "start": _r(w.start), "end": _r(w.end), "speaker": w.speaker}
    if w.probability is not None:
        out["probability"] = _r(w.probability)
    return out


def render(text: str, attribution: Attribution, *, output_formats: Sequence[str] = (), word_chunks: bool = False,
           metadata: MetadataJSON | None = None, file_id: str = "audio", speaker_embeddings: bool = False) -> ResponseJSON:
    """`word_chunks` makes `chunks` one entry per word (transformers' `return_timestamps="word"`
    shape) instead of one per sentence; `speaker_embeddings` adds each speaker's vector."""
    words, utterances = attribution.words, attribution.utterances
    segments = attribution.segments
    if word_chunks and words:
        segments = [Segment(w.text.strip(), w.start, w.end) for w in words]
    response: ResponseJSON = {
        "text": text,
        "chunks": [{"text": s.text, "timestamp": [_r(s.start), _r(s.end)]} for s in segments],
        "speakers": [
            {"speaker": u.speaker, "text": u.text, "timestamp": [_r(u.start), _r(u.end)]}
            for u in utterances
        ],
    }
    if words:
        response["words"] = [_word(w) for w in words]
    cues = formats.cues_from(utterances or segments, words=words or None)
    if "srt" in output_formats:
        response["srt"] = formats.to_srt(cues)
    if "vtt" in output_formats:
        response["vtt"] = formats.to_vtt(cues)
    if "rttm" in output_formats:
        response["rttm"] = formats.to_rttm(attribution.turns, file_id=file_id)
    if speaker_embeddings:
        response["speaker_embeddings"] = {label: [round(x, 6) for x in vector]
                                          for label, vector in attribution.embeddings.items()}
    if metadata is not None:
        response["metadata"] = metadata
    return response


class Stopwatch:
    """Seconds since the previous call (the first: since it was made), for `metadata.timings`."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()

    def __call__(self) -> float:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return elapsed

    def total(self) -> float:
        return time.perf_counter() - self.started


def legacy_timings(timings: dict[str, float], redecode_s: float) -> dict[str, float]:
    """The first timing keys, which clients read, from the stages' own: `asr_s` is
    references, speech detection and transcription together, `diarization_s` the
    diarization pipeline, attribution and naming, `redecode_s` the part of transcription
    that decoded skipped speech again."""
    return {"asr_s": sum(timings.get(k, 0.0) for k in ("references_s", "speech_detection_s", "transcription_s")),
            "redecode_s": redecode_s,
            "diarization_s": timings.get("diarization_pipeline_s", 0.0) + timings.get("attribution_s", 0.0)}
