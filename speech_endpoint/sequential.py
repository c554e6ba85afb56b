"""OpenAI's sequential long-form decoding (`chunk_length_s` = 0), through the transformers
ASR pipeline: timestamp tokens, each 30 s window starting where the last segment ended,
word times from the pipeline. Model I/O only; the word records are repaired in
`speech_endpoint.sentences` (`decoded_once`: no word read twice or from the final sliver;
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
from speech_endpoint.alignment import split_words
from speech_endpoint.confidence import TokenProbabilities, word_probability
from speech_endpoint.schema import Audio, Transcript, Word
from speech_endpoint.sentences import decoded_once, join_words, words_from_chunks


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
