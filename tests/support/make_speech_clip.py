"""Writes tests/data/speech.flac: 10 s of two synthetic voices (espeak-ng), the speech the
tests send where the speech detector must find speech; and tests/data/stranger.flac, a
voice unlike the dev dialogue's two (a known-speaker reference that must match nobody).
Committed, so the tests need no espeak-ng; rerun only to change them:

    PYTHONPATH=tests python -m support.make_speech_clip
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speech_endpoint.speech.audio import resample
from speech_endpoint.schema import SAMPLE_RATE

DATA = Path(__file__).resolve().parent.parent / "data"
STRANGER = ("fr+f2", "The quarterly numbers came in this morning and they look better than we expected.")
LINES = [("en-us+m3", "Good morning everyone, thanks for joining the call."),
         ("en+f3", "Morning. Shall we start with the budget?"),
         ("en-us+m3", "Yes, the numbers look fine this week.")]


def espeak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "line.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(path), text], check=True)
        samples, rate = sf.read(path, dtype="float32")
    return resample(samples, rate, SAMPLE_RATE)


def write(name: str, lines: list[tuple[str, str]]) -> None:
    pause = np.zeros(int(0.4 * SAMPLE_RATE), np.float32)
    parts = []
    for voice, text in lines:
        parts += [espeak(voice, text), pause]
    samples = np.concatenate([pause, *parts])
    DATA.mkdir(exist_ok=True)
    sf.write(DATA / name, 0.8 * samples / np.abs(samples).max(), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    print(DATA / name, f"{len(samples) / SAMPLE_RATE:.1f} s")


def main() -> None:
    write("speech.flac", LINES)
    write("stranger.flac", [STRANGER])


if __name__ == "__main__":
    main()
