"""Text rules below every stage: punctuation, word lists keyed by language, joining words
(and `finite`, for the times that come with Whisper's text).

Whisper writes punctuation and capitals; the stages above read sentence and clause ends
from them (word timing, attribution, segmentation) and sentence openers where a list was
validated. A list is here only for a language where it was measured (docs/benchmarks.md,
"Who said it on real meetings"); any other language, or an unknown one (None), gets an
empty list, so only the language-independent rules (punctuation, pauses, turn geometry)
apply to it. Pure logic: no model I/O.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from speech_endpoint.schema import Word

# Sentence-final marks: Latin, CJK (full/half width), Arabic, Devanagari, Armenian, Ethiopic.
SENTENCE_END = frozenset(".?!…。？！｡؟۔।॥։።")
# Marks after which a long segment is preferably cut (clause boundaries).
CLAUSE_END = frozenset(",;:，、；：،")
# Closing quotes/brackets that may follow the final mark: `He said "no."` ends a sentence.
_CLOSERS = "\"'”’»)]}」』）】"
_OPENERS = "\"'“‘«([{"
# Abbreviations whose dot does not end a sentence (lower-case, with the dot).
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "approx."}
)

# Function words and replies that take a capital only at a sentence start.
_SENTENCE_OPENERS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the a an we it its so and but or yes no okay ok yeah right sure well oh that this these those there "
        "they you your he she his her our my what when how why where who which let's if then now do does did is "
        "are was were can could should would will thanks thank good great not just maybe all one two after "
        "before in on at for with from to of".split()
    ),
}

# A text whose UTF-8 compresses by more than this is a loop (OpenAI Whisper's measure).
COMPRESSION_RATIO_THRESHOLD = 2.4


def sentence_openers(language: str | None) -> frozenset[str]:
    """The lower-case sentence openers validated for `language` (a Whisper code such as
    "en"); empty for any other language and for None."""
    return _SENTENCE_OPENERS.get((language or "").strip().lower(), frozenset())


def join_words(words: Sequence[Word]) -> str:
    """The words' text joined as Whisper tokens are: each word carries its own leading
    space (none in CJK), so plain concatenation is right; the result is stripped."""
    return "".join(w.text for w in words).strip()


def is_sentence_end(text: str) -> bool:
    """Whether a word ends a sentence (`done.`, `why?"`, `好。`), ignoring `Mr.`-style
    abbreviations whose dot is not a full stop."""
    stripped = text.strip().rstrip(_CLOSERS)
    if not stripped or stripped[-1] not in SENTENCE_END:
        return False
    return stripped.lower() not in _ABBREVIATIONS


def is_clause_end(text: str) -> bool:
    """Whether a word ends with a comma-like mark: the preferred place to cut a sentence
    that is too long."""
    stripped = text.strip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in CLAUSE_END


def starts_sentence(text: str, openers: frozenset[str]) -> bool:
    """Whether a word is a capitalised function word from `openers` (lower case; the
    language's list from `sentence_openers`): "The", "We", "So" are written with a
    capital only at the start of a sentence. Whisper keeps that capital where it drops the
    full stop before it, typically when two speakers overlap ("... desktop users The page
    load time ..."). "I" and names are never in a list; with no list, punctuation alone
    decides."""
    stripped = text.strip().lstrip(_OPENERS).rstrip(_CLOSERS + ".,;:?!")
    return stripped[:1].isupper() and stripped.lower() in openers


def compression_ratio(text: str) -> float:
    """UTF-8 bytes over zlib-compressed bytes, as Whisper computes it (0 for no text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def finite(x: object) -> float | None:
    """`x` as a float, or None when it is missing or not a finite number (a time read from
    Whisper's output, which may be None or NaN)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
