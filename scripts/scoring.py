"""Transcript scoring shared by the evaluation script, the benchmark and the real-speech
tests: WER with Whisper's English normaliser, and cpWER (speaker-attributed WER).

Reference formats: `.txt` (plain transcript), `.stm` (`file channel speaker start end text`).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import jiwer

SPELLING = Path(__file__).with_name("data") / "english_spelling.json"  # from Whisper's normalizer.json


@lru_cache(maxsize=1)
def normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer(json.loads(SPELLING.read_text()))


def normalize(text: str) -> str:
    return normalizer()(text)


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref.strip():
        return 0.0 if not hyp.strip() else 1.0
    return jiwer.wer(ref, hyp)


def read_stm(path: Path) -> list[tuple[str, float, float, str]]:
    """(speaker, start, end, text) per line; comment lines (;;) skipped."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith(";;"):
            continue
        parts = line.split(maxsplit=5)
        rows.append((parts[2], float(parts[3]), float(parts[4]), parts[5] if len(parts) > 5 else ""))
    return rows


def speaker_texts(rows) -> dict[str, str]:
    """Concatenated text per speaker from (speaker, ..., text) rows."""
    texts: dict[str, list[str]] = {}
    for row in rows:
        texts.setdefault(row[0], []).append(row[-1])
    return {spk: " ".join(parts) for spk, parts in texts.items()}


def cpwer(reference: dict[str, str], hypothesis: dict[str, str]) -> float:
    """Concatenated minimum-permutation WER: each reference speaker's words against one
    hypothesis speaker's words (unmatched speakers against nothing), under the best
    one-to-one mapping (errors add up per pair, so the Hungarian assignment is exact)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    refs = [normalize(v).split() for v in reference.values()]
    hyps = [normalize(v).split() for v in hypothesis.values()]
    size = max(len(refs), len(hyps), 1)
    refs += [[]] * (size - len(refs))
    hyps += [[]] * (size - len(hyps))
    cost = np.array([[_errors(r, h) for h in hyps] for r in refs])
    rows, cols = linear_sum_assignment(cost)
    total_ref = sum(len(r) for r in refs) or 1
    return float(cost[rows, cols].sum()) / total_ref


def _errors(ref: list[str], hyp: list[str]) -> int:
    if not ref or not hyp:
        return len(ref) + len(hyp)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return out.substitutions + out.deletions + out.insertions
