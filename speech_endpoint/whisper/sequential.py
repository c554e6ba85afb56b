"""OpenAI's sequential long-form decoding (`chunk_length_s` = 0), through the transformers
ASR pipeline: timestamp tokens, each 30 s window starting where the last segment ended,
word times from the pipeline. The pipeline's word chunks are repaired
here, its only user (`decoded_once`: no word read twice or from the final sliver;
`words_from_chunks`: times).

Word probabilities come from the scores of that same decoding (a `TokenProbabilities`
processor): the tokens of each window's run are split into words as the windowed
strategy splits them and matched, in order and by text, to the pipeline's words.
"""
from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Any

import numpy as np
from transformers import LogitsProcessorList

from speech_endpoint import compat
from speech_endpoint.whisper.alignment import split_words
from speech_endpoint.whisper.scores import TokenProbabilities, word_probability
from speech_endpoint.schema import Audio, Transcript, Word
from speech_endpoint.text import finite, join_words


def transcribe_sequential(pipe, audio: Audio, generate_kwargs: dict[str, Any], tokenizer, eot: int,
                          language: str | None) -> Transcript:
    recorder = TokenProbabilities(eot)
    inputs = {"raw": np.asarray(audio.samples, dtype=np.float32), "sampling_rate": audio.sample_rate}
    with compat.quiet_asr_pipeline():
        out = pipe(inputs, return_timestamps="word", batch_size=1,
                   generate_kwargs={**generate_kwargs, "logits_processor": LogitsProcessorList([recorder])})
    chunks = out.get("chunks") or []
    once = decoded_once(chunks, duration=audio.duration)
    words = words_from_chunks(once, duration=audio.duration)
    text = (out.get("text") or "").strip() if len(once) == len(chunks) else join_words(words)
    scored = [word for run in range(len(recorder.runs)) for segment in recorder.segments(0, run)
              for word in _scored_words(tokenizer, segment, language)]
    return Transcript(text, _with_probabilities(words, scored), language)


def _scored_words(tokenizer, tokens: list[tuple[int, float]], language: str | None) -> list[tuple[str, float]]:
    ids = [t for t, _ in tokens]
    probs = [p for _, p in tokens]
    out, index = [], 0
    for text, toks in split_words(tokenizer, ids, language):
        out.append((text.strip(), word_probability(probs[index:index + len(toks)])))
        index += len(toks)
    return [(text, p) for text, p in out if text]


def _with_probabilities(words: list[Word], scored: list[tuple[str, float]]) -> list[Word]:
    """`words` with the probability of the scored word they match (same text, in order)."""
    matcher = difflib.SequenceMatcher(a=[w.text.strip() for w in words], b=[t for t, _ in scored], autojunk=False)
    out = list(words)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            out[block.a + k] = replace(out[block.a + k], probability=scored[block.b + k][1])
    return out


REDECODE_S = 1.0  # a word starting this much before the previous one: a window decoded again
END_SLIVER_S = 0.04  # no word starts this close to the end of the audio


def _chunk_fields(chunk: object) -> tuple[str, float | None, float | None]:
    """A pipeline word chunk's text, start and end (None where missing or not finite)."""
    stamp = chunk.get("timestamp") if isinstance(chunk, dict) else None
    if not isinstance(stamp, (tuple, list)):
        stamp = (None, None)
    start = finite(stamp[0]) if len(stamp) > 0 else None
    end = finite(stamp[1]) if len(stamp) > 1 else None
    text = chunk.get("text", "") if isinstance(chunk, dict) else ""
    return (text if isinstance(text, str) else str(text)), start, end


def decoded_once(chunks: Sequence[dict], *, duration: float) -> list[dict]:
    """The pipeline's word chunks without what its long-form decoding read twice or out of
    nothing. When a 30 s window's last segment is incomplete, decoding resumes at that
    segment's start and transformers 5 keeps both readings: where the start times jump
    back by more than `REDECODE_S`, the later reading replaces the earlier words from that
    time on (as in OpenAI's algorithm). The sliver of audio after the last segment is
    decoded too, and transformers 4.51 fills it with a loop ("I don't know." 50 times in
    the last 20 ms of the 30.0 s telephone sample): words starting within `END_SLIVER_S`
    of the end go."""
    total = finite(duration)
    kept: list[tuple[float | None, dict]] = []
    last = None  # the latest kept start
    for chunk in chunks:
        _, start, _ = _chunk_fields(chunk)
        if start is not None:
            if total is not None and start >= total - END_SLIVER_S:
                continue
            if last is not None and start < last - REDECODE_S:
                kept = kept[:next(i for i, (s, _) in enumerate(kept) if s is not None and s >= start)]
            last = start
        kept.append((start, chunk))
    return [chunk for _, chunk in kept]


def words_from_chunks(chunks: Sequence[dict], *, duration: float) -> list[Word]:
    """Word records from the pipeline's word-level chunks
    (`{"text": " Hello", "timestamp": (start, end)}`).

    The pipeline leaves the last word's end (and, at 30 s window seams, other ends or
    starts) as None, and timestamps may step backwards slightly at those seams. Repairs,
    in order: a missing end becomes the next known timestamp (the next word's start,
    else `duration`); a missing start becomes the previous word's end (0 for the first);
    everything is clamped to [0, duration]; starts are made non-decreasing; each end is
    at least its start. Every chunk becomes one word, text untouched.
    """
    total = finite(duration)
    total = max(total, 0.0) if total is not None else 0.0
    raw = [_chunk_fields(chunk) for chunk in chunks]

    # Next known time after each word, for filling missing ends (scan from the right).
    next_known: list[float] = [total] * len(raw)
    following = total
    for i in range(len(raw) - 1, -1, -1):
        next_known[i] = following
        _, start, end = raw[i]
        if start is not None:
            following = start
        elif end is not None:
            following = end

    words: list[Word] = []
    previous_start, previous_end = 0.0, 0.0
    for i, (text, start, end) in enumerate(raw):
        if start is None:
            start = previous_end
        if end is None:
            end = max(next_known[i], start)
        start = min(max(start, 0.0), total)
        end = min(max(end, 0.0), total)
        start = max(start, previous_start)
        end = max(end, start)
        words.append(Word(text=text, start=start, end=end))
        previous_start, previous_end = start, end
    return words
