"""What the real diarization pipeline costs inside the handler, where (segmentation,
speaker embeddings, the rest), and what a longer segmentation step or embedding reuse
(`DIARIZATION_EMBEDDING_STRIDE`, `speech_endpoint.attribution.embedding_reuse`) saves against what it
costs in DER, per set of conversations with reference turns, all in one run; with
`--asr-model`, also a diarized request's time over the same request without diarization.

    PYTHONPATH=<pipeline folder> python -m evaluation.diarization_cost <pipeline folder> \\
        ami-dev/ dialogue/ --steps 0.1 --strides 1 2 3 4 --asr-model whisper-base \\
        --request-audio dialogue/dialogue.wav
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from evaluation import scoring
from evaluation.evaluate import discover

STAGES = ("segmentation", "embeddings", "other", "total")


def timed_call(diarizer, audio) -> tuple[object, dict[str, float]]:
    """The diarization and the CPU seconds of its segmentation and embedding stages (the
    pipeline's own methods, timed from outside: nothing of it is changed)."""
    pipeline, spent = diarizer.pipeline, {"segmentation": 0.0, "embeddings": 0.0, "embedded": None}
    names = ("get_segmentations", "get_embeddings")
    own = {name: pipeline.__dict__[name] for name in names if name in pipeline.__dict__}  # e.g. embedding reuse

    def timing(name, method):
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent["segmentation" if name == "get_segmentations" else "embeddings"] += time.thread_time() - started
        return wrapper

    for name in names:
        setattr(pipeline, name, timing(name, getattr(pipeline, name)))
    started = time.thread_time()
    try:
        result = diarizer(audio)
    finally:
        for name in names:
            delattr(pipeline, name)  # back to the class's methods, or to the instance's own
            if name in own:
                setattr(pipeline, name, own[name])
    spent["total"] = time.thread_time() - started
    if "get_embeddings" in own:  # embedding reuse: (chunks embedded, chunks) of this call
        spent["embedded"] = getattr(own["get_embeddings"], "last_plan", None)
    spent["other"] = spent["total"] - spent["segmentation"] - spent["embeddings"]
    return result, spent


def score_set(diarizer, items, decoded) -> dict:
    """DER (collar 0 and 0.25 s, pooled) and CPU s per minute of audio by stage over `items`."""
    zero, wide, costs, minutes, embedded = [], [], [], 0.0, [0, 0]
    for item in items:
        audio = decoded[item.uri]
        result, spent = timed_call(diarizer, audio)
        reference = [(t.start, t.end, t.speaker) for t in item.reference_turns(audio.duration)]
        hypothesis = [(t.start, t.end, t.speaker) for t in result.full]
        zero.append(scoring.diarization_scores(reference, hypothesis, duration=audio.duration))
        wide.append(scoring.diarization_scores(reference, hypothesis, duration=audio.duration, collar=0.25))
        costs.append(spent)
        done, chunks = spent["embedded"] or (0, 0)  # None: every window (stride 1) or no speech
        embedded = [embedded[0] + done, embedded[1] + chunks]
        minutes += audio.duration / 60
    return {"der": scoring.combine_diarization_scores(zero)["der"],
            "der_collar": scoring.combine_diarization_scores(wide)["der"],
            "median_der": statistics.median(z["der"] for z in zero),
            "embedded": embedded[0] / embedded[1] if embedded[1] else 1.0,
            "per_minute": {k: sum(c[k] for c in costs) / minutes for k in STAGES}}


def request_ratio(asr_model: str, pipeline: str, audio_path: Path, steps: list[float], strides: list[int],
                  runs: int) -> None:
    """The same request with and without diarization on the handler (in-process), per
    segmentation step and embedding stride: minimum over `runs` alternated runs, wall seconds."""
    from evaluation.in_process import build_handler
    from speech_endpoint import compat
    from speech_endpoint.attribution.diarizer import install

    handler = build_handler(ASR_MODEL=asr_model, DIARIZATION_MODEL=pipeline, WARMUP="true")
    body = {"inputs": audio_path.read_bytes(), "parameters": {"language": "en"}}
    plain = {"inputs": body["inputs"], "parameters": {"language": "en", "diarize": False}}
    handler(dict(body))  # warm both paths
    variants = [(step, stride) for step in steps for stride in strides]
    times = {"none": []} | {v: [] for v in variants}
    for _ in range(runs):
        for step, stride in variants:
            compat.set_segmentation_step(handler.diarizer.pipeline, step)
            install(handler.diarizer.pipeline, stride)
            started = time.perf_counter()
            handler(dict(body))
            times[step, stride].append(time.perf_counter() - started)
        started = time.perf_counter()
        handler(dict(plain))
        times["none"].append(time.perf_counter() - started)
    base = min(times["none"])
    print(f"\n| request ({audio_path.name}) | wall s (min of {runs}) | / without diarization |\n|---|---|---|")
    print(f"| without diarization | {base:.2f} | 1.00 |")
    for step, stride in variants:
        print(f"| diarized, step {step:g}, embedding stride {stride} | {min(times[step, stride]):.2f} "
              f"| {min(times[step, stride]) / base:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("inputs", nargs="+",
                        help="sets, each reported on its own: audio files with .rttm beside them, folders or manifests")
    parser.add_argument("--steps", type=float, nargs="+", default=[0.1],
                        help="segmentation steps, as a share of the 10 s window")
    parser.add_argument("--strides", type=int, nargs="+", default=[1],
                        help="embedding strides (1: every chunk embedded, pyannote's own)")
    parser.add_argument("--min-agreement", type=float, nargs="+", default=[None],
                        help="activity agreement for reusing an embedding (default: the module's)")
    parser.add_argument("--asr-model", help="also time a request with and without diarization")
    parser.add_argument("--request-audio", type=Path, help="the request's audio (with --asr-model)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from speech_endpoint.attribution.diarizer import DEFAULT_MIN_AGREEMENT, Diarizer, install
    from speech_endpoint.speech.audio import decode

    sets = {Path(raw).name: [i for i in discover([raw]) if i.rttm] for raw in args.inputs}
    decoded = {i.uri: decode(i.audio.read_bytes()) for items in sets.values() for i in items}
    print("| step | embedding stride | agreement | set | DER (collar 0) | DER (collar 0.25 s) | median DER "
          "| windows embedded | CPU s per minute of audio: segmentation / embeddings / other / total |")
    print("|---|---|---|---|---|---|---|---|---|")
    for step in args.steps:
        diarizer = Diarizer(args.pipeline, segmentation_step=step)
        for stride in args.strides:
            for agreement in args.min_agreement:
                agreement = DEFAULT_MIN_AGREEMENT if agreement is None else agreement
                install(diarizer.pipeline, stride, agreement)
                for name, items in sets.items():
                    s = score_set(diarizer, items, decoded)
                    print(f"| {step:g} | {stride} | {agreement:g} | {name} | {s['der']:.2%} | {s['der_collar']:.2%} | "
                          f"{s['median_der']:.2%} | {s['embedded']:.0%} | " + " / ".join(f"{s['per_minute'][k]:.2f}" for k in STAGES) + " |",
                          flush=True)
    if args.asr_model:
        request_ratio(args.asr_model, args.pipeline, args.request_audio, args.steps, args.strides, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
