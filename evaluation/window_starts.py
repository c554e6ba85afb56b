#!/usr/bin/env python
"""How much one file's WER depends on where its window starts: Whisper (plain transformers
`generate`, greedy, float32, no timestamps) on the audio from each start time to the end
(at most 30 s, one window), scored against the file's .stm.

    OMP_NUM_THREADS=1 python -m evaluation.window_starts /path/to/whisper-base sample.wav \\
        --starts 0 0.5 0.88 1.5 2.5 3.5 4.5 5.5 6 6.48

On the pyannote telephone sample this gives 17.2% from every start but 0.88 s (14.9%), the
start the old energy gate happened to choose (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evaluation.scoring import read_stm, wer
from speech_endpoint import compat
from speech_endpoint.speech.audio import decode
from speech_endpoint.schema import SAMPLE_RATE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="Whisper checkpoint folder")
    parser.add_argument("audio", type=Path, help="audio file with its .stm beside it")
    parser.add_argument("--starts", type=float, nargs="+", required=True, help="window start times (s)")
    parser.add_argument("--language", default="en")
    args = parser.parse_args(argv)

    from transformers import AutoModelForSpeechSeq2Seq

    torch.set_num_threads(1)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(args.model, **compat.dtype_kwargs(torch.float32)).eval()
    processor = compat.load_processor(args.model)
    samples = decode(args.audio.read_bytes()).samples
    reference = " ".join(row[3] for row in sorted(read_stm(args.audio.with_suffix(".stm")), key=lambda r: r[1]))
    print("| start s | WER | end of the transcript |\n|---|---|---|")
    for start in args.starts:
        piece = samples[int(start * SAMPLE_RATE):][:30 * SAMPLE_RATE]
        features = processor.feature_extractor(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        with torch.inference_mode():
            out = model.generate(features, language=args.language, task="transcribe", return_timestamps=False,
                                 **compat.greedy_generate_kwargs())
        text = processor.batch_decode(out, skip_special_tokens=True)[0].strip()
        print(f"| {start:g} | {100 * wer(reference, text):.1f}% | …{text[-50:]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
