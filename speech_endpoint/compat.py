"""The one place that knows library versions apart.

Two stacks are supported: the platform's default container (torch 2.5, transformers 4.51,
huggingface_hub 0.30, pyannote.audio 3) and the current one (transformers 5,
pyannote.audio 4). Everything version-specific goes through these small adapters.
"""
from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from speech_endpoint.schema import Turn, sort_turns


def _major(package: str) -> int | None:
    try:
        return int(version(package).split(".")[0])
    except (PackageNotFoundError, ValueError):
        return None


TRANSFORMERS_MAJOR = _major("transformers")
PYANNOTE_MAJOR = _major("pyannote.audio")


def dtype_kwargs(dtype: Any) -> dict[str, Any]:
    """transformers 5 renamed `torch_dtype=` to `dtype=` (the old name is deprecated)."""
    return {"dtype": dtype} if (TRANSFORMERS_MAJOR or 0) >= 5 else {"torch_dtype": dtype}


def load_processor(model_id: str, token: str | None = None) -> Any:
    """The Whisper processor (feature extractor + tokenizer) of a checkpoint.

    transformers 5 saves `processor_config.json` with the feature extractor's settings
    nested in it (`{"feature_extractor": {...}, "processor_class": ...}`); 4.x's
    `AutoProcessor` passes that dict to `WhisperProcessor(...)` as keyword arguments and
    fails ("got multiple values for argument 'feature_extractor'"). So on 4.x the two parts
    are loaded on their own (`preprocessor_config.json` and the tokenizer files are the same
    in both formats) and put together as `AutoProcessor` does for a 4.x folder: 4.x's
    `WhisperProcessor` takes only the slow (Python) `WhisperTokenizer`.
    """
    from transformers import AutoProcessor

    if (TRANSFORMERS_MAJOR or 0) >= 5:
        return AutoProcessor.from_pretrained(model_id, token=token)
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    return WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor.from_pretrained(model_id, token=token),
        tokenizer=WhisperTokenizer.from_pretrained(model_id, token=token),
    )


def greedy_generate_kwargs() -> dict[str, Any]:
    """Greedy decoding, said explicitly: transformers 5's ASR pipeline defaults to 5 beams,
    which is slower and silently disables the assistant; 4.x defaults to greedy."""
    return {"num_beams": 1, "do_sample": False}


def new_tokens_kwargs(count: int) -> dict[str, Any]:
    """`generate` arguments for at most `count` new tokens per window. transformers 5 warns
    on every call that passes `max_new_tokens` to a Whisper checkpoint (its generation config
    sets `max_length`); its Whisper `generate` reads `max_length` as tokens after the prompt,
    so it gets that. 4.x reads `max_length` as the whole sequence and warns about neither."""
    if (TRANSFORMERS_MAJOR or 0) >= 5:
        return {"max_length": count}
    return {"max_new_tokens": count}


def quiet_generate(assistant: Any | None = None) -> None:
    """Stop what transformers 5 logs against its own calls while decoding, without changing
    what it decodes. The assistant's `max_length` meets the `max_new_tokens` that assisted
    generation passes on every draft step: it goes. And transformers' own code passes a
    generation config together with arguments it then calls deprecated (Whisper's
    `generate`: `suppress_tokens`, `begin_suppress_tokens`; assisted generation:
    `min_new_tokens`, `max_new_tokens`, `use_cache`): those messages are filtered; the same
    warning about any other argument still shows. Both stacks also warn, once per process,
    that a batch has no attention mask: every row of our batches has the same decoder
    prompt and 30 s of features, so there is nothing to mask and the message goes."""
    log = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(f, _UnpaddedBatchWarning) for f in log.filters):
        log.addFilter(_UnpaddedBatchWarning())
    if (TRANSFORMERS_MAJOR or 0) < 5:
        return
    if assistant is not None:
        assistant.generation_config.max_length = None
    if not any(isinstance(f, _TransformersOwnConfigWarning) for f in log.filters):
        log.addFilter(_TransformersOwnConfigWarning())


class _UnpaddedBatchWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("The attention mask is not set")


class _TransformersOwnConfigWarning(logging.Filter):
    _MESSAGE = re.compile(r"Passing `generation_config` together with generation-related arguments=\(\{(.*?)\}\)")
    _ITS_OWN = {"suppress_tokens", "begin_suppress_tokens", "min_new_tokens", "max_new_tokens", "use_cache"}

    def filter(self, record: logging.LogRecord) -> bool:
        found = self._MESSAGE.search(record.getMessage())
        if found is None:
            return True
        names = {name.strip().strip("'\"") for name in found.group(1).split(",")}
        return not names <= self._ITS_OWN


@contextmanager
def quiet_asr_pipeline():
    """transformers 4.x's ASR pipeline calls Whisper's `generate(inputs=...)`, which the same
    version deprecates (FutureWarning): nothing its caller passes changes that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The input name `inputs` is deprecated", category=FutureWarning)
        yield


def hub_token_kwargs(token: str | None) -> dict[str, Any]:
    """pyannote.audio 4 takes `token=`; 3.x takes `use_auth_token=`."""
    if (PYANNOTE_MAJOR or 0) >= 4:
        return {"token": token}
    return {"use_auth_token": token}


def run_diarization(pipeline: Any, samples: Any, sample_rate: int, embeddings: bool,
                    reuse: dict | None = None, **kwargs: Any) -> tuple[Any, dict]:
    """The pipeline's output and, when `embeddings`, one vector per speaker label of its
    full diarization ({} when it gave none). pyannote 4 always returns them
    (`DiarizeOutput.speaker_embeddings`); pyannote 3 when asked (`return_embeddings=True`,
    then a tuple). Rows follow the full diarization's `labels()` on both.

    `reuse` (a dict kept by the caller for one recording) keeps the segmentation and the
    embeddings between calls, so another clustering threshold costs only the clustering:
    pyannote's own cache for tuning (training mode stores them in the input mapping, on
    both versions). Only for parameters after those stages (clustering, min_duration_off)."""
    if embeddings and (PYANNOTE_MAJOR or 0) < 4:
        kwargs["return_embeddings"] = True
    if reuse is None:
        output = pipeline(diarization_input(samples, sample_rate), **kwargs)
    else:
        file = reuse.setdefault("file", diarization_input(samples, sample_rate))
        pipeline.training = True
        try:
            output = pipeline(file, **kwargs)
        finally:
            pipeline.training = False
    centroids = getattr(output, "speaker_embeddings", None)
    if isinstance(output, tuple):
        output, centroids = output
    if not embeddings or centroids is None:
        return output, {}
    labels = getattr(output, "speaker_diarization", output).labels()
    return output, {str(label): [float(x) for x in centroids[i]] for i, label in enumerate(labels)
                    if i < len(centroids)}


def set_segmentation_step(pipeline: Any, ratio: float) -> None:
    """The step of the pipeline's sliding segmentation window, as a share of the window
    (pyannote's default is 0.1); the Inference object was built with the old one."""
    inference = getattr(pipeline, "_segmentation", None)
    if inference is not None and hasattr(inference, "step"):
        inference.step = ratio * inference.duration
        pipeline.segmentation_step = ratio


def embedding_model(pipeline: Any) -> Any | None:
    """The speaker-embedding model a pyannote SpeakerDiarization pipeline clusters with
    (`model(waveforms (batch, 1, samples)) -> (batch, dimension)`), or None."""
    return getattr(pipeline, "_embedding", None)


def diarization_turns(output: Any) -> tuple[list[Turn] | None, list[Turn]]:
    """(exclusive, full) turns from a pyannote pipeline's output, sorted by time.

    pyannote 4 returns `DiarizeOutput` with `.speaker_diarization` and
    `.exclusive_speaker_diarization` (no overlaps, meant for aligning with words);
    pyannote 3 returns a bare `Annotation`: exclusive is then None, for the caller to
    derive (`speech_endpoint.attribution.turns.exclusive_turns`).
    """
    full = getattr(output, "speaker_diarization", output)
    exclusive = getattr(output, "exclusive_speaker_diarization", None)
    return (annotation_turns(exclusive) if exclusive is not None else None), annotation_turns(full)


def annotation_turns(annotation: Any) -> list[Turn]:
    """A pyannote.core Annotation as turns sorted by time."""
    return sort_turns(Turn(float(seg.start), float(seg.end), str(label))
                      for seg, _, label in annotation.itertracks(yield_label=True))


def diarization_input(samples: Any, sample_rate: int) -> dict[str, Any]:
    """Both pyannote versions accept an in-memory waveform (channel, time) tensor."""
    import torch

    waveform = torch.as_tensor(samples, dtype=torch.float32).reshape(1, -1)
    return {"waveform": waveform, "sample_rate": sample_rate}


def pipeline_source(model_id: str) -> str:
    """pyannote 4 loads a local folder; pyannote 3 needs the path of its config.yaml."""
    from pathlib import Path

    path = Path(model_id)
    if (PYANNOTE_MAJOR or 0) < 4 and path.is_dir() and (path / "config.yaml").is_file():
        return str(path / "config.yaml")
    return model_id


def pipeline_params(pipeline: Any) -> dict:
    """The nested parameters the pipeline runs with ({} before it is instantiated)."""
    return pipeline.parameters(instantiated=True)


def instantiate(pipeline: Any, params: dict) -> None:
    """Set every parameter of the pipeline (pyannote's own `instantiate`)."""
    pipeline.instantiate(params)
