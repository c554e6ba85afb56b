"""Whisper language names and codes ("en", "english", "English", "<|en|>" -> "en")."""
from __future__ import annotations

from functools import lru_cache


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
