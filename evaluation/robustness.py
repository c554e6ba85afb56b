"""Speech, not noise: the handler on generated non-speech (music, clicks, hum with beeps,
babble-like noise), on music inserted between two turns of the dev dialogue, and on the
dialogue under pink noise (5 and 0 dB SNR) and attenuated by 35 dB; WER where there is a
reference. The same cases run, fewer and shorter, in tests/test_speech_activity.py.

    ASR_MODEL=/path/to/whisper-base python -m evaluation.robustness \\
        --dialogue /path/to/dialogue --telephone /path/to/sample.wav --output robustness.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation import noise
from evaluation.scoring import read_stm, wer
from speech_endpoint.speech.audio import decode

SR = noise.SR
MUSIC_CUT = (10.41, 25.42)  # the dialogue is cut in the pauses before and after these times


@dataclass(frozen=True)
class Case:
    name: str
    samples: np.ndarray
    reference: str | None = None  # text; None: no speech expected at all
    forbidden: tuple[float, float] | None = None  # no word may lie inside this span (s)


def wav_bytes(samples: np.ndarray) -> bytes:
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, SR, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def non_speech_cases(seconds: float = 20.0, seed: int = 0) -> list[Case]:
    return [Case(name, make(seconds, seed)) for name, make in noise.NON_SPEECH.items()]


def dialogue_cases(dialogue_dir: Path) -> list[Case]:
    """The dev dialogue clean, under pink noise, attenuated, and with 12 s of music inserted
    between two of its turns (reference: the words of the turns kept)."""
    speech = decode((dialogue_dir / "dialogue.wav").read_bytes()).samples
    text = (dialogue_dir / "dialogue.txt").read_text()
    first, last = (int(t * SR) for t in MUSIC_CUT)
    with_music, span = noise.with_insert(speech[:first], noise.music_notes(12.0, seed=1), speech[first:last])
    kept = " ".join(row[3] for row in read_stm(dialogue_dir / "dialogue.stm") if row[2] <= MUSIC_CUT[1])
    return [
        Case("dialogue clean", speech, text),
        Case("dialogue + pink noise 5 dB SNR", noise.with_pink_noise(speech, 5.0), text),
        Case("dialogue + pink noise 0 dB SNR", noise.with_pink_noise(speech, 0.0), text),
        Case("dialogue attenuated 35 dB", noise.attenuated(speech, 35.0), text),
        Case("dialogue with 12 s of music between turns", with_music, kept, forbidden=span),
    ]


def telephone_case(wav: Path) -> Case:
    stm = wav.with_suffix(".stm")
    reference = " ".join(row[3] for row in read_stm(stm)) if stm.is_file() else None
    return Case("telephone sample", decode(wav.read_bytes()).samples, reference)


def shifted(case: Case, shift_ms: int) -> Case:
    """The case behind `shift_ms` of silence: where windows start moves by that much, the
    speech does not (how much of a WER is where the windows happened to fall)."""
    pad = np.zeros(int(SR * shift_ms / 1000), np.float32)
    return Case(f"{case.name}, +{shift_ms} ms", np.concatenate([pad, case.samples]), case.reference)


def words_inside(response: dict, span: tuple[float, float]) -> list[dict]:
    """Words whose middle lies inside `span`."""
    return [w for w in response.get("words", []) if span[0] < (w["start"] + w["end"]) / 2 < span[1]]


def run_case(handler, case: Case, parameters: dict | None = None) -> dict:
    started = time.perf_counter()
    response = handler({"inputs": wav_bytes(case.samples), "parameters": dict(parameters or {})})
    row = {"case": case.name, "seconds": round(len(case.samples) / SR, 2),
           "time_s": round(time.perf_counter() - started, 2), "text": response["text"],
           "words": len(response.get("words", [])),
           "speech_s": response["metadata"].get("speech_s")}
    if case.reference is not None:
        row["wer"] = round(wer(case.reference, response["text"]), 4)
    if case.forbidden is not None:
        row["words_inside_insert"] = [w["word"] for w in words_inside(response, case.forbidden)]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogue", type=Path, default=os.environ.get("DIALOGUE_DIR"))
    parser.add_argument("--telephone", type=Path, help="a .wav with its .stm beside it")
    parser.add_argument("--params", default="{}", help="JSON parameters for every request")
    parser.add_argument("--shifts", type=int, nargs="*", default=[],
                        help="also the clean dialogue and the telephone sample behind these many ms of silence")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from handler import EndpointHandler

    handler = EndpointHandler(str(Path(__file__).resolve().parent.parent))
    cases = non_speech_cases()
    if args.dialogue:
        cases += dialogue_cases(Path(args.dialogue))
    if args.telephone:
        cases.append(telephone_case(args.telephone))
    cases += [shifted(case, ms) for case in cases if case.name in ("dialogue clean", "telephone sample")
              for ms in args.shifts]
    rows = []
    for case in cases:
        rows.append(run_case(handler, case, json.loads(args.params)))
        print(json.dumps(rows[-1]), flush=True)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n| case | WER | words | words inside the music | time s |\n|---|---|---|---|---|")
    for r in rows:
        wer_text = f"{100 * r['wer']:.1f}%" if "wer" in r else "–"
        inside = ", ".join(r.get("words_inside_insert", [])) or ("none" if "words_inside_insert" in r else "–")
        print(f"| {r['case']} | {wer_text} | {r['words']} | {inside} | {r['time_s']} |")
    for name in ("dialogue clean", "telephone sample"):
        wers = sorted(r["wer"] for r in rows if r["case"].split(", +")[0] == name and "wer" in r)
        if len(wers) > 1:
            print(f"{name} over {len(wers)} window placements: WER {100 * wers[0]:.1f}-{100 * wers[-1]:.1f}%, "
                  f"median {100 * wers[len(wers) // 2]:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
