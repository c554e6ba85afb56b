"""What the real diarization pipeline costs inside the handler, where (segmentation,
speaker embeddings, the rest), and what a longer segmentation step saves against what it
costs in DER, over conversations with reference turns.

    PYTHONPATH=<pipeline folder> python -m evaluation.diarization_cost <pipeline folder> \\
        dialogue.wav corpus/manifest.json --steps 0.1 0.2 0.3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from evaluation import scoring
from evaluation.evaluate import discover


def timed_call(diarizer, audio) -> tuple[object, dict[str, float]]:
    """The diarization and the CPU seconds of its segmentation and embedding stages (the
    pipeline's own methods, timed from outside: nothing of it is changed)."""
    pipeline, spent = diarizer.pipeline, {"segmentation": 0.0, "embeddings": 0.0}
    originals = {name: getattr(pipeline, f"get_{name}") for name in ("segmentations", "embeddings")}

    def timing(name, method):
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent["segmentation" if name == "segmentations" else "embeddings"] += time.thread_time() - started
        return wrapper

    for name, method in originals.items():
        setattr(pipeline, f"get_{name}", timing(name, method))
    started = time.thread_time()
    try:
        result = diarizer(audio)
    finally:
        for name in originals:
            delattr(pipeline, f"get_{name}")  # back to the class's methods
    spent["total"] = time.thread_time() - started
    spent["other"] = spent["total"] - spent["segmentation"] - spent["embeddings"]
    return result, spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("inputs", nargs="+", help="audio files with .rttm beside them, folders or manifests")
    parser.add_argument("--steps", type=float, nargs="+", default=[0.1, 0.2, 0.3],
                        help="segmentation steps, as a share of the 10 s window")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.attribution.diarizer import Diarizer

    items = [i for i in discover(args.inputs) if i.rttm]
    print("| step | DER (collar 0) | DER (collar 0.25 s) | CPU s per minute of audio: segmentation / embeddings / other / total |")
    print("|---|---|---|---|")
    for step in args.steps:
        diarizer = Diarizer(args.pipeline, segmentation_step=step)
        zero, wide, costs, minutes = [], [], [], 0.0
        for item in items:
            audio = decode(item.audio.read_bytes())
            result, spent = timed_call(diarizer, audio)
            reference = [(t.start, t.end, t.speaker) for t in item.reference_turns(audio.duration)]
            hypothesis = [(t.start, t.end, t.speaker) for t in result.full]
            zero.append(scoring.diarization_scores(reference, hypothesis, duration=audio.duration))
            wide.append(scoring.diarization_scores(reference, hypothesis, duration=audio.duration, collar=0.25))
            costs.append(spent)
            minutes += audio.duration / 60
        per_minute = {k: sum(c[k] for c in costs) / minutes for k in ("segmentation", "embeddings", "other", "total")}
        print(f"| {step:g} | {scoring.combine_diarization_scores(zero)['der']:.1%} | "
              f"{scoring.combine_diarization_scores(wide)['der']:.1%} | "
              + " / ".join(f"{per_minute[k]:.2f}" for k in ("segmentation", "embeddings", "other", "total")) + " |",
              flush=True)
        worst = max(zip(items, zero), key=lambda pair: pair[1]["der"])
        print(f"|   | worst: {worst[0].uri} {worst[1]['der']:.1%} | | median DER {statistics.median(z['der'] for z in zero):.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
