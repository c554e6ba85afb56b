"""Closed word lists that attribution reads, keyed by Whisper language code.

A list is here only for a language where it was measured (docs/benchmarks.md, "Who said
it on real meetings"); any other language, or an unknown one (None), gets an empty list,
so only the language-independent rules (punctuation, pauses, turn geometry) apply to it.
Pure data: no model I/O.
"""
from __future__ import annotations

# Function words and replies that take a capital only at a sentence start.
_SENTENCE_OPENERS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the a an we it its so and but or yes no okay ok yeah right sure well oh that this these those there "
        "they you your he she his her our my what when how why where who which let's if then now do does did is "
        "are was were can could should would will thanks thank good great not just maybe all one two after "
        "before in on at for with from to of".split()
    ),
}


def sentence_openers(language: str | None) -> frozenset[str]:
    """The lower-case sentence openers validated for `language` (a Whisper code such as
    "en"); empty for any other language and for None."""
    return _SENTENCE_OPENERS.get((language or "").strip().lower(), frozenset())
