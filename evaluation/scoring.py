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
    return cpwer_details(reference, hypothesis)["cpwer"]


def _errors(ref: list[str], hyp: list[str]) -> int:
    if not ref or not hyp:
        return len(ref) + len(hyp)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return out.substitutions + out.deletions + out.insertions


# ---- counts for corpus-level scores, speaker mapping, diarization metrics -----------------
# (WER and cpWER above are per-file ratios; overall scores add up errors and reference
# words over files, so the functions below return the counts.)


def wer_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words) after normalisation; overall WER = sum(errors) / sum(words)."""
    ref, hyp = normalize(reference).split(), normalize(hypothesis).split()
    return _errors(ref, hyp), len(ref)


def permutation_errors(reference: dict[str, list], hypothesis: dict[str, list], errors) -> dict:
    """The best one-to-one assignment of hypothesis speakers to reference speakers, each
    pair scored by `errors(ref_items, hyp_items)` (speakers left over are compared with
    nothing): {"rate", "errors", "ref_words", "mapping"} (mapping: None = matched to nothing).
    The errors add up per pair, so the Hungarian assignment is exact."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    ref_names, hyp_names = list(reference), list(hypothesis)
    size = max(len(ref_names), len(hyp_names), 1)
    refs = list(reference.values()) + [[]] * (size - len(ref_names))
    hyps = list(hypothesis.values()) + [[]] * (size - len(hyp_names))
    cost = np.array([[errors(r, h) for h in hyps] for r in refs])
    rows, cols = linear_sum_assignment(cost)
    total = int(cost[rows, cols].sum())
    ref_words = sum(len(r) for r in refs)
    mapping = {ref_names[r]: (hyp_names[c] if c < len(hyp_names) else None)
               for r, c in zip(rows, cols) if r < len(ref_names)}
    return {"rate": total / (ref_words or 1), "errors": total, "ref_words": ref_words, "mapping": mapping}


def cpwer_details(reference: dict[str, str], hypothesis: dict[str, str]) -> dict:
    """cpWER with its parts: {"cpwer", "errors", "ref_words", "mapping"} where `mapping`
    sends each reference speaker to its hypothesis speaker under the best one-to-one
    assignment (None: matched to nothing)."""
    result = permutation_errors({k: normalize(v).split() for k, v in reference.items()},
                                {k: normalize(v).split() for k, v in hypothesis.items()}, _errors)
    return {"cpwer": result.pop("rate"), **result}


def reference_speaker_at(rows, start: float, end: float) -> str | None:
    """The speaker of the (speaker, start, end, ...) row overlapping [start, end] most;
    with no overlap, of the nearest row (None when there are no rows). A zero-length
    word inside a row counts as overlapping it."""
    best, best_key = None, None
    for row in rows:
        speaker, row_start, row_end = row[0], float(row[1]), float(row[2])
        overlap = min(end, row_end) - max(start, row_start)
        key = (max(overlap, 0.0), min(overlap, 0.0))  # most overlap, else smallest gap
        if best_key is None or key > best_key:
            best, best_key = speaker, key
    return best


def _plain_token(text: str) -> str:
    """A word compared loosely for alignment: lower case, letters/digits/apostrophes."""
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "'")


def speaker_mismatches(words, rows, mapping: dict[str, str | None]) -> list[dict]:
    """Hypothesis words given to the wrong speaker.

    `words`: dicts with "word", "start", "end", "speaker" (the response's `words`);
    `rows`: the reference as (speaker, start, end, text) rows (`read_stm`), or
    (speaker, start, end) turns; `mapping`: reference -> hypothesis speaker
    (`cpwer_details`). With texts, hypothesis words are aligned to reference words
    (jiwer, on lower-cased words without punctuation) and each matched or substituted word
    is checked against the speaker of the reference word it aligns with (`"by": "text"`),
    which is immune to word-timing errors; inserted words, and every word when the
    reference has no text, are checked against the reference speaker at their time
    (`"by": "time"`). Each mismatch names the word, its times, the reference speaker and
    the reference speaker the hypothesis label stands for (None: matched to nobody)."""
    to_ref = {hyp: ref for ref, hyp in mapping.items() if hyp is not None}
    rows = sorted(rows, key=lambda r: (float(r[1]), float(r[2])))
    truth: list[tuple[str | None, str]] = [(None, "time")] * len(words)
    ref_tokens = [(row[0], token) for row in rows if len(row) > 3
                  for token in (_plain_token(t) for t in str(row[3]).split()) if token]
    hyp_index = [i for i, w in enumerate(words) if _plain_token(str(w["word"]))]
    if ref_tokens and hyp_index:
        hyp_tokens = [_plain_token(str(words[i]["word"])) for i in hyp_index]
        out = jiwer.process_words(" ".join(t for _, t in ref_tokens), " ".join(hyp_tokens))
        for chunk in out.alignments[0]:
            if chunk.type in ("equal", "substitute"):
                for k in range(chunk.hyp_end_idx - chunk.hyp_start_idx):
                    truth[hyp_index[chunk.hyp_start_idx + k]] = (ref_tokens[chunk.ref_start_idx + k][0], "text")
    mismatches = []
    for i, word in enumerate(words):
        start, end = float(word["start"]), float(word["end"])
        reference, by = truth[i]
        if reference is None:
            reference = reference_speaker_at(rows, start, end)
        said = to_ref.get(word.get("speaker"))
        if reference is not None and said != reference:
            mismatches.append({"index": i, "word": word["word"], "start": start, "end": end, "by": by,
                               "reference": reference, "hypothesis": said, "label": word.get("speaker")})
    return mismatches


def label_mapping_by_overlap(source_rows, target_rows) -> dict[str, str]:
    """Map the speaker labels of `source_rows` to those of `target_rows` (both
    (speaker, start, end, ...) rows, e.g. RTTM turns and STM rows of one recording) by
    the one-to-one assignment that maximises overlapping time. Unmatched labels are left
    out."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    sources = list(dict.fromkeys(r[0] for r in source_rows))
    targets = list(dict.fromkeys(r[0] for r in target_rows))
    if not sources or not targets:
        return {}
    overlap = np.zeros((len(sources), len(targets)))
    for a in source_rows:
        for b in target_rows:
            seconds = min(float(a[2]), float(b[2])) - max(float(a[1]), float(b[1]))
            if seconds > 0:
                overlap[sources.index(a[0]), targets.index(b[0])] += seconds
    rows, cols = linear_sum_assignment(-overlap)
    return {sources[r]: targets[c] for r, c in zip(rows, cols) if overlap[r, c] > 0}


def diarization_scores(reference_turns, hypothesis_turns, *, duration: float, collar: float = 0.0) -> dict:
    """DER and JER (pyannote.metrics) of hypothesis against reference turns, each a list of
    (start, end, speaker), scored over [0, duration] with overlapped speech included.

    `collar` is the md-eval (NIST) convention: seconds forgiven on EACH side of every
    reference boundary, i.e. pyannote.metrics' `collar=2*collar`. Returns der, jer and
    their components (sum them over files for overall scores: DER = (missed + false
    alarm + confusion) / total; JER = speaker error / speaker count)."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    def annotation(turns):
        result = Annotation(uri="file")
        for i, (start, end, speaker) in enumerate(turns):
            if end > start:
                result[Segment(float(start), float(end)), i] = str(speaker)
        return result

    ref, hyp = annotation(reference_turns), annotation(hypothesis_turns)
    uem = Timeline([Segment(0.0, float(duration))], uri="file")
    der = DiarizationErrorRate(collar=2 * collar, skip_overlap=False)
    jer = JaccardErrorRate(collar=2 * collar, skip_overlap=False)
    d = der(ref, hyp, uem=uem, detailed=True)
    try:
        j = jer(ref, hyp, uem=uem, detailed=True)
    except ZeroDivisionError:  # older pyannote.metrics (platform stack) when no reference speech is left
        j = {"jaccard error rate": 1.0, "speaker count": 0.0, "speaker error": 0.0}  # what newer ones return
    return {
        "der": float(d["diarization error rate"]),
        "jer": float(j["jaccard error rate"]),
        "total": float(d["total"]),
        "missed": float(d["missed detection"]),
        "false_alarm": float(d["false alarm"]),
        "confusion": float(d["confusion"]),
        "speaker_count": float(j["speaker count"]),
        "speaker_error": float(j["speaker error"]),
    }


def combine_diarization_scores(parts) -> dict:
    """Overall DER/JER from per-file `diarization_scores` results."""
    parts = list(parts)
    keys = ("total", "missed", "false_alarm", "confusion", "speaker_count", "speaker_error")
    sums = {k: sum(p[k] for p in parts) for k in keys}
    errors = sums["missed"] + sums["false_alarm"] + sums["confusion"]
    sums["der"] = errors / sums["total"] if sums["total"] else (0.0 if errors == 0 else 1.0)
    sums["jer"] = sums["speaker_error"] / sums["speaker_count"] if sums["speaker_count"] else 0.0
    return sums
