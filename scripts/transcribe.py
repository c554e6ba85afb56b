#!/usr/bin/env python
"""Transcribe local audio files with the handler, no server: writes JSON, SRT and WebVTT.

    ASR_MODEL=openai/whisper-large-v3 DIARIZATION_MODEL=pyannote/speaker-diarization-3.1 \\
        HF_TOKEN=hf_... python -m scripts.transcribe meeting.wav --num-speakers 2

writes meeting.json, meeting.srt and meeting.vtt beside the input (or in --output DIR).
The handler is built exactly as the endpoint builds it (`EndpointHandler(repo folder)`,
settings from the environment; --asr-model etc. set those variables for this run) and is
called with the same request an endpoint client sends, with
`"output_formats": ["srt", "vtt"]` so the subtitles are the endpoint's own.

Progress: the handler takes an optional `progress(done_s, total_s)` callback, called as
Whisper's windows finish; it drives a tqdm bar in seconds of audio, then "diarizing" shows
while the speakers are found. The bar is drawn only on a terminal (or with --progress),
never mixed into the output files.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from scripts.request_options import add_request_arguments, parameters_from

REPO = Path(__file__).resolve().parent.parent

FORMATS = ("json", "srt", "vtt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Transcribe audio files locally with handler.py "
                                "(models from ASR_MODEL / ASSISTANT_MODEL / DIARIZATION_MODEL).")
    p.add_argument("audio", type=Path, nargs="+", help="audio files")
    p.add_argument("-o", "--output", type=Path, help="folder for the results (default: beside each input)")
    p.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of json,srt,vtt")
    add_request_arguments(p.add_argument_group("request parameters"))
    models = p.add_argument_group("models (override the environment variables)")
    models.add_argument("--asr-model", help="ASR_MODEL")
    models.add_argument("--assistant-model", help="ASSISTANT_MODEL")
    models.add_argument("--diarization-model", help="DIARIZATION_MODEL")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always draw the progress bar (default: only on a terminal)")
    progress.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    return p


def request_parameters(args: argparse.Namespace, formats: list[str]) -> dict[str, Any]:
    return parameters_from(args, [f for f in formats if f in ("srt", "vtt")])


def audio_seconds(data: bytes) -> float | None:
    """Duration from the container header (for the bar's total), None when unknown."""
    try:
        import io

        import av

        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001 - only for display
        return None
    return None


@contextlib.contextmanager
def progress_bar(total_s: float | None, label: str, enabled: bool | None, then: str = ""):
    """A tqdm bar in seconds of audio; yields the `progress(done_s, total_s)` callback.
    `then` is shown once the audio is transcribed (e.g. "diarizing")."""
    from tqdm import tqdm

    bar = tqdm(total=round(total_s, 1) if total_s else None, desc=label, unit="s audio",
               disable=(not enabled) if enabled is not None else None, file=sys.stderr,
               bar_format=None if total_s else "{desc}: {elapsed} elapsed")

    def report(done_s: float, total: float) -> None:
        if bar.total is None or abs(bar.total - total) > 0.05:
            bar.total = round(total, 1)
        bar.n = round(min(done_s, total), 1)
        if then and done_s >= total:
            bar.set_postfix_str(then, refresh=False)
        bar.refresh()

    try:
        yield report
    finally:
        if bar.total:
            bar.n = bar.total
        bar.close()


def outputs_for(path: Path, out_dir: Path | None, formats: list[str]) -> dict[str, Path]:
    folder = out_dir or path.parent
    return {fmt: folder / f"{path.stem}.{fmt}" for fmt in formats}


def transcribe_file(handler: Any, path: Path, params: dict[str, Any], out_dir: Path | None,
                    formats: list[str], progress: bool | None) -> dict[str, Path]:
    data = path.read_bytes()
    diarizing = getattr(handler, "diarizer", None) is not None and params.get("diarize") is not False
    with progress_bar(audio_seconds(data), path.name, progress, then="diarizing" if diarizing else "") as report:
        result = handler({"inputs": data, "parameters": params}, progress=report)
    targets = outputs_for(path, out_dir, formats)
    for fmt, target in targets.items():
        if fmt == "json":
            body = {k: v for k, v in result.items() if k not in ("srt", "vtt")}
            target.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        else:
            target.write_text(result[fmt], encoding="utf-8")
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    if not formats or any(f not in FORMATS for f in formats):
        parser.error(f"--formats: choose from {','.join(FORMATS)}")
    missing = [str(p) for p in args.audio if not p.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
    for flag, name in ((args.asr_model, "ASR_MODEL"), (args.assistant_model, "ASSISTANT_MODEL"),
                       (args.diarization_model, "DIARIZATION_MODEL")):
        if flag:
            os.environ[name] = flag

    from speech_endpoint.schema import ClientError
    from speech_endpoint.serving.loading import load_handler, safe_error

    started = time.perf_counter()
    print("loading models ...", file=sys.stderr)
    try:
        handler = load_handler(REPO)
    except Exception as exc:  # noqa: BLE001 - start-up errors are written to be shown
        print(f"error: could not load the models: {safe_error(exc)}", file=sys.stderr)
        return 1
    print(f"models loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    params = request_parameters(args, formats)
    failures = 0
    for path in args.audio:
        try:
            written = transcribe_file(handler, path, params, args.output, formats, args.progress)
        except ClientError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        for target in written.values():
            print(target)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
