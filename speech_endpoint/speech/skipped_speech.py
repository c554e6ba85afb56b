"""Speech that decoding skipped, found and decoded once more.

Decoding without timestamp tokens, Whisper can jump to the end of a window and stop (on a
real meeting it returned 6 words for 25 s of speech), and sequential decoding can loop. The
request's speech-activity pass already says where speech is, and the words' times (cross-
attention alignment) say where words are: a stretch of speech with no word near it was
skipped. Each such stretch is decoded again as windows of its own, cut at pauses, at most
once, and its words are merged in time order. A stretch whose second decoding gives no
words (the drop rules in `guards` refused it, or Whisper says nothing) stays without words,
and the response's notes say so.

Loops of sequential decoding are found by OpenAI's measure (`text.compression_ratio`)
over each stretch of its words up to one Whisper window long: a looping stretch's words are
dropped, which leaves its speech without words, so it is decoded again the same way.
Pure logic: the decoding itself is passed in.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from speech_endpoint.schema import Redecoded, Skip, SpeechActivity, Transcript, Word
from speech_endpoint.text import COMPRESSION_RATIO_THRESHOLD, compression_ratio, join_words
from speech_endpoint.speech.activity import speech_runs, speech_windows

MIN_SPEECH_S = 1.0  # speech in a stretch without words before it is decoded again (docs/benchmarks.md)
REACH_S = 0.5  # speech this close to a word belongs to it: word times are approximate
MAX_PAUSE_S = 2.0  # a longer pause ends a stretch
LOOP_SPAN_S = 30.0  # loops are measured per stretch of words this long (one Whisper window)

__all__ = ["drop_loops", "fill_skipped", "guard", "notes", "wordless_stretches"]


def guard(transcript: Transcript, activity: SpeechActivity, num_samples: int, sample_rate: int,
          decode: Callable[[list[tuple[int, int]]], list[Word]], *, sequential: bool, max_window_s: float) -> Transcript:
    """`transcript` with the speech it skipped decoded once more by `decode` (see
    `fill_skipped`) and, after sequential decoding, without the stretches that loop;
    unchanged (the same object) when there was nothing to do."""
    started = time.perf_counter()
    words, loops = drop_loops(transcript.words) if sequential else (list(transcript.words), [])
    words, skips = fill_skipped(words, activity, num_samples, sample_rate, decode, max_window_s=max_window_s)
    if not (skips or loops):
        return transcript
    return Transcript(join_words(words), words, transcript.language,
                      Redecoded(tuple(skips), tuple(loops), time.perf_counter() - started))


def notes(redecoded: Redecoded) -> list[str]:
    """Plain sentences for the response's `metadata.notes`."""
    out = [f"sequential decoding repeated itself at {a:.1f}-{b:.1f} s: those words were dropped"
           for a, b in redecoded.loops]
    for skip in redecoded.skips:
        what = (f"decoded again: {skip.words} words" if skip.words
                else "decoded again, no words kept (Whisper found none, or the no-speech and loop rules refused them)")
        out.append(f"{skip.speech_s:.1f} s of speech at {skip.start:.1f}-{skip.end:.1f} s got no words; {what}")
    return out


def wordless_stretches(words: Sequence[Word], activity: SpeechActivity, *, min_speech_s: float = MIN_SPEECH_S,
                       reach_s: float = REACH_S, max_pause_s: float = MAX_PAUSE_S) -> list[tuple[int, int]]:
    """[start, end) frame ranges of `activity` whose speech has no word within `reach_s`:
    runs of such speech frames, joined across pauses shorter than `max_pause_s` that no
    word comes near, kept when they hold at least `min_speech_s` of speech."""
    frame_s = activity.frame_s
    near = np.zeros(len(activity.mask), bool)
    for word in words:
        near[max(0, math.floor((word.start - reach_s) / frame_s)):max(0, math.ceil((word.end + reach_s) / frame_s))] = True
    uncovered = np.asarray(activity.mask, bool) & ~near
    stretches: list[list[int]] = []
    for start, end in speech_runs(uncovered):
        previous = stretches[-1] if stretches else None
        if previous and (start - previous[1]) * frame_s < max_pause_s and not near[previous[1]:start].any():
            previous[1] = end
        else:
            stretches.append([start, end])
    min_frames = min_speech_s / frame_s - 1e-9
    return [(s, e) for s, e in stretches if uncovered[s:e].sum() >= min_frames]


def fill_skipped(words: Sequence[Word], activity: SpeechActivity, num_samples: int, sample_rate: int,
                 decode: Callable[[list[tuple[int, int]]], list[Word]], *, max_window_s: float,
                 min_speech_s: float = MIN_SPEECH_S) -> tuple[list[Word], list[Skip]]:
    """`words` with the words of each wordless stretch (`wordless_stretches`) decoded once
    more, in time order. `decode(spans)` decodes [start, end) sample ranges (windows of at
    most `max_window_s`, cut at pauses inside each stretch) and returns their words."""
    stretches = wordless_stretches(words, activity, min_speech_s=min_speech_s)
    if not stretches:
        return list(words), []
    groups = []  # the windows of each stretch
    for start, end in stretches:
        mask = np.zeros(len(activity.mask), bool)
        mask[start:end] = activity.mask[start:end]
        stretch = SpeechActivity(frame_s=activity.frame_s, scores=activity.scores, mask=mask)
        groups.append(speech_windows(stretch, num_samples, sample_rate, max_window_s))
    found = decode([span for group in groups for span in group])
    skips = []
    for (start, end), group in zip(stretches, groups):
        lo, hi = group[0][0] / sample_rate, group[-1][1] / sample_rate
        count = sum(1 for w in found if lo <= (w.start + w.end) / 2 <= hi)
        skips.append(Skip(start * activity.frame_s, end * activity.frame_s,
                          float(activity.mask[start:end].sum()) * activity.frame_s, count))
    return sorted([*words, *found], key=lambda w: (w.start, w.end)), skips


def drop_loops(words: Sequence[Word], span_s: float = LOOP_SPAN_S) -> tuple[list[Word], list[tuple[float, float]]]:
    """`words` without the stretches (consecutive words at most `span_s` long) whose text
    compresses like a loop, and those stretches' (start, end)."""
    kept: list[Word] = []
    loops: list[tuple[float, float]] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and words[j].end - words[i].start <= span_s:
            j += 1
        block = words[i:j]
        if compression_ratio(join_words(block)) > COMPRESSION_RATIO_THRESHOLD:
            loops.append((block[0].start, block[-1].end))
        else:
            kept.extend(block)
        i = j
    return kept, loops
