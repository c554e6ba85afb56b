#!/usr/bin/env python
"""Recognition on real recordings: does the endpoint return the speech that is there?

    OMP_NUM_THREADS=1 ASR_MODEL=/work/shared/models/whisper-base \\
        python -m evaluation.real_speech /work/shared/audio/ami-dev [--sequential] [--peers]

Inputs: folders (every `<stem>.wav` with a `<stem>.txt` or `.stm` transcript beside it; a `<stem>.rttm`
adds the speech-without-words column) or audio files. For each file and each system:
reference words, words returned, WER (Whisper's English normaliser, pooled over words:
summed errors over summed reference words) and seconds of reference speech with no word
within `--reach` s (a skip shows here: a stretch Whisper never decoded). The handler rows
also give what the speech guard did (`metadata.redecoded`).

Systems, all on the same checkpoint (ASR_MODEL, a local folder) and thread count:
  handler      this endpoint, default parameters (windows of 30 s);
  sequential   the same handler with `chunk_length_s: 0` (`--sequential`);
  fw-float32   faster-whisper float32 sequential, greedy, temperature 0, word timestamps,
               as `evaluation.peers` runs it (`--peers`; skipped, saying why, when it is not
               installed: requirements-peers.txt).
The check at the end is issue 25's: handler pooled WER no worse than faster-whisper's, and
no file where the handler returns under half faster-whisper's words at a worse WER.

ami-dev: AMI Meeting Corpus excerpts (CC BY 4.0; Carletta et al., "The AMI Meeting Corpus:
A Pre-Announcement", MLMI 2005), read from where they lie, never copied.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from evaluation import in_process, peers  # noqa: E402
from evaluation.oracle_diarization import rttm_turns  # noqa: E402
from evaluation.scoring import normalize, read_stm, wer_counts  # noqa: E402
from speech_endpoint.attribution.turns import Coverage  # noqa: E402

REACH_S = 1.0  # reference speech farther than this from every word counts as without words


@dataclass
class Clip:
    name: str
    audio: Path
    reference: str
    speech: list[tuple[float, float]]  # reference speech (union of turns), empty without .rttm


def clips(paths: Sequence[str | Path]) -> list[Clip]:
    found = []
    for path in map(Path, paths):
        for wav in sorted(path.glob("*.wav")) if path.is_dir() else [path]:
            txt, stm, rttm = wav.with_suffix(".txt"), wav.with_suffix(".stm"), wav.with_suffix(".rttm")
            if txt.is_file():
                reference = txt.read_text()
            elif stm.is_file():
                reference = " ".join(row[3] for row in read_stm(stm))
            else:
                continue
            turns = Coverage([(t.start, t.end) for t in rttm_turns(rttm)] if rttm.is_file() else [])
            found.append(Clip(wav.stem, wav, " ".join(reference.split()), list(zip(turns.starts, turns.ends))))
    return found


def speech_without_words(speech: Sequence[tuple[float, float]], words: Sequence[tuple[float, float]],
                         reach: float = REACH_S) -> float:
    """Seconds of `speech` farther than `reach` from every word span."""
    near = Coverage([(max(0.0, s - reach), e + reach) for s, e in words])
    return sum((e - s) - near.overlap(s, e) for s, e in speech)


def handler_system(handler, parameters: dict) -> Callable[[Path], dict]:
    def run(path: Path) -> dict:
        out = handler({"inputs": path.read_bytes(), "parameters": parameters})
        words = [(w["start"], w["end"]) for w in out.get("words", [])]
        return {"text": out["text"], "words": words, "redecoded": out["metadata"].get("redecoded"),
                "notes": out["metadata"]["notes"]}
    return run


def faster_whisper_system(model_dir: str, threads: int) -> Callable[[Path], dict]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(peers.ct2_model(model_dir, peers.DEFAULT_CT2_CACHE)), device="cpu",
                         compute_type="float32", cpu_threads=threads, num_workers=1)

    def run(path: Path) -> dict:
        import soundfile as sf

        samples, _ = sf.read(str(path), dtype="float32")
        segments, _ = model.transcribe(samples, language="en", beam_size=1, temperature=0.0, word_timestamps=True)
        segments = list(segments)
        words = [(w.start, w.end) for s in segments for w in (s.words or [])]
        return {"text": " ".join(s.text.strip() for s in segments), "words": words}
    return run


def score(clip: Clip, result: dict) -> dict:
    errors, ref_words = wer_counts(clip.reference, result["text"])
    return {"errors": errors, "ref_words": ref_words, "words": len(normalize(result["text"]).split()),
            "no_words_s": speech_without_words(clip.speech, result["words"]),
            **{k: result[k] for k in ("redecoded", "notes") if result.get(k)}}


def pooled(rows: dict[str, dict]) -> dict:
    ref = sum(r["ref_words"] for r in rows.values())
    return {"wer": sum(r["errors"] for r in rows.values()) / max(ref, 1), "ref_words": ref,
            "words": sum(r["words"] for r in rows.values()),
            "no_words_s": sum(r["no_words_s"] for r in rows.values()),
            "time_s": sum(r["time_s"] for r in rows.values())}


def skips(system: dict[str, dict], peer: dict[str, dict]) -> list[str]:
    """Files where `system` returns under half `peer`'s words at a worse WER."""
    return [name for name, row in system.items() if name in peer and row["words"] < 0.5 * peer[name]["words"]
            and row["errors"] > peer[name]["errors"]]


def markdown(results: dict[str, dict[str, dict]]) -> str:
    systems = list(results)
    names = list(next(iter(results.values())))
    head = "| clip | ref words | " + " | ".join(f"{s} words / WER / s without words" for s in systems) + " |"
    lines = [head, "|" + "---|" * (2 + len(systems))]
    for name in names + ["pooled"]:
        first = pooled(results[systems[0]]) if name == "pooled" else results[systems[0]][name]
        cells = []
        for s in systems:
            r = pooled(results[s]) if name == "pooled" else results[s][name]
            wer = r["wer"] if name == "pooled" else r["errors"] / max(r["ref_words"], 1)
            cells.append(f"{r['words']} / {wer:.3f} / {r['no_words_s']:.1f}")
        lines.append(f"| {name} | {first['ref_words']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--sequential", action="store_true", help="also the handler with chunk_length_s 0")
    parser.add_argument("--peers", action="store_true", help="also faster-whisper float32 sequential")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the per-file results here")
    args = parser.parse_args(argv)
    items = clips(args.paths)
    if not items:
        raise SystemExit("no <stem>.wav with a <stem>.txt or <stem>.stm beside it among the inputs")
    handler = in_process.build_handler(CPU_THREADS=str(args.threads), DIARIZATION_MODEL=None, ASSISTANT_MODEL=None)
    systems: dict[str, Callable[[Path], dict]] = {"handler": handler_system(handler, {})}
    if args.sequential:
        systems["sequential"] = handler_system(handler, {"chunk_length_s": 0})
    if args.peers:
        missing = peers.faster_whisper_missing()
        if missing:
            print(f"skipping faster-whisper: {missing}", flush=True)
        else:
            systems["fw-float32"] = faster_whisper_system(handler.settings.asr_model, args.threads)
    results: dict[str, dict[str, dict]] = {name: {} for name in systems}
    for clip in items:
        for name, run in systems.items():
            started = time.process_time()
            row = score(clip, run(clip.audio))
            row["time_s"] = time.process_time() - started
            results[name][clip.name] = row
            notes = "; ".join(row.get("notes", []))
            print(f"{clip.name} {name}: {row['words']}/{row['ref_words']} words, errors {row['errors']}, "
                  f"{row['no_words_s']:.1f} s without words{' | ' + notes if notes else ''}", flush=True)
    print()
    print(markdown(results))
    for name, rows in results.items():
        p = pooled(rows)
        print(f"{name}: pooled WER {p['wer']:.3f}, {p['words']} words of {p['ref_words']}, "
              f"{p['no_words_s']:.1f} s of speech without words, {p['time_s']:.1f} CPU s")
    if "fw-float32" in results:
        handler_wer, peer_wer = pooled(results["handler"])["wer"], pooled(results["fw-float32"])["wer"]
        print(f"check: pooled WER handler {handler_wer:.3f} <= faster-whisper {peer_wer:.3f}: "
              f"{'yes' if handler_wer <= peer_wer else 'NO'}; skips against faster-whisper: "
              f"{skips(results['handler'], results['fw-float32']) or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
