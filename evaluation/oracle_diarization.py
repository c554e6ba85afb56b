"""Oracle speaker diarization: a pyannote.audio `Pipeline` that answers with ground truth.

A test double for a real diarization model, loaded the way users load theirs:

    folder = write_oracle_pipeline("oracle", "dialogue.rttm", jitter=0.25, seed=3)
    pipeline = Pipeline.from_pretrained(folder)          # pyannote.audio 4
    pipeline = Pipeline.from_pretrained(folder / "config.yaml")  # pyannote.audio 3
    output = pipeline({"waveform": tensor, "sample_rate": 16000})

so the endpoint can run with `DIARIZATION_MODEL=<folder>` and its word-to-speaker merge can
be measured without any diarization error of the model's own. `config.yaml` reads

    pipeline:
      name: evaluation.oracle_diarization.OracleDiarization
      params: {rttm: /abs/path/file.rttm, jitter: 0.25, seed: 3}

pyannote imports that class by name (`get_class_by_name`), so the repository root must
be on sys.path (it is for `python -m ...` run from it, and for the tests). Both pyannote versions call `Klass(**params)`, adding their hub
keywords (`token`, `cache_dir` on 4; `use_auth_token` on 3), which are ignored here.

Output, as the installed pyannote.audio shapes it:
- 4.x: `DiarizeOutput` with `.speaker_diarization` (the RTTM turns, overlaps kept) and
  `.exclusive_speaker_diarization` (one speaker at a time);
- 3.x: the bare `Annotation` of the RTTM turns.
Labels are the RTTM's own (the endpoint renames them SPEAKER_xx anyway); turns are cut to
the input's duration.

Jitter (`jitter` > 0): every turn's start and end move independently by a uniform random
amount in [-jitter, +jitter] seconds, clipped to [0, duration]; a turn whose moved end is
not after its moved start is dropped (a diarizer missing a very short turn). The random
generator is `numpy.random.default_rng(seed)` created afresh per call, so a given
(rttm, jitter, seed) always yields the same turns - `jitter_turns` reproduces them
in-process without a pipeline. Moved turns of different speakers may overlap.

Exclusive diarization (pyannote 4's DiarizeOutput): the endpoint's own rule,
`speech_endpoint.attribution.turns.exclusive_turns`; on pyannote 3 the oracle returns only the full
Annotation and the endpoint derives the exclusive turns with the same rule.

Only numpy, PyYAML and pyannote (for the pipeline class) are needed; the turn functions
are pure.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from speech_endpoint.compat import PYANNOTE_MAJOR
from speech_endpoint.render.formats import parse_rttm
from speech_endpoint.schema import Turn, sort_turns
from speech_endpoint.attribution.turns import exclusive_turns

try:  # the pure helpers work without pyannote.audio; the pipeline class needs it
    from pyannote.audio import Pipeline as _PipelineBase
except ImportError:  # pragma: no cover - pyannote.audio is a dependency of the endpoint
    _PipelineBase = object  # type: ignore[assignment,misc]

CLASS_NAME = "evaluation.oracle_diarization.OracleDiarization"


# ---- reading and transforming turns (pure) -------------------------------------------


def read_rttm(path: str | Path) -> dict[str, list[Turn]]:
    """SPEAKER lines of an RTTM file as {uri: turns sorted by time}."""
    return parse_rttm(Path(path).read_text(), source=str(path))


def rttm_turns(path: str | Path, uri: str | None = None) -> list[Turn]:
    """The turns of one recording in an RTTM file: `uri`'s, or all of them when the file
    holds a single recording. An empty file gives []."""
    by_uri = read_rttm(path)
    if uri is not None:
        if uri not in by_uri:
            raise ValueError(f"{path}: no turns for uri {uri!r} (it has {sorted(by_uri)})")
        return by_uri[uri]
    if len(by_uri) > 1:
        raise ValueError(f"{path} holds several recordings {sorted(by_uri)}; say which with `uri`")
    return next(iter(by_uri.values()), [])


def crop_turns(turns: Iterable[Turn], duration: float | None) -> list[Turn]:
    """Turns cut to [0, duration] (None: only to >= 0); empty turns dropped."""
    upper = math.inf if duration is None else float(duration)
    out = []
    for t in sort_turns(turns):
        start, end = max(0.0, t.start), min(upper, t.end)
        if end > start:
            out.append(Turn(start, end, t.speaker))
    return out


def jitter_turns(turns: Iterable[Turn], jitter: float, seed: int = 0,
                 duration: float | None = None) -> list[Turn]:
    """Every boundary moved by U(-jitter, +jitter) (see the module docstring). The turns
    are sorted first, so the result depends only on the turns, jitter and seed."""
    ordered = sort_turns(turns)
    if jitter < 0:
        raise ValueError("jitter must be >= 0")
    if jitter == 0:
        return crop_turns(ordered, duration)
    rng = np.random.default_rng(seed)
    moves = rng.uniform(-jitter, jitter, size=(len(ordered), 2))
    upper = math.inf if duration is None else float(duration)
    out = []
    for turn, (d_start, d_end) in zip(ordered, moves):
        start = min(max(0.0, turn.start + float(d_start)), upper)
        end = min(max(0.0, turn.end + float(d_end)), upper)
        if end > start:
            out.append(Turn(start, end, turn.speaker))
    return sort_turns(out)


def to_annotation(turns: Iterable[Turn], uri: str | None = None):
    """A pyannote.core Annotation holding `turns` (one track per turn)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, turn in enumerate(sort_turns(turns)):
        annotation[Segment(turn.start, turn.end), i] = turn.speaker
    return annotation


def oracle_turns(rttm: str | Path, *, jitter: float = 0.0, seed: int = 0,
                 duration: float | None = None, uri: str | None = None) -> tuple[list[Turn], list[Turn]]:
    """(full, exclusive) turns exactly as an `OracleDiarization(rttm, jitter, seed, uri)`
    returns them for audio lasting `duration` seconds."""
    full = jitter_turns(rttm_turns(rttm, uri), jitter, seed, duration)
    return full, exclusive_turns(full)


# ---- the pipeline -------------------------------------------------------------------


class OracleDiarization(_PipelineBase):
    """pyannote Pipeline returning the turns of `rttm` (see the module docstring).

    `jitter` (seconds, >= 0) and `seed` make the boundaries wobble reproducibly; `uri`
    picks one recording of a multi-recording RTTM. `num_speakers`, `min_speakers` and
    `max_speakers` are accepted and ignored: the oracle knows who spoke."""

    def __init__(self, rttm: str, jitter: float = 0.0, seed: int = 0, uri: str | None = None,
                 **hub_kwargs: Any):  # token / cache_dir (pyannote 4), use_auth_token (3)
        super().__init__()
        path = Path(rttm)
        if not path.is_file():
            raise FileNotFoundError(f"oracle diarization: RTTM file {rttm} not found")
        if float(jitter) < 0:
            raise ValueError("oracle diarization: jitter must be >= 0")
        self.rttm = str(path)
        self.jitter = float(jitter)
        self.seed = int(seed)
        self.uri = uri
        self.reference = rttm_turns(path, uri)  # parsed once; errors surface at load time

    def classes(self):
        return sorted({t.speaker for t in self.reference})

    def apply(self, file, num_speakers: int | None = None, min_speakers: int | None = None,
              max_speakers: int | None = None, hook=None, **kwargs):
        duration = _duration(file)
        full = jitter_turns(self.reference, self.jitter, self.seed, duration)
        uri = file.get("uri") if hasattr(file, "get") else None
        annotation = to_annotation(full, uri)
        if (PYANNOTE_MAJOR or 0) < 4:
            return annotation
        from pyannote.audio.pipelines.speaker_diarization import DiarizeOutput

        return DiarizeOutput(speaker_diarization=annotation,
                             exclusive_speaker_diarization=to_annotation(exclusive_turns(full), uri),
                             speaker_embeddings=None)


def _duration(file) -> float | None:
    """The input's duration in seconds: from an in-memory waveform, else from the audio
    file via pyannote's Audio; None when unknown (turns are then not cut at the end)."""
    try:
        waveform = file["waveform"]
    except (KeyError, TypeError):
        waveform = None
    if waveform is not None:
        return float(waveform.shape[-1]) / float(file["sample_rate"])
    try:
        from pyannote.audio import Audio

        return float(Audio().get_duration(file))
    except Exception:
        return None


# ---- writing a pipeline folder ------------------------------------------------------


def class_name() -> str:
    """The importable name pyannote will load this class by."""
    module = OracleDiarization.__module__
    return CLASS_NAME if module == "__main__" else f"{module}.{OracleDiarization.__qualname__}"


def write_oracle_pipeline(folder: str | Path, rttm: str | Path, jitter: float = 0.0, seed: int = 0,
                          uri: str | None = None) -> Path:
    """Write `folder/config.yaml` for an oracle pipeline over `rttm` and return the folder
    (give it to `Pipeline.from_pretrained`, or as DIARIZATION_MODEL; pyannote 3 wants
    `folder / "config.yaml"`, which the endpoint's compat layer passes)."""
    import yaml

    rttm = Path(rttm).resolve()
    if not rttm.is_file():
        raise FileNotFoundError(f"RTTM file {rttm} not found")
    if jitter < 0:
        raise ValueError("jitter must be >= 0")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params: dict[str, Any] = {"rttm": str(rttm), "jitter": float(jitter), "seed": int(seed)}
    if uri is not None:
        params["uri"] = uri
    config = {"pipeline": {"name": class_name(), "params": params}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write an oracle pyannote pipeline folder (config.yaml) "
                                                 "for DIARIZATION_MODEL; the repository root must be on "
                                                 "PYTHONPATH when the endpoint loads it.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rttm", type=Path, required=True)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uri")
    args = parser.parse_args(argv)
    print(write_oracle_pipeline(args.folder, args.rttm, args.jitter, args.seed, args.uri))


if __name__ == "__main__":
    main()
