"""Who said which word: diarization turns joined to Whisper's word timings (the logic
behind the root `diarization_utils.py`, which re-exports it).

Every word goes to the speaker whose turn covers most of it, measured on the full
diarization (overlaps kept), then the rules of `speech_endpoint.attribution.rules` repair
what boundary errors of a few hundred ms do at speaker changes (its docstring gives each
rule and the measured gain that justifies it). Words are then renamed, cut into sentence
segments and grouped into speaker utterances.
Pure logic: no model I/O, no torch.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from speech_endpoint.attribution.rules import RULES, Evidence, RuleSettings, repair
from speech_endpoint.attribution.turns import clean_turns, coverages, max_overlap_speakers
from speech_endpoint.schema import Attribution, Diarization, Turn, Utterance, Word
from speech_endpoint.attribution.segmentation import group_utterances, segments_from_words, word_span

__all__ = [
    "attribute",
    "rename_speakers",
    "assign_speakers",
    "speaker_label_map",
    "relabel_in_order",
]

T = TypeVar("T", Word, Utterance, Turn)


# ---- public API ----------------------------------------------------------------------------


def attribute(words: Sequence[Word], diarization: Diarization | None, *, language: str | None = None) -> Attribution:
    """The product's key step: words with speakers, cut into sentence segments and speaker
    utterances, with the full diarization (and the speakers' vectors) renamed like the words.

    `diarization` None means it did not run (speakers stay None); an empty one means it
    found nobody. Speakers are named SPEAKER_00, 01, ... in order of first appearance in
    the words, then in the full diarization (speakers who said no recognised word).
    `language` (the transcript's Whisper code) picks the word lists the rules may use; a
    language without a validated list, or None, gets only the language-independent rules."""
    words = list(words)
    if diarization is None:
        return Attribution(words=words, segments=segments_from_words(words))
    raw = assign_speakers(words, diarization.exclusive, full_turns=diarization.full, relabel=False,
                          language=language) if words else []
    mapping = speaker_label_map(raw, diarization.full or diarization.exclusive)
    words = relabel_in_order(raw, mapping)
    turns = relabel_in_order(diarization.full, mapping)
    return Attribution(words=words, segments=segments_from_words(words), utterances=group_utterances(words),
                       turns=turns, labels={t: m for t, m in mapping.items()},
                       embeddings={mapping[k]: v for k, v in diarization.embeddings.items() if k in mapping})


def rename_speakers(attribution: Attribution, names: dict[str, str]) -> Attribution:
    """`attribution` with the speakers in `names` (response label -> name) renamed
    everywhere: words, segments' utterances, turns, vectors."""
    if not names:
        return attribution
    rename = lambda label: names.get(label, label)  # noqa: E731
    return replace(attribution,
                   words=[replace(w, speaker=rename(w.speaker)) if w.speaker else w for w in attribution.words],
                   utterances=[replace(u, speaker=rename(u.speaker)) for u in attribution.utterances],
                   turns=[replace(t, speaker=rename(t.speaker)) for t in attribution.turns],
                   labels={raw: rename(label) for raw, label in attribution.labels.items()},
                   embeddings={rename(label): v for label, v in attribution.embeddings.items()})


def assign_speakers(
    words: Sequence[Word],
    turns: Sequence[Turn],
    *,
    full_turns: Sequence[Turn] | None = None,
    relabel: bool = True,
    smooth: bool = True,
    rules: Sequence[str] = RULES,
    language: str | None = None,
    tolerance: float = 0.5,
    sentence_pause: float = 1.0,
    margin: float = 0.25,
) -> list[Word]:
    """Give every word exactly one speaker.

    Same words, same order, same text and timings; only `speaker` is set. `turns` is the
    exclusive diarization (one speaker at a time), `full_turns` the full one (overlaps
    kept; default: `turns`). With `relabel` (default) speakers are named SPEAKER_00,
    SPEAKER_01, ... in order of first appearance in the words, whatever pyannote called
    them; `relabel=False` keeps the diarizer's labels (see `attribute`). A word goes to the
    speaker whose turns cover most of it (rule 0 of the module docstring), or, in a gap or
    with zero length, to the nearest turn; a word with start > end counts as a point
    midway. Turns may be unsorted and may overlap.

    With `smooth`, `rules` (all of `rules.RULES` by default) repair boundary
    errors; `smooth=False` is plain maximum overlap. `language` (a Whisper code) picks the
    word lists the rules may use (`speech_endpoint.text`): None or a language without
    a list gets only the language-independent rules. No usable turns (none, or none with
    finite times): every word gets speaker None, leaving the caller to decide (e.g. report
    no speakers).
    """
    clean = clean_turns(turns)
    if not clean:
        return [replace(w, speaker=None) for w in words]
    if not words:
        return []
    cover = coverages(clean)
    full_clean = clean_turns(full_turns) if full_turns else clean
    full = coverages(full_clean)
    spans = [word_span(w) for w in words]
    labels = max_overlap_speakers(spans, cover, full)
    if smooth:
        repair(labels, Evidence(words, spans, cover, full, full_clean),
               RuleSettings(rules=rules, tolerance=tolerance, sentence_pause=sentence_pause, margin=margin,
                            language=language))
    out = [replace(w, speaker=label) for w, label in zip(words, labels)]
    return relabel_in_order(out) if relabel else out


def speaker_label_map(*sequences: Iterable[Word | Utterance | Turn]) -> dict[str, str]:
    """Map the diarizer's labels to SPEAKER_00, SPEAKER_01, ... in order of first
    appearance: across `sequences` in the order given, each in its own order (pass the
    words first, then the turns, so speakers who said no recognised word are numbered
    after those who did). None speakers are skipped. Stable labels within a request make
    the output readable whatever numbering pyannote used internally."""
    mapping: dict[str, str] = {}
    for sequence in sequences:
        for item in sequence:
            speaker = item.speaker
            if speaker is not None and speaker not in mapping:
                mapping[speaker] = f"SPEAKER_{len(mapping):02d}"
    return mapping


def relabel_in_order(items: Sequence[T], mapping: dict[str, str] | None = None) -> list[T]:
    """`items` (words, utterances or turns) with speakers renamed by `mapping` (default:
    `speaker_label_map(items)`). Labels missing from a given mapping get the next free
    numbers in order of appearance, so nothing is left with a raw pyannote label. Use one
    mapping for words and turns to keep e.g. RTTM output consistent with the transcript."""
    mapping = dict(mapping) if mapping is not None else speaker_label_map(items)
    for item in items:
        if item.speaker is not None and item.speaker not in mapping:
            mapping[item.speaker] = f"SPEAKER_{len(mapping):02d}"
    return [
        item if item.speaker is None else replace(item, speaker=mapping[item.speaker])
        for item in items
    ]
