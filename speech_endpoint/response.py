"""Transcript (+ diarization) -> the JSON response. Pure: no models, no I/O.

`text`, `chunks` and `speakers` keep the established shape so existing clients work;
`words`, `metadata` and the requested subtitle formats are additions.
"""
from __future__ import annotations

from typing import Any, Sequence

from diarization_utils import assign_speakers, group_utterances, relabel_in_order, speaker_label_map
from speech_endpoint import formats
from speech_endpoint.schema import ResponseJSON, Segment, Transcript, Turn, Utterance, Word
from speech_endpoint.sentences import segments_from_words


def _r(t: float) -> float:
    return round(float(t), 3)


def build_response(transcript: Transcript, *, exclusive_turns: Sequence[Turn] | None = None,
                   full_turns: Sequence[Turn] | None = None, output_formats: Sequence[str] = (),
                   file_id: str = "audio", word_chunks: bool = False, metadata: dict[str, Any] | None = None) -> ResponseJSON:
    """`exclusive_turns` None means diarization did not run; [] means it found nobody.
    `word_chunks` makes `chunks` one entry per word (transformers' `return_timestamps="word"`
    shape) instead of one per sentence."""
    words: list[Word] = list(transcript.words)
    segments: list[Segment] = list(transcript.segments)
    utterances: list[Utterance] = []
    rttm_turns: list[Turn] = list(full_turns or [])
    if exclusive_turns is not None and words:
        # One naming for words and RTTM: SPEAKER_00, 01, ... in order of first appearance
        # in the transcript, then in the full diarization (speakers who said no word).
        raw = assign_speakers(words, exclusive_turns, relabel=False)
        mapping = speaker_label_map(raw, rttm_turns or exclusive_turns)
        words = relabel_in_order(raw, mapping)
        rttm_turns = relabel_in_order(rttm_turns, mapping)
        utterances = group_utterances(words)
        # Sentence chunks must not straddle a speaker change either.
        segments = segments_from_words(words)

    if word_chunks and words:
        segments = [Segment(w.text.strip(), w.start, w.end) for w in words]
    response: ResponseJSON = {
        "text": transcript.text,
        "chunks": [{"text": s.text, "timestamp": [_r(s.start), _r(s.end)]} for s in segments],
        "speakers": [
            {"speaker": u.speaker, "text": u.text, "timestamp": [_r(u.start), _r(u.end)]}
            for u in utterances
        ],
    }
    if words:
        response["words"] = [
            {"word": w.text.strip(), "start": _r(w.start), "end": _r(w.end), "speaker": w.speaker}
            for w in words
        ]
    cues = formats.cues_from(utterances or segments, words=words or None)
    if "srt" in output_formats:
        response["srt"] = formats.to_srt(cues)
    if "vtt" in output_formats:
        response["vtt"] = formats.to_vtt(cues)
    if "rttm" in output_formats:
        response["rttm"] = formats.to_rttm(rttm_turns if words else relabel_in_order(rttm_turns), file_id=file_id)
    if metadata is not None:
        response["metadata"] = metadata
    return response
