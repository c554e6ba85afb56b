"""Peer comparison (`python -m evaluation.benchmark --peers`): this handler against
faster-whisper (CTranslate2) and the plain transformers pipeline, on the same audio, the
same Whisper checkpoint (ASR_MODEL, a local folder), the same thread count, in one run.

Everywhere: word timestamps on, greedy decoding (beam 1, no temperature fallback), the same
language given to every system (`--language`, default en; `auto`: detected by every system),
no diarization, no assistant.

Rows (each system warmed up once, then `--runs` rounds; a round times every system once, in
an order rotated per round, so that load changes on a shared machine hit all rows alike):

* this handler, built as the platform builds it (`EndpointHandler(path)`, settings from the
  environment), once per environment variant in this process: default settings (CPU_BF16
  and CPU_INT8 auto), CPU_BF16=false (what a CPU without native bfloat16 runs) and
  float32 only (CPU_INT8=false too); the sequential row is the default handler with the request
  parameter `chunk_length_s: 0`. Each is called with WAV bytes, as a request.
* faster-whisper, float32 and int8 (both loaded from one float32 CTranslate2 conversion;
  CTranslate2 quantizes at load), sequential (`WhisperModel.transcribe`, no VAD) and its
  batched pipeline with its own Silero VAD (`BatchedInferencePipeline`, VAD on by default).
  Skipped, saying why, when faster-whisper is not installed (requirements-peers.txt).
* the transformers ASR pipeline with the original settings (chunk 30 s, batch 24), word
  timestamps.

Times are wall-clock medians; CPU seconds (user + system of this process, all threads,
CTranslate2's included) are reported beside them: on a loaded machine they move less.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation import in_process

DEFAULT_CT2_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "speech-endpoint" / "ct2"
CT2_COPY_FILES = ("tokenizer.json", "preprocessor_config.json")  # what faster-whisper reads beside model.bin
INSTALL_HINT = "pip install -r requirements-peers.txt"


@dataclass
class System:
    """One row: `run(samples)` returns the transcript text; `skipped` says why it has none."""

    key: str
    name: str
    run: Callable[[np.ndarray], str] | None = None
    skipped: str | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    text: str = ""


# ---- this handler ---------------------------------------------------------------------------


def build_handler(threads: int, **env: str | None):
    """`EndpointHandler(path)` as the platform builds it, with these environment settings
    (Whisper alone: no assistant, no diarization)."""
    return in_process.build_handler(CPU_THREADS=str(threads), ASSISTANT_MODEL=None, DIARIZATION_MODEL=None, **env)


def handler_run(handler, parameters: dict) -> Callable[[np.ndarray], str]:
    def run(samples: np.ndarray) -> str:
        return handler({"inputs": wav_bytes(samples), "parameters": parameters})["text"]

    return run


def wav_bytes(samples: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


# ---- faster-whisper -------------------------------------------------------------------------


def faster_whisper_missing() -> str | None:
    """Why faster-whisper cannot run here (None: it can)."""
    try:
        import ctranslate2  # noqa: F401
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        return f"faster-whisper is not installed ({exc.name or exc}; {INSTALL_HINT})"
    return None


def ct2_model(model_dir: str | Path, cache: Path) -> Path:
    """A float32 CTranslate2 copy of a transformers Whisper folder, made once by
    `ct2-transformers-converter` (offline) and kept under `cache`, keyed by the folder's
    config and weight files and the ctranslate2 version."""
    import ctranslate2

    source = Path(model_dir)
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source}: not a local transformers folder (the CTranslate2 conversion needs one)")
    key = hashlib.sha256(ctranslate2.__version__.encode())
    for path in sorted(source.iterdir()):
        stat = path.stat()
        key.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = Path(cache) / f"{source.name}-{key.hexdigest()[:12]}"
    if (target / "model.bin").is_file():
        return target
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    copy = [name for name in CT2_COPY_FILES if (source / name).is_file()]
    command = [sys.executable, "-c", "import sys; from ctranslate2.converters.transformers import main; sys.exit(main())",
               "--model", str(source), "--output_dir", str(work), "--quantization", "float32",
               *(["--copy_files", *copy] if copy else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ct2-transformers-converter failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    work.rename(target)
    return target


def faster_whisper_systems(model_dir: Path, threads: int, language: str | None) -> list[System]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    options = {"language": language, "beam_size": 1, "temperature": 0.0, "word_timestamps": True}
    systems = []
    for compute_type in ("float32", "int8"):
        model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads,
                             num_workers=1)
        batched = BatchedInferencePipeline(model)
        systems.append(System(f"fw-{compute_type}", f"faster-whisper {compute_type}, sequential",
                              _segments_text(model.transcribe, options)))
        systems.append(System(f"fw-{compute_type}-batched", f"faster-whisper {compute_type}, batched pipeline + its VAD",
                              _segments_text(batched.transcribe, {**options, "batch_size": 24})))
    return systems


def _segments_text(transcribe, options: dict) -> Callable[[np.ndarray], str]:
    def run(samples: np.ndarray) -> str:
        segments, _ = transcribe(samples, **options)
        segments = list(segments)  # a generator: decoding happens while it is consumed
        return " ".join(s.text.strip() for s in segments if s.text.strip())

    return run


# ---- the table ------------------------------------------------------------------------------


def systems(model_dir: str, token: str | None, threads: int, language: str | None, ct2_cache: Path) -> list[System]:
    from evaluation.benchmark import reference_pipeline

    params = {"timestamp_granularity": "word", **({"language": language} if language else {})}
    default = build_handler(threads, CPU_BF16=None)
    rows = [
        System("handler", "this handler, default parameters (CPU_BF16 and CPU_INT8 auto)", handler_run(default, params)),
        System("handler-float32", "this handler, CPU_BF16=false (float32, int8 decoder weights: CPU_INT8 auto)",
               handler_run(build_handler(threads, CPU_BF16="false"), params)),
        System("handler-float32-only", "this handler, CPU_BF16=false CPU_INT8=false (float32 only)",
               handler_run(build_handler(threads, CPU_BF16="false", CPU_INT8="false"), params)),
        System("handler-sequential", "this handler, chunk_length_s=0 (sequential)",
               handler_run(default, {**params, "chunk_length_s": 0})),
    ]
    missing = faster_whisper_missing()
    if missing is None:
        rows += faster_whisper_systems(ct2_model(model_dir, ct2_cache), threads, language)
    else:
        print(f"skipping the faster-whisper rows: {missing}", flush=True)
        rows += [System(f"fw-{ct}{suffix}", f"faster-whisper {ct}, {how}", skipped=missing)
                 for ct in ("float32", "int8")
                 for suffix, how in (("", "sequential"), ("-batched", "batched pipeline + its VAD"))]
    pipe = reference_pipeline(model_dir, token, return_timestamps="word", language=language)
    rows.append(System("pipeline", "transformers pipeline, the original settings (chunk 30, batch 24, word timestamps)",
                       lambda samples: pipe(np.array(samples))))
    return rows


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(rows: list[System], samples: np.ndarray, runs: int, warmup: int) -> None:
    """Warm-up calls per system, then `runs` interleaved rounds (order rotated per round)."""
    live = [s for s in rows if s.run is not None]
    for system in live:
        for _ in range(warmup):
            system.text = system.run(samples)
    for round_ in range(runs):
        shift = round_ % len(live)
        for system in live[shift:] + live[:shift]:
            wall, cpu = time.perf_counter(), cpu_seconds()
            system.text = system.run(samples)
            system.wall.append(time.perf_counter() - wall)
            system.cpu.append(cpu_seconds() - cpu)
            print(json.dumps({"round": round_, "system": system.key, "wall_s": round(system.wall[-1], 3),
                              "cpu_s": round(system.cpu[-1], 3)}), flush=True)


def summarize(rows: list[System], reference_text: str | None) -> list[dict]:
    from evaluation.scoring import wer

    out = []
    for s in rows:
        row = {"key": s.key, "system": s.name, "skipped": s.skipped}
        if s.wall:
            row.update(median_s=statistics.median(s.wall), min_s=min(s.wall), max_s=max(s.wall),
                       cpu_median_s=statistics.median(s.cpu), runs=len(s.wall),
                       wer=None if reference_text is None else wer(reference_text, s.text), text=s.text)
        out.append(row)
    return out


def ratios(rows: list[dict]) -> list[dict]:
    """The targets' ratios (median wall time, and CPU time beside it), where both rows ran:
    the default path against faster-whisper's fastest int8 row (issue 28: 0.9) and
    CPU_BF16=false against its fastest float32 row (0.8), then the older targets."""
    by = {r["key"]: r for r in rows if "median_s" in r}

    def fastest(*keys: str) -> dict | None:
        return min((by[k] for k in keys if k in by), key=lambda r: r["median_s"], default=None)

    pairs = []
    for mine, theirs, target in ((by.get("handler"), fastest("fw-int8", "fw-int8-batched"), 0.9),
                                 (by.get("handler-float32"), fastest("fw-float32", "fw-float32-batched"), 0.8)):
        if mine and theirs:
            pairs.append((f"{mine['system']} / {theirs['system']}", mine, theirs, target))
    pairs.append(("handler default / faster-whisper float32 sequential", by.get("handler"), by.get("fw-float32"), 1.0))
    pairs.append(("handler default / transformers pipeline, original settings", by.get("handler"),
                  by.get("pipeline"), 0.7))
    out = []
    for name, mine, theirs, target in pairs:
        if mine is None or theirs is None:
            continue
        value = mine["median_s"] / theirs["median_s"]
        entry = {"ratio": name, "value": value, "cpu_value": mine["cpu_median_s"] / theirs["cpu_median_s"],
                 "target": target, "met": value <= target}
        if mine.get("wer") is not None and theirs.get("wer") is not None:
            entry["wer_points"] = 100 * (mine["wer"] - theirs["wer"])
        out.append(entry)
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"{report['audio_s']:.1f} s of audio, `{report['model']}`, {m['threads']} thread(s), CPU "
             f"(native bfloat16: {m['native_bf16']}); language: {report['language']}; word timestamps, greedy; "
             f"{report['runs']} interleaved runs after {report['warmup']} warm-up per row; load average "
             f"{m['load_before']} before, {m['load_after']} after.", "",
             "| system | median s | CPU s (median) | min-max s | WER |", "|---|---|---|---|---|"]
    for r in report["rows"]:
        if "median_s" not in r:
            lines.append(f"| {r['system']} | skipped: {r['skipped'] or 'not run'} | | | |")
            continue
        wer = "" if r["wer"] is None else f"{r['wer']:.1%}"
        lines.append(f"| {r['system']} | {r['median_s']:.2f} | {r['cpu_median_s']:.2f} | "
                     f"{r['min_s']:.2f}-{r['max_s']:.2f} | {wer} |")
    if report["ratios"]:
        lines += ["", "| ratio (median) | wall | CPU | target | WER difference |", "|---|---|---|---|---|"]
        for q in report["ratios"]:
            points = f"{q['wer_points']:+.1f} points" if "wer_points" in q else ""
            lines.append(f"| {q['ratio']} | {q['value']:.2f} {'(met)' if q['met'] else '(missed)'} | "
                         f"{q['cpu_value']:.2f} | <= {q['target']} | {points} |")
    return "\n".join(lines) + "\n"


def main(args) -> int:
    """Run the peer table for benchmark.py's parsed `args` (--audio, --long-s, --runs, ...)."""
    import torch
    from threadpoolctl import threadpool_limits

    from config import ModelSettings
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.whisper.precision import native_bf16

    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    torch.set_num_threads(args.threads)
    language = None if args.language == "auto" else args.language
    settings = ModelSettings.from_env()
    samples = decode(Path(args.audio).read_bytes()).samples[: int(args.long_s * 16000)]
    reference = Path(args.reference_text).read_text() if args.reference_text else None
    load_before = [round(x, 2) for x in os.getloadavg()]
    with threadpool_limits(args.threads):  # numpy's BLAS too (faster-whisper's features, the pipeline's)
        rows = systems(settings.asr_model, settings.token, args.threads, language,
                       Path(args.ct2_cache) if args.ct2_cache else DEFAULT_CT2_CACHE)
        measure(rows, samples, args.runs, args.warmup)
    summary = summarize(rows, reference)
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                          "native_bf16": native_bf16(), "load_before": load_before,
                          "load_after": [round(x, 2) for x in os.getloadavg()]},
              "model": settings.asr_model, "audio_s": len(samples) / 16000,
              "language": language or "detected by each system", "runs": args.runs, "warmup": args.warmup,
              "rows": summary, "ratios": ratios(summary)}
    from evaluation.benchmark import save_report

    save_report(report, args.output, markdown(report))
    return 0
