"""pyannote.audio speaker diarization: loading (with clear errors for gated models) and
running on the in-memory 16 kHz waveform. Model I/O only; the word merge is pure logic
in `diarization_utils`."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from speech_endpoint import compat, pyannote_embeddings
from speech_endpoint.errors import ConfigurationError
from speech_endpoint.pipeline_params import ParamsError, check, merge
from speech_endpoint.schema import Audio, Diarization
from speech_endpoint.turns import exclusive_turns

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
                 segmentation_step: float | None = None, params: dict | None = None, embedding_stride: int = 1):
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
            pyannote_embeddings.install(self.pipeline, embedding_stride)
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
        checked, notes = check(overrides, compat.pipeline_param_specs(self.pipeline))
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
