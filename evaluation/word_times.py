#!/usr/bin/env python
"""How well word times fit the speech: Whisper's own word times against the same words
cut to the speech found (the handler's `fit_to_speech` stage), scored against reference
utterances whose .stm rows are voiced extents, as `evaluation.corpus` writes them.

    ASR_MODEL=.../whisper-base OMP_NUM_THREADS=1 python -m evaluation.word_times \\
        corpus-seed2/manifest.json corpus-seed3/manifest.json [--min-silence 0.1 0.3]

Printed per stage: word time outside the reference speech (% of all word time), reference
utterance starts and ends with a word start (end) within 0.1 s (%), and the mean distance
from an utterance edge to the nearest word boundary of that kind (capped at 1 s).
`--min-silence S` adds rows for words cut only when they cover more than S s of silence.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from evaluation.evaluate import Harness, discover
from evaluation.scoring import read_stm
from speech_endpoint.schema import Word
from speech_endpoint.speech.activity import fit_to_speech

HIT_S = 0.1
CAP_S = 1.0
KEYS = ("word_s", "outside_s", "edges", "starts_hit", "ends_hit", "edge_error_s")


def timing_counts(words: Sequence[Word], utterances: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Sums over one file (they add across files): see the module docstring."""
    counts = dict.fromkeys(KEYS, 0.0)
    for w in words:
        inside = sum(max(0.0, min(b, w.end) - max(a, w.start)) for a, b in utterances)
        counts["word_s"] += w.end - w.start
        counts["outside_s"] += max(0.0, (w.end - w.start) - inside)
    if not words:
        return counts
    for a, b in utterances:
        start_error = min(CAP_S, min(abs(w.start - a) for w in words))
        end_error = min(CAP_S, min(abs(w.end - b) for w in words))
        counts["edges"] += 1
        counts["starts_hit"] += start_error <= HIT_S
        counts["ends_hit"] += end_error <= HIT_S
        counts["edge_error_s"] += start_error + end_error
    return counts


def whisper_words(handler, audio_bytes: bytes):
    """Whisper's own words for the audio (the handler's stages up to `transcribe`, default
    parameters) and the request's speech activity, which `fit_to_speech` cuts them to."""
    data = {"inputs": audio_bytes, "parameters": {}}
    request = handler.check(data)
    audio = handler.decode(data, request)
    activity = handler.speech(audio)
    return handler.transcribe(audio, activity, handler.decode_options(request, audio.duration)), activity


def summary(counts: dict[str, float]) -> dict[str, float]:
    edges = max(counts["edges"], 1)
    return {"outside_pct": 100 * counts["outside_s"] / max(counts["word_s"], 1e-9),
            "starts_pct": 100 * counts["starts_hit"] / edges, "ends_pct": 100 * counts["ends_hit"] / edges,
            "edge_error_ms": 1000 * counts["edge_error_s"] / (2 * edges)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="manifests, folders or audio files with .stm beside them")
    parser.add_argument("--min-silence", type=float, nargs="*", default=[], metavar="S",
                        help="also cut only words covering more than S s of silence")
    args = parser.parse_args(argv)
    items = [i for i in discover(args.inputs) if i.stm]
    h = Harness(diarization_model=None, asr_model=os.environ.get("ASR_MODEL")).handler
    totals = {name: dict.fromkeys(KEYS, 0.0) for name in
              ["Whisper's word times", "cut to the speech found (the handler)"]
              + [f"cut where over {s:g} s of silence" for s in args.min_silence]}
    for item in items:
        raw, activity = whisper_words(h, item.audio.read_bytes())
        utterances = sorted((row[1], row[2]) for row in read_stm(item.stm))
        variants = [raw.words, h.fit_to_speech(raw, activity).words]
        variants += [fit_to_speech(raw.words, activity, s) for s in args.min_silence]
        for name, words in zip(totals, variants):
            for key, value in timing_counts(words, utterances).items():
                totals[name][key] += value
    print(f"{len(items)} files, {int(next(iter(totals.values()))['edges'])} utterances\n")
    print("| word times | outside speech | starts within 0.1 s | ends within 0.1 s | mean edge error |")
    print("|---|---|---|---|---|")
    for name, counts in totals.items():
        s = summary(counts)
        print(f"| {name} | {s['outside_pct']:.1f}% | {s['starts_pct']:.1f}% | {s['ends_pct']:.1f}% "
              f"| {s['edge_error_ms']:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
