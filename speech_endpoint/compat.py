"""The one place that knows library versions apart.

Two stacks are supported: the platform's default container (torch 2.5, transformers 4.51,
huggingface_hub 0.30, pyannote.audio 3) and the current one (transformers 5,
pyannote.audio 4). Everything version-specific goes through these small adapters.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any


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


def hub_token_kwargs(token: str | None) -> dict[str, Any]:
    """pyannote.audio 4 takes `token=`; 3.x takes `use_auth_token=`."""
    if (PYANNOTE_MAJOR or 0) >= 4:
        return {"token": token}
    return {"use_auth_token": token}


def diarization_annotations(output: Any) -> tuple[Any, Any]:
    """(exclusive, full) annotations from a pyannote pipeline's output.

    pyannote 4 returns `DiarizeOutput` with `.speaker_diarization` and
    `.exclusive_speaker_diarization` (no overlaps, meant for aligning with words);
    pyannote 3 returns a bare `Annotation`, whose overlap-free version we derive by
    giving each overlapped stretch to the speaker whose turn started last (the
    interrupting speaker), as pyannote 4's exclusive output does in spirit.
    """
    full = getattr(output, "speaker_diarization", output)
    exclusive = getattr(output, "exclusive_speaker_diarization", None)
    if exclusive is None:
        exclusive = _exclusive(full)
    return exclusive, full


def _exclusive(annotation: Any) -> Any:
    """One speaker at a time, from an annotation with overlaps: a turn inside another (a
    back-channel) keeps its whole length; at a hand-over the floor changes at the middle of
    the overlap (giving all of it to either side moves boundary words to the wrong one)."""
    from pyannote.core import Annotation, Segment

    turns = sorted(((seg.start, seg.end, label) for seg, _, label in annotation.itertracks(yield_label=True)),
                   key=lambda t: (t[0], t[1]))
    result = Annotation(uri=getattr(annotation, "uri", None))
    bounds = sorted({t for start, end, _ in turns for t in (start, end)})
    for left, right in zip(bounds, bounds[1:]):
        active = [t for t in turns if t[0] <= left and t[1] >= right]
        if active:
            result[Segment(left, right)] = _floor_holder(active, (left + right) / 2)[2]
    return result.support()


def _floor_holder(active: list, centre: float):
    contained = [t for t in active if any(u is not t and u[0] <= t[0] and t[1] <= u[1] for u in active)]
    if contained:
        return min(contained, key=lambda t: t[1] - t[0])
    for later, earlier in zip(reversed(active), list(reversed(active))[1:]):
        if centre >= (later[0] + earlier[1]) / 2:
            return later
    return active[0]


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
