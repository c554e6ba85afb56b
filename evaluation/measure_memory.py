#!/usr/bin/env python
"""Peak memory (RSS) of the handler on long audio: one fresh process per length.

    OMP_NUM_THREADS=1 python -m evaluation.measure_memory --minutes 10 30
    python -m evaluation.measure_memory --model /path/to/whisper --audio speech.wav --minutes 1 10 30

For each length a child process builds `EndpointHandler` (ASR_MODEL = --model, no
assistant, no diarization unless --diarization-model), measures its RSS after loading,
builds a WAV of that length by repeating --audio (a 16-bit WAV, the real 60 s dialogue by
default) and sends it through the handler once, as the platform would (raw bytes). The
child reports the kernel's high-water mark (`ru_maxrss`) before and after the request;
the parent also samples the child's RSS with psutil and cross-checks with
`RUSAGE_CHILDREN`. A markdown table goes to stdout, `--json` writes the raw rows.

The interesting number is "request peak - after load": what one request of that length
costs on top of the loaded models. It should grow far slower than the audio (the audio is
decoded once into float32, 64 kB per second at 16 kHz; Whisper sees it in 30 s windows,
`batch_size` at a time).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "/work/shared/models/whisper-base"
DEFAULT_AUDIO = "/work/shared/audio/dialogue/dialogue.wav"
MB = 1024 * 1024


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _maxrss_self() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def long_wav(source: str, seconds: float) -> bytes:
    """A 16 kHz mono 16-bit WAV of `seconds`, the source's samples repeated (built as one
    buffer, so the payload costs its own size and no more)."""
    import numpy as np
    import soundfile as sf

    from speech_endpoint.speech.audio import resample

    samples, rate = sf.read(source, dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate != 16000:
        mono = resample(mono, rate, 16000)
    pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes()
    total = int(seconds * 16000) * 2
    data = (pcm * (total // len(pcm) + 1))[:total]
    header = io.BytesIO()
    sf.write(header, np.zeros(0, np.int16), 16000, format="WAV", subtype="PCM_16")
    head = bytearray(header.getvalue())  # 44-byte canonical header with zero sizes
    head[4:8] = (36 + total).to_bytes(4, "little")
    head[40:44] = total.to_bytes(4, "little")
    return bytes(head) + data


def child(args: argparse.Namespace) -> int:
    """Runs in a fresh process: load, measure, one request, measure; prints one JSON line."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    os.environ["ASR_MODEL"] = args.model
    os.environ.pop("ASSISTANT_MODEL", None)
    if args.diarization_model:
        os.environ["DIARIZATION_MODEL"] = args.diarization_model
    else:
        os.environ.pop("DIARIZATION_MODEL", None)
    os.environ.setdefault("MAX_AUDIO_S", str(4 * 3600))
    started = time.perf_counter()
    from handler import EndpointHandler

    handler = EndpointHandler(str(REPO))
    load_s = time.perf_counter() - started
    row = {"minutes": args.child_minutes, "load_s": round(load_s, 1),
           "rss_after_load": _rss(), "peak_after_load": _maxrss_self()}
    payload = long_wav(args.audio, args.child_minutes * 60)
    row["payload_bytes"] = len(payload)
    row["rss_with_payload"] = _rss()
    params = {"batch_size": args.batch_size, "diarize": bool(args.diarization_model)}
    if args.language:
        params["language"] = args.language
    started = time.perf_counter()
    out = handler({"inputs": payload, "parameters": params})
    row["request_s"] = round(time.perf_counter() - started, 1)
    row["peak_after_request"] = _maxrss_self()
    row["rss_after_request"] = _rss()
    row["words"] = len(out.get("words") or [])
    row["text_chars"] = len(out["text"])
    row["audio_s"] = out["metadata"]["duration"]
    print("RESULT " + json.dumps(row), flush=True)
    return 0


def run_one(args: argparse.Namespace, minutes: float) -> dict:
    import psutil

    argv = [sys.executable, "-m", "evaluation.measure_memory", "--child-minutes", str(minutes), "--model", args.model,
            "--audio", args.audio, "--batch-size", str(args.batch_size)]
    if args.language:
        argv += ["--language", args.language]
    if args.diarization_model:
        argv += ["--diarization-model", args.diarization_model]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYANNOTE_METRICS_ENABLED": "0",
           "WARMUP": os.environ.get("WARMUP", "false")}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampled = [0]
    stop = threading.Event()

    def sample():
        ps = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                sampled[0] = max(sampled[0], ps.memory_info().rss)
            except psutil.Error:
                return
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"child for {minutes} min failed ({proc.returncode}):\n{err[-3000:]}")
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    row = json.loads(line[len("RESULT "):])
    row["psutil_peak"] = sampled[0]
    return row


def table(rows: list[dict], model: str, batch_size: int) -> str:
    lines = [
        f"Peak RSS of `EndpointHandler` per request length ({Path(model).name}, CPU, "
        f"batch_size {batch_size}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}; "
        "one fresh process per row):",
        "",
        "| audio | payload | RSS after load | peak during request | request cost (peak - load) | RSS after | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peak = max(r["peak_after_request"], r["psutil_peak"])
        lines.append(
            f"| {r['minutes']:g} min | {r['payload_bytes'] / MB:.0f} MB | {r['rss_after_load'] / MB:.0f} MB "
            f"| {peak / MB:.0f} MB | +{(peak - r['rss_after_load']) / MB:.0f} MB "
            f"| {r['rss_after_request'] / MB:.0f} MB | {r['request_s']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 30], help="audio lengths to measure")
    p.add_argument("--model", default=os.environ.get("ASR_MODEL") or DEFAULT_MODEL, help="Whisper folder or id")
    p.add_argument("--diarization-model", default=None, help="also diarize (off by default)")
    p.add_argument("--audio", default=DEFAULT_AUDIO, help="speech to repeat (any file soundfile reads)")
    p.add_argument("--batch-size", type=int, default=24, help="the request's batch_size (the default is 24)")
    p.add_argument("--language", default="en", help="request language ('' to detect)")
    p.add_argument("--json", help="write the rows here as JSON")
    p.add_argument("--child-minutes", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_minutes is not None:
        return child(args)
    rows = []
    for minutes in args.minutes:
        print(f"measuring {minutes:g} min ...", file=sys.stderr, flush=True)
        row = run_one(args, minutes)
        print(f"  {json.dumps(row)}", file=sys.stderr, flush=True)
        rows.append(row)
    print(table(rows, args.model, args.batch_size))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
