"""Latency benchmark: the handler in-process (and optionally the local server over HTTP)
on short and long audio, assisted or not, with and without diarization, against the
plain transformers pipeline with the reference settings (chunk 30 s, batch 24, greedy,
timestamps) measured in the same run.

    ASR_MODEL=openai/whisper-large-v3 ASSISTANT_MODEL=distil-whisper/distil-large-v3 \\
        python -m evaluation.benchmark --audio speech.wav --runs 5 --output bench

Short audio is the first `--short-s` seconds of `--audio`, long audio is its first
`--long-s` seconds. Every row reports min / median / p90 / p95 / max over `--runs` timed
runs after `--warmup` untimed ones, the real-time factor (median / audio seconds) and the
peak RSS of this process. Results go to OUTPUT.md and OUTPUT.json.

`--peers` prints the peer table instead (evaluation/peers.py): this handler's variants,
faster-whisper float32/int8, sequential and batched (when installed: requirements-peers.txt)
and the original transformers pipeline on the long clip, with the issue's ratios:

    ASR_MODEL=path/to/whisper-base python -m evaluation.benchmark --peers --audio dialogue.wav \
        --reference-text dialogue.txt --threads 1 --runs 3 --ct2-cache ~/.cache/speech-endpoint/ct2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from evaluation.local_server import REPO, LocalServer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", required=True, help="speech file to cut the short/long clips from")
    p.add_argument("--reference-text", help="transcript of the long clip, to report WER beside latency")
    p.add_argument("--short-s", type=float, default=8.0)
    p.add_argument("--long-s", type=float, default=60.0)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    p.add_argument("--only", nargs="*", default=None,
                   help="subset of rows: handler, reference, assisted, diarization, server")
    p.add_argument("--server", action="store_true", help="also time the local server over HTTP")
    p.add_argument("--params", default="{}", help="extra JSON parameters for every handler request")
    p.add_argument("--output", default="benchmark", help="output path prefix (.md and .json)")
    p.add_argument("--peers", action="store_true",
                   help="the peer table on the long clip instead: handler variants, faster-whisper, pipeline")
    p.add_argument("--language", default="en", help="--peers: language given to every system; auto: detected by each")
    p.add_argument("--ct2-cache", default=None,
                   help="--peers: folder for the CTranslate2 copy of ASR_MODEL (default ~/.cache/speech-endpoint/ct2)")
    return p.parse_args(argv)


def summarize(times: list[float], audio_s: float) -> dict:
    ordered = sorted(times)

    def pct(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    median = statistics.median(ordered)
    return {"runs": len(ordered), "min": ordered[0], "median": median, "p90": pct(0.9), "p95": pct(0.95),
            "max": ordered[-1], "rtf": median / audio_s if audio_s else None}


def time_it(fn, runs: int, warmup: int) -> tuple[list[float], object]:
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_pipeline(model_id: str, token: str | None, *, return_timestamps: bool | str = True,
                       language: str | None = None):
    """The plain transformers pipeline with the reference settings (the seed article's);
    `return_timestamps="word"` for word timings, `language` given instead of detected."""
    from transformers import AutoModelForSpeechSeq2Seq, pipeline

    from speech_endpoint import compat
    from speech_endpoint.whisper.precision import choose

    placement = choose("auto")
    device, dtype = placement.device, placement.dtype
    model = AutoModelForSpeechSeq2Seq.from_pretrained(model_id, token=token, attn_implementation="sdpa",
                                                      **compat.dtype_kwargs(dtype)).to(device)
    processor = compat.load_processor(model_id, token)
    pipe = pipeline("automatic-speech-recognition", model=model, tokenizer=processor.tokenizer,
                    feature_extractor=processor.feature_extractor, device=device)

    def run(samples):
        generate_kwargs = {"task": "transcribe", **compat.greedy_generate_kwargs(),
                           **({"language": language} if language else {})}
        out = pipe({"raw": samples, "sampling_rate": 16000}, chunk_length_s=30, batch_size=24,
                   return_timestamps=return_timestamps, generate_kwargs=generate_kwargs)
        return out["text"]

    return run


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.peers:
        from evaluation import peers

        return peers.main(args)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    from config import ModelSettings
    from handler import EndpointHandler
    from speech_endpoint.speech.audio import decode

    settings = ModelSettings.from_env()
    full = decode(Path(args.audio).read_bytes())
    clips = {"short": full.samples[: int(args.short_s * 16000)], "long": full.samples[: int(args.long_s * 16000)]}
    wanted = set(args.only) if args.only else {"handler", "reference", "assisted", "diarization"}
    extra = json.loads(args.params)

    import soundfile as sf
    import io

    def wav(samples):
        buf = io.BytesIO()
        sf.write(buf, samples, 16000, format="WAV", subtype="FLOAT")
        return buf.getvalue()

    rows, texts = [], {}
    load_start = time.perf_counter()
    handler = EndpointHandler(str(REPO))
    load_s = time.perf_counter() - load_start
    has_assistant = handler.asr.assistant is not None
    has_diarizer = handler.diarizer is not None

    def add(name, clip, times, **extra_fields):
        audio_s = len(clips[clip]) / 16000
        row = {"row": name, "clip": clip, "audio_s": round(audio_s, 2), **summarize(times, audio_s),
               "peak_rss_mb": round(peak_rss_mb()), **extra_fields}
        rows.append(row)
        print(json.dumps(row), flush=True)

    for clip, samples in clips.items():
        body = wav(samples)
        variants = []
        if "handler" in wanted:
            variants.append(("handler", {"assisted": False, "diarize": False}))
        if "assisted" in wanted and has_assistant:
            variants.append(("handler assisted", {"assisted": True, "diarize": False}))
        if "diarization" in wanted and has_diarizer:
            variants.append(("handler + diarization", {"assisted": False}))
            if has_assistant and "assisted" in wanted:
                variants.append(("handler assisted + diarization", {"assisted": True}))
        for name, params in variants:
            params = {**params, **extra} if has_diarizer else {k: v for k, v in {**params, **extra}.items() if k != "diarize"}
            times, out = time_it(lambda: handler({"inputs": body, "parameters": params}), args.runs, args.warmup)
            texts[(name, clip)] = out["text"]
            add(name, clip, times)

    if "reference" in wanted:
        ref = reference_pipeline(settings.asr_model, settings.token)
        for clip, samples in clips.items():
            times, text = time_it(lambda: ref(np.array(samples)), args.runs, args.warmup)
            texts[("reference pipeline", clip)] = text
            add("reference pipeline (chunk 30, batch 24, timestamps)", clip, times)

    if args.server:
        del handler  # the server loads its own copy
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        with LocalServer(env=env, startup_timeout=600) as server:
            import requests

            url = server.url + "/"
            for clip, samples in clips.items():
                body = wav(samples)
                post = lambda: requests.post(url, data=body, headers={"Content-Type": "audio/wav"},  # noqa: E731
                                             params={"diarize": "false"} if has_diarizer else None, timeout=600)
                times, response = time_it(post, args.runs, args.warmup)
                response.raise_for_status()
                add("server over HTTP", clip, times)

    quality = {}
    if args.reference_text:
        from evaluation.scoring import wer

        reference = Path(args.reference_text).read_text()
        for (name, clip), text in texts.items():
            if clip == "long":
                quality[name] = round(wer(reference, text), 4)

    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                          "cuda": torch.cuda.is_available(),
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "models": {"asr": settings.asr_model, "assistant": settings.assistant_model,
                         "diarization": settings.diarization_model},
              "load_s": round(load_s, 2), "rows": rows, "wer_long": quality}
    _ratios(report)
    save_report(report, args.output, markdown(report))
    return 0


def save_report(report: dict, output: str, text: str) -> None:
    """OUTPUT.json (the numbers) and OUTPUT.md (the table, also printed)."""
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(text)
    print(text)


def _ratios(report: dict) -> None:
    """Speed-up of the handler over the reference pipeline, per clip, from the same run."""
    by = {(r["row"], r["clip"]): r["median"] for r in report["rows"]}
    ratios = {}
    for clip in ("short", "long"):
        ref = by.get(("reference pipeline (chunk 30, batch 24, timestamps)", clip))
        mine = by.get(("handler", clip))
        if ref and mine:
            ratios[clip] = round(ref / mine, 2)
    report["speedup_vs_reference"] = ratios


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Models: ASR `{report['models']['asr']}`, assistant `{report['models']['assistant']}`, "
             f"diarization `{report['models']['diarization']}`; {m['threads']} thread(s), "
             f"{'GPU ' + str(m['gpu']) if m['cuda'] else 'CPU'}; load {report['load_s']} s.", "",
             "| row | clip | audio s | min | median | p90 | p95 | max | RTF | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['row']} | {r['clip']} | {r['audio_s']} | {r['min']:.2f} | {r['median']:.2f} | "
                     f"{r['p90']:.2f} | {r['p95']:.2f} | {r['max']:.2f} | {r['rtf']:.3f} | {r['peak_rss_mb']} |")
    if report.get("speedup_vs_reference"):
        lines += ["", "Handler speed-up over the reference pipeline (median, same run): "
                  + ", ".join(f"{k} {v}x" for k, v in report["speedup_vs_reference"].items())]
    if report.get("wer_long"):
        lines += ["", "WER on the long clip: " + ", ".join(f"{k} {v:.1%}" for k, v in report["wer_long"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
