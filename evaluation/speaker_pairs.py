"""Known speakers on real voices, the pure part: who speaks alone where (gold turns), which
diarized speaker is whose, and the rates and score distributions that
`evaluation.known_speakers_study` reports. References and targets are keyed "person@meeting"."""
from __future__ import annotations

import numpy as np

from speech_endpoint.schema import Turn
from speech_endpoint.attribution.speaker_names import cosine_matrix, match_known_speakers

GRID = 0.01  # seconds: the resolution of "speaking alone"


def alone_spans(turns: list[Turn], duration: float) -> dict[str, list[tuple[float, float]]]:
    """Per speaker, the spans where they and nobody else speak (gold turns)."""
    n = int(round(duration / GRID))
    active = {}
    for t in turns:
        active.setdefault(t.speaker, np.zeros(n, bool))[int(t.start / GRID):int(np.ceil(t.end / GRID))] = True
    count = sum(a.astype(int) for a in active.values()) if active else np.zeros(n, int)
    spans = {}
    for speaker, mask in active.items():
        alone = np.concatenate([[False], mask & (count == 1), [False]]).astype(int)
        edges = np.flatnonzero(np.diff(alone))
        spans[speaker] = [(s * GRID, e * GRID) for s, e in zip(edges[::2], edges[1::2])]
    return spans


def take(spans: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    """The first `seconds` of `spans`."""
    out, left = [], seconds
    for start, end in spans:
        if left <= 0:
            break
        out.append((start, min(end, start + left)))
        left -= out[-1][1] - start
    return out


def total(spans) -> float:
    return sum(e - s for s, e in spans)


def series(meeting: str) -> str:
    return meeting[:-1]  # EN2006a -> EN2006


def majority_speakers(turns: list[Turn], gold: list[Turn]) -> dict[str, str]:
    """Each diarized speaker -> the gold speaker with most of its time."""
    overlap: dict[str, dict[str, float]] = {}
    for t in turns:
        for g in gold:
            shared = min(t.end, g.end) - max(t.start, g.start)
            if shared > 0:
                row = overlap.setdefault(t.speaker, {})
                row[g.speaker] = row.get(g.speaker, 0.0) + shared
    return {label: max(row, key=row.get) for label, row in overlap.items()}


def quantiles(values) -> str:
    v = np.asarray(sorted(values), float)
    if not len(v):
        return "n=0"
    q = np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9])
    return (f"n={len(v)}  min {v[0]:.3f}  p10 {q[0]:.3f}  p25 {q[1]:.3f}  median {q[2]:.3f}  "
            f"p75 {q[3]:.3f}  p90 {q[4]:.3f}  max {v[-1]:.3f}")


KINDS = ("same", "absent", "misplaced")  # end to end: see `kind`


def kind(person: str, label: str, clip: dict) -> str:
    """What a reference of `person` meets in diarized speaker `label` of `clip`: "same"
    (the person has most of its time), "absent" (an impostor: the person does not speak in
    the clip) or "misplaced" (the person speaks in the clip, but this is mostly another's)."""
    if clip["owner"].get(label) == person:
        return "same"
    return "misplaced" if person in clip["speakers"] else "absent"


def named_rates(e2e: list[dict], refs: dict, threshold: float, single: bool) -> dict:
    """True pairs named, and names on speakers mostly someone else's, at `threshold`:
    {"true", "named", "no_own_speaker", "absent", "misplaced"}."""
    out = {"true": 0, "named": 0, "no_own_speaker": 0, "absent": 0, "misplaced": 0}
    for clip in e2e:
        own = {k: refs[k] for k in clip["references"]}
        groups = [{k: v} for k, v in own.items()] if single else [own]
        for m in (m for g in groups for m in match_known_speakers(g, clip["embeddings"], threshold)):
            person = m.name.split("@")[0]
            if person in clip["present"]:
                out["true"] += 1
                out["named"] += m.speaker is not None and clip["owner"].get(m.speaker) == person
                out["no_own_speaker"] += person not in clip["owner"].values()
            if m.speaker is not None and (k := kind(person, m.speaker, clip)) != "same":
                out[k] += 1
    return out


def e2e_scores(e2e: list[dict], refs: dict) -> dict[str, list[tuple[str, str, float]]]:
    """(reference, "meeting speaker", similarity) by `kind`; speakers without a usable
    vector (the pipeline gives zeros or NaN) are left out."""
    out = {k: [] for k in KINDS}
    for clip in e2e:
        usable = {k: v for k, v in clip["embeddings"].items() if np.all(np.isfinite(v)) and np.any(v)}
        for name in clip["references"]:
            for label, vector in usable.items():
                s = float(cosine_matrix(np.asarray([refs[name]]), np.asarray([vector]))[0, 0])
                out[kind(name.split("@")[0], label, clip)].append((name, f"{clip['meeting']} {label}", s))
    return out
