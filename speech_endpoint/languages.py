"""Whisper language names and codes ("en", "english", "English", "<|en|>" -> "en"), and the
request's language from several windows' language probabilities."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _tables() -> tuple[frozenset[str], dict[str, str]]:
    # Whisper's own table, so every language the model knows is accepted and no other.
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    return frozenset(LANGUAGES), dict(TO_LANGUAGE_CODE)


def normalize_language(value: str) -> str | None:
    """The Whisper code for a code or name (case-insensitive), or None if unknown."""
    codes, by_name = _tables()
    key = value.strip().lower().removeprefix("<|").removesuffix("|>")
    if key in codes:
        return key
    return by_name.get(key)


def language_name(code: str) -> str | None:
    """Whisper's lower-case English name for a code ("en" -> "english"), or None."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return LANGUAGES.get(code.strip().lower()) if code else None


def most_likely_language(tokens: Sequence[str], probabilities: np.ndarray, weights: Sequence[float]) -> str | None:
    """The language whose probability, averaged over windows (rows of `probabilities`,
    columns in the order of `tokens`, e.g. "<|en|>") with `weights`, is highest."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    mean = (np.asarray(probabilities, dtype=np.float64) * w[:, None]).sum(axis=0)
    return normalize_language(tokens[int(np.argmax(mean))])
