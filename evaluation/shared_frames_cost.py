"""What one pass of the embedding network per chunk saves with a WeSpeaker ResNet34, the
embedding architecture of pyannote/speaker-diarization-3.1 and community-1, whose weights
cannot be downloaded here. So a pipeline is built from the real segmentation of a local
pipeline folder (the shared pyannote-campplus: segmentation-3.0) and a ResNet34 with random
weights: the CPU seconds are real (the network's cost does not depend on its weights), the
speakers are not. Each file is diarized with pyannote's own embedding path (the network once
per chunk and local speaker) and with shared frames, per embedding stride; the table gives
CPU s per minute of audio and whether the turns came out identical.

    PYTHONPATH=../shared/models/pyannote-campplus OMP_NUM_THREADS=1 python -m evaluation.shared_frames_cost \\
        ../shared/models/pyannote-campplus ../shared/audio/dialogue/dialogue.wav --strides 1 2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from evaluation.diarization_cost import STAGES, timed_call
from evaluation.evaluate import discover

SEED = 0


def lightning_checkpoint(model) -> dict:
    """A pyannote `Model`'s checkpoint as `Model.from_pretrained` loads it (its `specifications`
    must be set: `on_save_checkpoint` stores them)."""
    try:
        from lightning import __version__ as lightning_version
    except ImportError:  # pyannote 3 may only have pytorch_lightning
        from pytorch_lightning import __version__ as lightning_version
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning_version}
    model.on_save_checkpoint(checkpoint)
    return checkpoint


def build_pipeline(source: Path, out: Path) -> Path:
    """A copy of `source`'s config.yaml whose embedding is a random-weight WeSpeaker ResNet34
    (a pyannote checkpoint in `out`), batch size 32 as in speaker-diarization-3.1."""
    import torch
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    torch.manual_seed(SEED)
    model = WeSpeakerResNet34(sample_rate=16000).eval()
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=3.0)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(lightning_checkpoint(model), out / "resnet34.bin")
    config = yaml.safe_load((source / "config.yaml").read_text())
    params = config["pipeline"]["params"]
    for key, value in params.items():  # the copy lives elsewhere: `$model/...` (a PLDA) made absolute
        if isinstance(value, str) and value.startswith("$model/"):
            params[key] = str(source.resolve() / value[len("$model/"):])
    # mappings, not paths: pyannote picks its embedding loader by the spelling of a path, and
    # pyannote 4 would take $model/ for `out`
    params["segmentation"] = {"checkpoint": str((source / "segmentation" / "pytorch_model.bin").resolve())}
    params["embedding"] = {"checkpoint": str((out / "resnet34.bin").resolve())}
    params["embedding_batch_size"] = 32
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", type=Path, help="a local pipeline folder: its segmentation and clustering are used")
    parser.add_argument("inputs", nargs="+", help="audio files or folders")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from speech_endpoint.attribution.diarizer import Diarizer
    from speech_endpoint.speech.audio import decode

    items = discover(args.inputs)
    decoded = {i.uri: decode(i.audio.read_bytes()) for i in items}
    minutes = sum(a.duration for a in decoded.values()) / 60
    print(f"{len(items)} files, {minutes * 60:.0f} s; 1 thread = OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("\n| embedding stride | embedding network | CPU s per minute: segmentation / embeddings / other / total "
          "| embeddings / pyannote's own | turns identical to pyannote's own path |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_pipeline(args.pipeline, Path(tmp))
        for stride in args.strides:
            rows, turns = {}, {}
            for shared in (False, True):
                diarizer = Diarizer(str(folder), embedding_stride=stride, share_frames=shared)
                spent = dict.fromkeys(STAGES, 0.0)
                for uri, audio in decoded.items():
                    result, cost = timed_call(diarizer, audio)
                    turns[shared, uri] = result.full
                    for stage in STAGES:
                        spent[stage] += cost[stage]
                rows[shared] = {stage: value / minutes for stage, value in spent.items()}
            same = sum(turns[False, uri] == turns[True, uri] for uri in decoded)
            for shared, label in ((False, "once per chunk and speaker (pyannote's own)"), (True, "once per chunk (shared frames)")):
                row = rows[shared]
                print(f"| {stride} | {label} | " + " / ".join(f"{row[k]:.2f}" for k in STAGES)
                      + f" | {row['embeddings'] / rows[False]['embeddings']:.2f} | "
                      + (f"{same} of {len(decoded)} files |" if shared else "|"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
