#!/usr/bin/env python
"""Load test for the local server: N concurrent clients, a mix of good and bad payloads,
for a bounded time; throughput, latency percentiles, status codes and the server's memory.

    # start scripts/serve.py on a free loopback port with these models, then load it
    OMP_NUM_THREADS=1 ASR_MODEL=/path/to/whisper python scripts/loadtest.py --clients 16 --duration 120
    # an already running local server (loopback addresses only)
    python scripts/loadtest.py --url http://127.0.0.1:8000 --clients 16 --duration 120

Each client thread loops until the time is up: pick a payload (good: a short speech clip as
a WAV/FLAC body or base64 JSON with assorted parameters; bad: invalid base64, random
bytes, an empty body, bad JSON, a bad parameter, an unsupported content type, ...), POST
it, record status and latency. Then every client waits for its last answer.

Pass criteria (exit status 1 otherwise):
- every request answered (no connection error, no client timeout);
- no 5xx other than 503 "busy" from the server's queue limit (MAX_QUEUE);
- good payloads get 200 (or that 503), bad ones 400 (or 413);
- the server's RSS grows less than --max-rss-growth % from the end of the warm-up
  (the first --warmup seconds) to the end.
Latency percentiles are over requests sent after the warm-up. A markdown summary is
printed at the end (and written to --markdown / --json when given).

Only loopback URLs are accepted: this is a tool for a local server, not for load-testing
someone's endpoint. The server started here binds to 127.0.0.1 without an API token;
with --url, an API token (if the server needs one) comes from the API_TOKEN environment
variable.
"""
from __future__ import annotations

import argparse
import base64
import io
import ipaddress
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from evaluation.local_server import LocalServer, RunningServer, ServerError, free_port, serve_argv

DEFAULT_AUDIO = "/work/shared/audio/dialogue/dialogue.wav"
MB = 1024 * 1024


# ---- payloads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    name: str
    good: bool
    path: str = "/predict"
    body: bytes = b""
    content_type: str | None = None
    params: dict = field(default_factory=dict)


def _speech(audio: str | None, seconds: float, count: int, seed: int):
    """`count` mono 16 kHz float32 clips of about `seconds`: cut from `audio` when it
    exists, else speech-like tone bursts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if audio and Path(audio).is_file():
        import soundfile as sf

        samples, rate = sf.read(audio, dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
        if rate != 16000:
            from speech_endpoint.speech.audio import resample

            samples = resample(samples, rate, 16000)
        length = int(seconds * 16000)
        if len(samples) > length:
            starts = rng.integers(0, len(samples) - length, count)
            return [samples[s:s + length] for s in starts]
        return [samples] * count
    t = np.arange(int(seconds * 16000)) / 16000
    clips = []
    for _ in range(count):
        envelope = ((t + rng.uniform(0, 0.7)) % 0.7) < 0.4
        clip = envelope * (0.3 * np.sin(2 * np.pi * rng.uniform(120, 300) * t) + 0.05 * rng.standard_normal(len(t)))
        clips.append(clip.astype(np.float32))
    return clips


def _encode(samples, fmt: str) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def build_payloads(audio: str | None, clip_seconds: float, seed: int = 0) -> list[Payload]:
    clips = _speech(audio, clip_seconds, 6, seed)
    good: list[Payload] = []
    param_sets = [{}, {"language": "en"}, {"diarize": False, "timestamp_granularity": "word"},
                  {"language": "en", "output_formats": ["srt", "vtt"]}, {"batch_size": 4, "task": "transcribe"}]
    for i, clip in enumerate(clips):
        wav, flac = _encode(clip, "WAV"), _encode(clip, "FLAC")
        params = param_sets[i % len(param_sets)]
        good.append(Payload(f"wav body #{i}", True, body=wav, content_type="audio/wav",
                            params={k: v for k, v in params.items() if not isinstance(v, list)}))
        good.append(Payload(f"flac body #{i}", True, body=flac, content_type="audio/flac"))
        good.append(Payload(f"json base64 #{i}", True, path="/", content_type="application/json",
                            body=json.dumps({"inputs": base64.b64encode(wav).decode(), "parameters": params}).encode()))
    wav = _encode(clips[0], "WAV")
    rnd = random.Random(seed)
    bad = [
        Payload("invalid base64", False, body=b'{"inputs": "%%% not base64"}', content_type="application/json"),
        Payload("base64 of text", False, content_type="application/json",
                body=json.dumps({"inputs": base64.b64encode(b"hello, not audio" * 50).decode()}).encode()),
        Payload("random bytes", False, body=rnd.randbytes(20000), content_type="audio/wav"),
        Payload("empty body", False, body=b"", content_type="audio/wav"),
        Payload("truncated wav header", False, body=wav[:20], content_type="audio/wav"),
        Payload("malformed json", False, body=b'{"inputs": ', content_type="application/json"),
        Payload("json without inputs", False, body=b'{"parameters": {}}', content_type="application/json"),
        Payload("inputs not a string", False, body=b'{"inputs": 42}', content_type="application/json"),
        Payload("bad parameter", False, body=wav, content_type="audio/wav", params={"batch_size": "many"}),
        Payload("unknown language", False, content_type="application/json",
                body=json.dumps({"inputs": base64.b64encode(wav).decode(), "parameters": {"language": "klingon"}}).encode()),
        Payload("text/plain", False, body=b"hello", content_type="text/plain"),
    ]
    return good + bad


# ---- the server --------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_server(args: argparse.Namespace) -> RunningServer:
    """scripts/serve.py in a subprocess on 127.0.0.1, or the running server of --url."""
    if args.url:
        return RunningServer(args.url, args.server_pid, startup_timeout=args.startup_timeout)
    env = dict(os.environ)
    for name in ("API_TOKEN", "HOST", "PORT", "ALLOW_UNAUTHENTICATED"):
        env.pop(name, None)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    if args.asr_model:
        env["ASR_MODEL"] = args.asr_model
    if args.diarization_model is not None:
        env["DIARIZATION_MODEL"] = args.diarization_model
    if not env.get("ASR_MODEL"):
        raise SystemExit("loadtest.py: set ASR_MODEL (or --asr-model) for the server to load, or pass --url")
    extra = ["--log-level", "warning"] + (["--max-queue", str(args.max_queue)] if args.max_queue is not None else [])
    return LocalServer(serve_argv(free_port(), *extra), env=env, log_path=args.server_log,
                       startup_timeout=args.startup_timeout)


# ---- the load ------------------------------------------------------------------------------


@dataclass
class Result:
    payload: str
    good: bool
    sent: float  # seconds since the start of the load
    latency: float
    status: int | None  # None: no answer (connection error or client timeout)
    error: str = ""
    busy: bool = False  # a 503 from the queue limit


def client_loop(url: str, payloads: list[Payload], stop_at: float, started: float, results: list[Result],
                lock: threading.Lock, seed: int, good_fraction: float, timeout: float, headers: dict) -> None:
    import requests

    rnd = random.Random(seed)
    good = [p for p in payloads if p.good]
    bad = [p for p in payloads if not p.good]
    session = requests.Session()
    while time.monotonic() < stop_at:
        payload = rnd.choice(good if rnd.random() < good_fraction else bad)
        sent = time.monotonic()
        status, error, busy = None, "", False
        try:
            h = dict(headers)
            if payload.content_type:
                h["Content-Type"] = payload.content_type
            response = session.post(url + payload.path, data=payload.body, params=payload.params, headers=h,
                                    timeout=timeout)
            status = response.status_code
            if status == 503:
                busy = "busy" in response.text and "Retry-After" in response.headers
            if status >= 400:
                try:
                    error = str(response.json().get("error", ""))[:200]
                except ValueError:
                    error = response.text[:200]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        result = Result(payload.name, payload.good, sent - started, time.monotonic() - sent, status, error, busy)
        with lock:
            results.append(result)
        if busy:  # a polite client honours Retry-After; a short pause is enough here
            time.sleep(rnd.uniform(0.2, 1.0))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def expected(result: Result) -> bool:
    if result.status is None:
        return False
    if result.status == 503:
        return result.busy
    return result.status == 200 if result.good else result.status in (400, 413)


def summarize(results: list[Result], args: argparse.Namespace, wall: float, rss: dict, model: str) -> tuple[str, dict]:
    after = [r for r in results if r.sent >= args.warmup]
    statuses = Counter(str(r.status) if r.status is not None else "no answer" for r in results)
    unexpected = [r for r in results if not expected(r)]
    five_hundreds = [r for r in results if r.status is not None and r.status >= 500 and not (r.status == 503 and r.busy)]
    growth = None
    if rss.get("after_warmup") and rss.get("end"):
        growth = 100.0 * (rss["end"] - rss["after_warmup"]) / rss["after_warmup"]

    def lat(rows):
        values = [r.latency for r in rows if r.status is not None]
        return {f"p{q}": percentile(values, q) for q in (50, 95, 99)} | {"max": max(values, default=float("nan"))}

    stats = {
        "model": model, "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
        "wall_s": round(wall, 1), "requests": len(results), "requests_after_warmup": len(after),
        "throughput_rps": len(results) / wall if wall else 0.0,
        "throughput_after_warmup_rps": len(after) / max(wall - args.warmup, 1e-9),
        "good_200_rps": sum(1 for r in after if r.good and r.status == 200) / max(wall - args.warmup, 1e-9),
        "status_counts": dict(sorted(statuses.items())),
        "latency_all_s": lat(after), "latency_good_s": lat([r for r in after if r.good and r.status == 200]),
        "latency_bad_s": lat([r for r in after if not r.good]),
        "unanswered": sum(r.status is None for r in results), "server_errors": len(five_hundreds),
        "unexpected": len(unexpected), "unexpected_examples": [vars(r) for r in unexpected[:5]],
        "busy_503": sum(r.busy for r in results),
        "rss_mb": {k: (v / MB if v else None) for k, v in rss.items()},
        "rss_growth_pct": growth,
    }
    passed = (stats["unanswered"] == 0 and stats["server_errors"] == 0 and stats["unexpected"] == 0
              and (growth is None or growth < args.max_rss_growth))
    stats["passed"] = passed

    def ms(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 1000:.0f} ms"

    def mb(x):
        return "n/a" if x is None else f"{x:.0f} MB"

    lines = [
        f"### Load test: {args.clients} clients, {args.duration:g} s ({model})",
        "",
        f"{len(results)} requests in {wall:.0f} s ({stats['throughput_rps']:.2f} req/s; "
        f"{stats['good_200_rps']:.2f} transcriptions/s after the {args.warmup:g} s warm-up), "
        f"{args.good_fraction:.0%} good payloads (speech clips of {args.clip_seconds:g} s: WAV/FLAC bodies and "
        "base64 JSON) and the rest bad (invalid base64, random bytes, empty body, malformed JSON, bad "
        "parameters, unsupported content type, ...). Latency is from sending to the full answer, "
        "queue wait included, for requests sent after the warm-up.",
        "",
        "| requests | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for label, key in (("all", "latency_all_s"), ("good (200)", "latency_good_s"), ("bad (4xx)", "latency_bad_s")):
        d = stats[key]
        lines.append(f"| {label} | {ms(d['p50'])} | {ms(d['p95'])} | {ms(d['p99'])} | {ms(d['max'])} |")
    lines += [
        "",
        "| status | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stats["status_counts"].items()],
        "",
        f"Server RSS: {mb(stats['rss_mb'].get('before'))} before the load, {mb(stats['rss_mb'].get('after_warmup'))} "
        f"after the warm-up, {mb(stats['rss_mb'].get('end'))} at the end (peak {mb(stats['rss_mb'].get('peak'))}): "
        + ("n/a" if growth is None else f"{growth:+.1f}% since the warm-up") + ".",
        "",
        f"Unanswered: {stats['unanswered']}; 5xx other than 503 busy: {stats['server_errors']}; "
        f"503 busy (queue limit): {stats['busy_503']}; answers of the wrong kind: {stats['unexpected']}. "
        f"**{'PASS' if passed else 'FAIL'}**",
    ]
    return "\n".join(lines), stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Load-test the local speech server (loopback only).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", help="a running server on a loopback address (default: start scripts/serve.py)")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its RSS")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=120.0, help="seconds of load (warm-up included)")
    p.add_argument("--warmup", type=float, default=20.0, help="first seconds left out of latency and RSS growth")
    p.add_argument("--good-fraction", type=float, default=0.7)
    p.add_argument("--clip-seconds", type=float, default=4.0, help="length of the good clips")
    p.add_argument("--audio", default=DEFAULT_AUDIO, help="speech to cut clips from (synthetic when missing)")
    p.add_argument("--asr-model", help="ASR_MODEL for the started server (default: the environment's)")
    p.add_argument("--diarization-model", help="DIARIZATION_MODEL for the started server ('' for none)")
    p.add_argument("--max-queue", type=int, help="MAX_QUEUE of the started server (default: serve.py's)")
    p.add_argument("--request-timeout", type=float, default=600.0, help="client timeout per request")
    p.add_argument("--startup-timeout", type=float, default=600.0)
    p.add_argument("--max-rss-growth", type=float, default=10.0, help="percent allowed after the warm-up")
    p.add_argument("--server-log", help="where the started server's output goes")
    p.add_argument("--markdown", help="also write the summary here")
    p.add_argument("--json", help="write the statistics here")
    args = p.parse_args(argv)
    if args.url and not is_loopback_url(args.url):
        p.error(f"--url must be a loopback address (127.0.0.1, ::1, localhost), not {urlparse(args.url).hostname!r}")
    if args.clients < 1 or args.duration <= 0 or not 0 <= args.warmup < args.duration:
        p.error("need --clients >= 1, --duration > 0 and 0 <= --warmup < --duration")

    payloads = build_payloads(args.audio, args.clip_seconds)
    server = start_server(args)
    headers = {"Authorization": f"Bearer {os.environ['API_TOKEN']}"} if args.url and os.environ.get("API_TOKEN") else {}
    model = args.url or Path(args.asr_model or os.environ.get("ASR_MODEL") or "?").name
    try:
        try:
            server.wait_healthy()
        except ServerError as exc:
            raise SystemExit(f"loadtest.py: {exc}") from None
        rss = {"before": server.rss(), "peak": server.rss()}
        results: list[Result] = []
        lock = threading.Lock()
        started = time.monotonic()
        stop_at = started + args.duration
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(server.url, payloads, stop_at, started, results, lock, i,
                                          args.good_fraction, args.request_timeout, headers))
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        warm_taken = False
        next_report = started + 15
        while any(t.is_alive() for t in threads):
            now = time.monotonic()
            current = server.rss()
            if current:
                rss["peak"] = max(rss.get("peak") or 0, current)
            if not warm_taken and now - started >= args.warmup:
                rss["after_warmup"], warm_taken = current, True
            if now >= next_report:
                next_report += 15
                with lock:
                    done = len(results)
                print(f"  {now - started:5.0f} s: {done} answers, server RSS {current / MB if current else 0:.0f} MB",
                      file=sys.stderr, flush=True)
            time.sleep(0.5)
        wall = time.monotonic() - started
        time.sleep(1.0)  # let the last request's buffers go
        rss["end"] = server.rss()
        if not warm_taken:
            rss["after_warmup"] = rss["before"]
    finally:
        server.stop()
    summary, stats = summarize(results, args, wall, rss, model)
    print(summary)
    if args.markdown:
        Path(args.markdown).write_text(summary + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2, default=str))
    if stats["unexpected_examples"]:
        print("\nunexpected answers (first 5):", file=sys.stderr)
        for row in stats["unexpected_examples"]:
            print(f"  {row}", file=sys.stderr)
    return 0 if stats["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
