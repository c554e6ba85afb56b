"""pyannote.audio speaker diarization: loading (with clear errors for gated models), running on
the in-memory 16 kHz waveform, fewer speaker embeddings inside the pipeline, and one pass of the
embedding network per chunk. Model I/O only; which embeddings to compute is pure logic in
`attribution.embedding_reuse`, the word merge in `attribution.speakers`.

Embedding reuse (`install`, DIARIZATION_EMBEDDING_STRIDE), pyannote 3 and 4: the pipeline's own
`get_embeddings(file, binary_segmentations, exclude_overlap, hook)` is wrapped on the
instance: the chunks that `embedding_reuse.plan` keeps are passed to that same method as
sliding windows of their own (so masks, overlap exclusion, batching and the embedding model
stay pyannote's), and the other chunks' speakers get copies of matched embeddings.
Everything after (clustering, reconstruction) is untouched. Internals relied on, checked by
`install` (the pipeline is left stock when one is missing): the pipeline's `get_embeddings`
method with that signature, its `training` flag, and the segmentation it passes being a
pyannote.core `SlidingWindowFeature` with a regular `SlidingWindow`. A failure inside the
reuse path falls back to the stock method, logged once.

One network pass per chunk (`share_frames`, always on, exact): pyannote embeds each (chunk, local
speaker) pair by running the whole network on the chunk's waveform with that speaker's mask as
pooling weights, so the same 10 s goes through it once per local speaker (3 with
segmentation-3.0). An embedding model that exposes its two halves, `forward_frames(waveforms)`
and `forward_embedding(frames, weights)` (pyannote's WeSpeaker ResNets, the embedding of
speaker-diarization-3.1 and community-1), gets a `forward` that computes the frame features
once per distinct waveform of a batch and pools them per mask: the same numbers at about a third
of the cost. Other models (CAM++, x-vectors, ONNX) run unchanged.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speech_endpoint import compat
from speech_endpoint.attribution.embedding_reuse import fill, plan
from speech_endpoint.attribution.pipeline_params import ParamsError, check, merge, specs
from speech_endpoint.attribution.turns import exclusive_turns
from speech_endpoint.schema import Audio, ConfigurationError, Diarization

log = logging.getLogger(__name__)


class DiarizationLoadError(RuntimeError):
    """The diarization pipeline could not be loaded (raised at start-up)."""


def _gated_message(model_id: str, token_set: bool) -> str:
    who = "the account whose token is in HF_TOKEN" if token_set else "your account, then set HF_TOKEN to its token"
    return (
        f"Could not load the diarization model '{model_id}': it is gated or private. Accept its user "
        f"conditions at https://huggingface.co/{model_id} with {who} (a read token is enough)."
    )


class Diarizer:
    def __init__(self, model_id: str, *, token: str | None = None, device: str = "cpu",
                 segmentation_step: float | None = None, params: dict | None = None, embedding_stride: int = 1,
                 share_frames: bool = True):
        from pyannote.audio import Pipeline

        source = compat.pipeline_source(model_id)
        try:
            pipeline = Pipeline.from_pretrained(source, **compat.hub_token_kwargs(token))
        except Exception as exc:  # hub errors differ across huggingface_hub/pyannote versions
            if _is_access_error(exc):
                raise DiarizationLoadError(_gated_message(model_id, token is not None)) from None
            raise DiarizationLoadError(
                f"Could not load the diarization model '{model_id}': {type(exc).__name__}"
            ) from None
        if pipeline is None:  # pyannote prints the hub error and returns None
            if Path(model_id).exists():
                raise DiarizationLoadError(f"Could not load the diarization pipeline from '{model_id}'")
            raise DiarizationLoadError(_gated_message(model_id, token is not None))
        self.pipeline = pipeline.to(torch.device(device))
        if segmentation_step is not None:
            compat.set_segmentation_step(self.pipeline, segmentation_step)
        if embedding_stride > 1:  # a pipeline without the internals it needs runs unchanged (logged)
            install(self.pipeline, embedding_stride)
        if share_frames and _share_frames(getattr(compat.embedding_model(self.pipeline), "model_", None)):
            log.info("Speaker embeddings: one pass of the embedding network per chunk")
        if params:
            try:
                self.set_params(params)
            except ParamsError as exc:
                raise ConfigurationError(f"Invalid endpoint settings: DIARIZATION_PARAMS: {exc}") from None

    @property
    def params(self) -> dict:
        """The pipeline's parameters as it runs now (nested, as pyannote names them)."""
        return compat.pipeline_params(self.pipeline)

    def set_params(self, overrides: dict) -> dict:
        """Set some of the pipeline's parameters (nested, e.g. {"clustering": {"threshold":
        0.6}}) with its own `instantiate`; the others keep their values. Raises ParamsError
        naming a key the pipeline does not have or a value of the wrong type. Returns the
        parameters now in force."""
        checked, notes = check(overrides, specs(self.pipeline))
        for note in notes:
            log.warning("DIARIZATION_PARAMS: %s", note)
        compat.instantiate(self.pipeline, merge(self.params, checked))
        return self.params

    def __call__(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None, embeddings: bool = False, reuse: dict | None = None) -> Diarization:
        """Who spoke when; with `embeddings`, also one vector per speaker. `reuse`: a dict the
        caller keeps per recording, to rerun it with other clustering parameters without
        recomputing segmentation and embeddings (for tuning; see `compat.run_diarization`)."""
        if audio.duration == 0:
            return Diarization()
        kwargs = {k: v for k, v in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                                    ("max_speakers", max_speakers)) if v is not None}
        output, vectors = compat.run_diarization(self.pipeline, audio.samples, audio.sample_rate, embeddings,
                                                 reuse=reuse, **kwargs)
        exclusive, full = compat.diarization_turns(output)
        return Diarization(exclusive=exclusive if exclusive is not None else exclusive_turns(full), full=full,
                           embeddings=vectors)

    @property
    def embedding_dimension(self) -> int | None:
        """Size of the speaker vectors; None when the pipeline has no embedding model."""
        model = compat.embedding_model(self.pipeline)
        return int(model.dimension) if model is not None else None

    def embed(self, samples: np.ndarray) -> list[float]:
        """One speaker vector for `samples` (16 kHz mono), from the pipeline's own model."""
        waveform = torch.as_tensor(np.asarray(samples, dtype=np.float32)).reshape(1, 1, -1)
        return [float(x) for x in np.asarray(compat.embedding_model(self.pipeline)(waveform))[0]]


def _is_access_error(exc: Exception) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"GatedRepoError", "RepositoryNotFoundError"}:
        return True
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) in (401, 403)


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


def _share_frames(model: Any) -> bool:
    """Make the torch module `model` compute frame features once per distinct waveform of a
    batch (consecutive equal rows: pyannote yields a chunk's speakers one after another; the
    last chunk of a batch is kept for the next, as batches split chunks). Returns False,
    leaving it unchanged, when it lacks `forward_frames` and `forward_embedding`."""
    if not all(callable(getattr(model, name, None)) for name in ("forward_frames", "forward_embedding")) \
            or getattr(model, "fbank_only", False) or not callable(getattr(type(model), "forward", None)):
        return False
    stock = type(model).forward.__get__(model)
    last: list = [None]  # (waveform, frames) of the previous batch's last row
    warned = []

    def forward(waveforms, weights=None):
        if weights is None or getattr(waveforms, "ndim", 0) != 3:
            return stock(waveforms) if weights is None else stock(waveforms, weights=weights)
        try:
            frames, last[0], passes = _shared_frames(model, waveforms, last[0])
            forward.frame_passes += passes
            return model.forward_embedding(frames, weights=weights)
        except Exception as exc:  # an internal that changed shape: the model's own path
            if not warned:
                log.warning("Shared frame features failed (%s): one network pass per speaker", type(exc).__name__)
                warned.append(True)
            return stock(waveforms, weights=weights)

    forward.frame_passes = 0  # waveforms that went through the network, for tests and diagnostics
    model.forward = forward
    return True


def _shared_frames(model: Any, waveforms: torch.Tensor, previous: tuple | None) -> tuple[torch.Tensor, tuple, int]:
    """(frame features for every row, (last row, its features), rows that went through the
    network): each run of equal consecutive rows is computed once, and a first row equal to
    `previous`'s waveform takes its features."""
    reuse = previous is not None and previous[0].shape == waveforms[0].shape and torch.equal(previous[0], waveforms[0])
    row_of, distinct = [], []  # per row: index into [previous's features if reused] + the computed ones
    for i in range(len(waveforms)):
        if i and torch.equal(waveforms[i], waveforms[i - 1]):
            row_of.append(row_of[-1])
        elif i or not reuse:
            row_of.append(int(reuse) + len(distinct))
            distinct.append(i)
        else:
            row_of.append(0)
    parts = ([previous[1]] if reuse else []) + ([model.forward_frames(waveforms[distinct])] if distinct else [])
    computed = torch.cat(parts) if len(parts) > 1 else parts[0]
    frames = computed[torch.tensor(row_of, device=computed.device)]
    return frames, (waveforms[-1].clone(), frames[-1:].clone()), len(distinct)
