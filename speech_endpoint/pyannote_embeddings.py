"""Fewer speaker embeddings inside a pyannote SpeakerDiarization pipeline (pyannote 3 and 4).

The pipeline's own `get_embeddings(file, binary_segmentations, exclude_overlap, hook)` is
wrapped on the instance: the chunks that `embedding_reuse.plan` keeps are passed to that
same method as sliding windows of their own (so masks, overlap exclusion, batching and
the embedding model stay pyannote's), and the other chunks' speakers get copies of matched
embeddings. Everything after (clustering, reconstruction) is untouched.

Internals relied on, checked by `install` (the pipeline is left stock when one is missing):
the pipeline's `get_embeddings` method with that signature, its `training` flag, and the
segmentation it passes being a pyannote.core `SlidingWindowFeature` with a regular
`SlidingWindow`. A failure inside the reuse path falls back to the stock method, logged once.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any

import numpy as np

from speech_endpoint.embedding_reuse import fill, plan

log = logging.getLogger(__name__)

DEFAULT_MIN_AGREEMENT = 0.5
_EXPECTED = ("file", "binary_segmentations", "exclude_overlap", "hook")
_CACHE_KEY = "speech_endpoint/reused_embeddings"


def install(pipeline: Any, stride: int, min_agreement: float = DEFAULT_MIN_AGREEMENT) -> bool:
    """Make `pipeline` embed every `stride`-th chunk (and the chunks no neighbour matches).
    Returns False, leaving the pipeline as it was, when it lacks what this relies on or
    `stride` is 1. Installing again replaces the previous settings."""
    stock = getattr(type(pipeline), "get_embeddings", None)
    if stride <= 1 or not _supported(pipeline, stock):
        if stride > 1:
            log.info("Embedding reuse is not available for %s: its pipeline runs unchanged",
                     type(pipeline).__name__)
        getattr(pipeline, "__dict__", {}).pop("get_embeddings", None)
        return False
    bound = stock.__get__(pipeline)
    warned = []

    def get_embeddings(file, binary_segmentations, exclude_overlap=False, hook=None):
        try:
            embeddings, get_embeddings.last_plan = _reused(pipeline, bound, file, binary_segmentations,
                                                            exclude_overlap, stride, min_agreement)
            return embeddings
        except Exception as exc:  # an internal that changed shape: pyannote's own path
            if not warned:
                log.warning("Embedding reuse failed (%s): computing every embedding", type(exc).__name__)
                warned.append(True)
            return bound(file, binary_segmentations, exclude_overlap=exclude_overlap, hook=hook)

    get_embeddings.reuse_stride = stride  # for tests and diagnostics
    get_embeddings.last_plan = None  # (chunks embedded, chunks) of the last call
    pipeline.get_embeddings = get_embeddings
    return True


def installed_stride(pipeline: Any) -> int:
    """The stride in force on `pipeline` (1: pyannote's own embedding of every chunk)."""
    return getattr(getattr(pipeline, "__dict__", {}).get("get_embeddings"), "reuse_stride", 1)


def _supported(pipeline: Any, stock: Any) -> bool:
    if stock is None or not hasattr(pipeline, "training"):
        return False
    try:
        names = tuple(inspect.signature(stock).parameters)[1:5]
        from pyannote.core import SlidingWindow, SlidingWindowFeature  # noqa: F401
    except (TypeError, ValueError, ImportError):
        return False
    return names == _EXPECTED


def _reused(pipeline, stock, file, segmentations, exclude_overlap, stride, min_agreement
            ) -> tuple[np.ndarray, tuple[int, int]]:
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    data, window = np.asarray(segmentations.data), segmentations.sliding_window
    num_chunks, num_frames, num_speakers = data.shape
    key = (stride, min_agreement, exclude_overlap, hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest())
    training = bool(pipeline.training)
    if training and isinstance(file, dict) and file.get(_CACHE_KEY, (None,))[0] == key:
        return file[_CACHE_KEY][1], (0, num_chunks)  # tuning: the same segmentation was embedded already
    chosen = plan(data, window.step / (window.duration / num_frames), stride, min_agreement)
    embeddings = None
    pipeline.training = False  # pyannote's cache would hand the first subset back to the second call
    try:
        for first, step, count in progressions(chosen.computed):
            part = SlidingWindowFeature(
                data[first:first + step * (count - 1) + 1:step],
                SlidingWindow(start=window.start + first * window.step, duration=window.duration,
                              step=window.step * step))
            computed = np.asarray(stock(file, part, exclude_overlap=exclude_overlap, hook=None))
            if embeddings is None:
                embeddings = np.full((num_chunks, num_speakers, computed.shape[-1]), np.nan, dtype=computed.dtype)
            embeddings[first:first + step * (count - 1) + 1:step] = computed
    finally:
        pipeline.training = training
    embeddings = fill(embeddings, chosen)
    if training and isinstance(file, dict):
        file[_CACHE_KEY] = (key, embeddings)
    return embeddings, (len(chosen.computed), num_chunks)


def progressions(indices: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Sorted indices as runs of equal steps: [(first, step, count)], greedily."""
    runs, i = [], 0
    while i < len(indices):
        if i + 1 == len(indices):
            runs.append((indices[i], 1, 1))
            break
        step, count = indices[i + 1] - indices[i], 2
        while i + count < len(indices) and indices[i + count] - indices[i + count - 1] == step:
            count += 1
        runs.append((indices[i], step, count))
        i += count
    return runs
