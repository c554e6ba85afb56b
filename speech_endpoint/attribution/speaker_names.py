"""Known speakers: names for diarized speakers whose voice matches a reference.

Each reference (a name and a speaker vector, from a short clip of that person alone or a
vector an earlier response returned) is compared with each diarized speaker's vector by
cosine similarity; the one-to-one assignment with the highest total similarity is kept
where a pair reaches `threshold`. A speaker no reference matches keeps its SPEAKER_xx.
Pure logic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Match:
    name: str
    speaker: str | None  # the diarized speaker it names; None: no one reached the threshold
    similarity: float  # to the best-matching speaker (whether or not it was taken)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
    b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
    return a @ b.T


def match_known_speakers(references: dict[str, list[float]], speakers: dict[str, list[float]],
                         threshold: float) -> list[Match]:
    """One `Match` per reference, in the references' order."""
    from scipy.optimize import linear_sum_assignment

    names, labels = list(references), list(speakers)
    if not names or not labels:
        return [Match(name, None, float("nan")) for name in names]
    similarity = cosine_matrix(np.asarray([references[n] for n in names], dtype=np.float64),
                               np.asarray([speakers[l] for l in labels], dtype=np.float64))
    similarity = np.nan_to_num(similarity, nan=-1.0)  # a speaker without a usable vector matches nobody
    rows, cols = linear_sum_assignment(-similarity)
    taken = {r: c for r, c in zip(rows, cols) if similarity[r, c] >= threshold}
    return [Match(name, labels[taken[i]] if i in taken else None, float(similarity[i].max()))
            for i, name in enumerate(names)]
