"""A speculative-decoding draft whose output layer covers a few thousand token ids only.

A draft's output layer over Whisper's whole vocabulary (51865 x d_model) is the largest
single cost of its decoding step. `scripts/make_draft.py --vocab K` writes the ids the
draft may propose into its config (`draft_vocab`: the K tokens the teacher writes most
often on the training audio, plus Whisper's special tokens, chosen here); on loading,
`scores.reduce_output` swaps the draft's output layer for one over those rows only. It still returns full-width
logits (the kept ids' scores, -inf elsewhere), so transformers' assisted generation works
unchanged on every version, and every proposal is a full-vocabulary id that the main model
verifies: the output stays exactly that of plain greedy decoding, whatever the draft keeps.
A fill of 51865 floats costs far less than a 51865-row matrix product.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def special_ids(vocab_size: int, eot: int, no_timestamps: int, timestamps: bool) -> list[int]:
    """Whisper's special tokens (end of text through <|notimestamps|>: start of transcript,
    languages, tasks, prompt, no-speech), and with `timestamps` the timestamp tokens after them."""
    last = vocab_size - 1 if timestamps else no_timestamps
    return list(range(eot, last + 1))


def choose(transcripts: Iterable[Iterable[int]], k: int, eot: int, specials: Iterable[int]) -> list[int]:
    """The `k` text tokens (ids below `eot`) the transcripts use most (ties: lower id first),
    with every id in `specials`; sorted. Where the transcripts use fewer than `k` distinct
    tokens, the rest are the lowest unused ids: a byte-pair vocabulary numbers its tokens in
    merge order, roughly by frequency in the tokenizer's own training text, so a draft
    trained on a narrow corpus still covers the commonest words of any other."""
    counts = Counter(int(t) for ids in transcripts for t in ids if int(t) < eot)
    kept = sorted(counts, key=lambda t: (-counts[t], t))[:max(0, k)]
    seen = set(kept)
    kept += [t for t in range(eot) if t not in seen][:max(0, k - len(kept))]
    return sorted(set(kept) | {int(t) for t in specials})
