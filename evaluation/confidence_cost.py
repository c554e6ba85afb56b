"""What word confidence costs: Whisper's generation on the same windows with and without
the `TokenProbabilities` processor that reads each token's probability from the scores,
interleaved, medians of CPU time (the target is at most 3% of decoding time).

    ASR_MODEL=.../whisper-base python -m evaluation.confidence_cost --audio dialogue.wav --runs 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    import torch
    from transformers import LogitsProcessorList

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from speech_endpoint.schema import DecodeOptions
    from speech_endpoint.whisper.asr import WhisperASR
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.whisper.scores import TokenProbabilities
    from speech_endpoint.whisper.precision import choose
    from speech_endpoint.speech.silero import SileroVAD
    from speech_endpoint.speech.activity import activity_from_probabilities, speech_windows

    asr = WhisperASR(os.environ["ASR_MODEL"], placement=choose(os.environ.get("DEVICE", "auto"),
                                                                os.environ.get("CPU_BF16", "auto")))
    audio = decode(args.audio.read_bytes())
    vad = SileroVAD()
    activity = activity_from_probabilities(vad.probabilities(audio.samples), vad.frame_s, audio.duration)
    spans = speech_windows(activity, len(audio.samples), audio.sample_rate)
    options = DecodeOptions(language="en")
    with torch.inference_mode():
        features = asr.processor.feature_extractor([audio.samples[s:e] for s, e in spans], sampling_rate=16000,
                                                   return_tensors="pt").input_features
        encoded = asr.model.get_encoder()(features)
        kwargs = {"return_timestamps": False, **asr.generate_kwargs(options, "en")}

        def generate(with_probabilities: bool) -> float:
            extra = {"logits_processor": LogitsProcessorList([TokenProbabilities(asr.eot)])} if with_probabilities else {}
            started = time.thread_time()
            asr.model.generate(encoder_outputs=encoded, **kwargs, **extra)
            return time.thread_time() - started

        generate(True)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for flag in (False, True):
                times[flag].append(generate(flag))
    plain, scored = statistics.median(times[False]), statistics.median(times[True])
    print(f"{len(spans)} windows; generate CPU time, median of {args.runs}: without {plain:.3f} s, "
          f"with word confidence {scored:.3f} s: {100 * (scored / plain - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
