#!/usr/bin/env python
"""Transcribe many audio files with the endpoint (a deployed Inference Endpoint or the local
server), N requests at a time, and write one JSON per file plus the subtitles asked for.

    HF_TOKEN=hf_... python -m scripts.transcribe_many recordings/ --url https://xyz.endpoints.huggingface.cloud \\
        --output transcripts/ --concurrency 4 --formats srt,vtt --num-speakers 2
    python -m scripts.transcribe_many a.wav b.mp3 --list more.txt --output out/   # the local server

Inputs: files, folders (searched recursively for audio and video files), and with --list
text files naming one path per line (relative to the list's folder; blank lines and
`#` comments skipped). Outputs: `<output>/<name>.json` (the endpoint's answer without the
subtitle fields) and `<name>.srt` / `.vtt` / `.rttm` for --formats; a file found in a
folder keeps its sub-folder (`talks/day1/a.wav` -> `<output>/day1/a.json`).

Resume: a file whose outputs all exist is skipped, so a run that stopped can be started
again with the same command. Outputs are written to a temporary name and renamed, the JSON
last, so a half-written file never counts as done.

Retries (scripts/endpoint_http.py, shared with scripts/client.py): 503 while a scaled-to-
zero endpoint starts or a replica is busy, 429, timeouts and refused connections are
retried with backoff that honours Retry-After, for up to --max-wait seconds per file. Any
other answer is final: a file refused with HTTP 400 (not audio, a bad parameter) is
reported once and not sent again; 401/403/404 stop the run (every file would get them).

Concurrency: with N requests in flight, one replica queues them (the local server's
MAX_QUEUE, 16 by default, beyond which it answers 503 and the file is retried); give the
endpoint N replicas (`python -m scripts.create_endpoint --max-replicas N`) to run N at once.
The token comes from HF_TOKEN only and is never printed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from scripts.endpoint_http import EndpointError, audio_sender, json_answer, send_with_retries
from scripts.request_options import add_request_arguments, parameters_from

DEFAULT_URL = "http://127.0.0.1:8000"
SUBTITLES = ("srt", "vtt", "rttm")
MEDIA_SUFFIXES = {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".webm", ".m4a", ".mp4", ".aac",
                  ".amr", ".mkv", ".mov", ".wma", ".aiff", ".aif"}
STOPPING = {401: "the token is missing or wrong", 403: "the token may not call this endpoint",
            404: "no endpoint at this URL"}


@dataclass(frozen=True)
class Item:
    path: Path
    name: str  # output name without suffix, relative to the output folder


@dataclass
class Outcome:
    item: Item
    status: str  # done | skipped | failed
    audio_s: float = 0.0
    reason: str = ""


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def audio_hours_per_hour(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s else 0.0

    @property
    def files_per_minute(self) -> float:
        return 60.0 * self.done / self.wall_s if self.wall_s else 0.0

    def lines(self) -> list[str]:
        total = self.done + self.skipped + self.failed
        out = [f"files: {self.done} done, {self.skipped} skipped (outputs exist), {self.failed} failed, "
               f"of {total}, in {self.wall_s:.1f} s",
               f"audio transcribed: {self.audio_s / 3600:.4f} h ({self.audio_s:.1f} s)",
               f"throughput: {self.audio_hours_per_hour:.2f} audio-hours per hour, "
               f"{self.files_per_minute:.1f} files per minute"]
        if self.failures:
            out.append("failures:")
            out += [f"  {name}: {reason}" for name, reason in self.failures]
        return out

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "audio_hours_per_hour": self.audio_hours_per_hour,
                "files_per_minute": self.files_per_minute}


# ---- inputs and outputs ------------------------------------------------------------------


def collect(inputs: list[Path], lists: list[Path]) -> list[Item]:
    """Items in the order given (folders sorted); raises ValueError naming missing paths
    and files that would write the same outputs."""
    inputs = list(inputs)
    for list_file in lists:
        for line in list_file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line).expanduser()
                inputs.append(path if path.is_absolute() else list_file.parent / path)
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise ValueError(f"no such file or folder: {', '.join(missing[:10])}")
    paths: list[tuple[Path, str]] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
            paths += [(p, p.relative_to(path).with_suffix("").as_posix()) for p in found]
        else:
            paths.append((path, path.stem))
    items: dict[str, Item] = {}
    named: set[Path] = set()  # a file given twice (a folder and a list, say) is sent once
    for path, name in paths:
        previous = items.get(name)
        if previous is not None and previous.path.resolve() != path.resolve():
            raise ValueError(f"{previous.path} and {path} would write the same outputs ({name}.json)")
        if path.resolve() not in named:
            named.add(path.resolve())
            items[name] = Item(path, name)
    return list(items.values())


def outputs_for(item: Item, out_dir: Path, formats: list[str]) -> dict[str, Path]:
    return {fmt: out_dir / f"{item.name}.{fmt}" for fmt in [*formats, "json"]}  # json last: written last


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_outputs(result: dict[str, Any], targets: dict[str, Path]) -> None:
    for fmt, target in targets.items():
        if fmt == "json":
            body = {k: v for k, v in result.items() if k not in SUBTITLES}
            write_atomic(target, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        elif fmt not in result:
            raise EndpointError(f"the endpoint's answer has no '{fmt}' field")
        else:
            write_atomic(target, result[fmt])


# ---- the run ------------------------------------------------------------------------------


def wait_unless_stopped(stop: threading.Event, seconds: float) -> None:
    """A retry's wait, cut short when the run stops (interrupted, or refused with 401)."""
    if stop.wait(seconds):
        raise EndpointError("not finished: the run stopped while this file waited to be retried")


def transcribe_one(item: Item, *, url: str, params: dict[str, Any], out_dir: Path, formats: list[str],
                   transport: str, timeout: float, max_wait: float, stop: threading.Event,
                   log: Callable[[str], None]) -> Outcome:
    targets = outputs_for(item, out_dir, formats)
    if all(target.is_file() for target in targets.values()):
        return Outcome(item, "skipped")
    if stop.is_set():
        return Outcome(item, "failed", reason="not sent: the run stopped (see the first failure)")
    try:
        send = audio_sender(item.path, item.path.read_bytes(), url, transport, params, timeout=timeout,
                            retry_timeouts=True)
        result = json_answer(send_with_retries(send, max_wait, sleep=partial(wait_unless_stopped, stop),
                                               log=lambda m: log(f"{item.path.name}: {m}")))
        write_outputs(result, targets)
    except EndpointError as exc:
        if exc.status in STOPPING:
            stop.set()
            return Outcome(item, "failed", reason=f"{exc} ({STOPPING[exc.status]}; run stopped)")
        return Outcome(item, "failed", reason=str(exc))
    except OSError as exc:
        return Outcome(item, "failed", reason=f"{type(exc).__name__}: {exc}")
    return Outcome(item, "done", audio_s=float((result.get("metadata") or {}).get("duration") or 0.0))


def run(items: list[Item], *, url: str, params: dict[str, Any], out_dir: Path, formats: list[str],
        concurrency: int = 1, transport: str = "json", timeout: float = 600.0, max_wait: float = 900.0,
        progress: bool | None = None) -> Summary:
    """Transcribe `items`, `concurrency` at a time; the summary of what happened."""
    from tqdm import tqdm

    started = time.monotonic()
    summary = Summary()
    stop = threading.Event()
    bar = tqdm(total=len(items), unit="file", file=sys.stderr, dynamic_ncols=True,
               disable=(not progress) if progress is not None else None)
    job = dict(url=url, params=params, out_dir=out_dir, formats=formats, transport=transport, timeout=timeout,
               max_wait=max_wait, stop=stop, log=lambda message: tqdm.write(message, file=sys.stderr))

    def record(outcome: Outcome) -> None:
        setattr(summary, outcome.status, getattr(summary, outcome.status) + 1)
        summary.audio_s += outcome.audio_s
        if outcome.status == "failed":  # reported once, in the summary
            summary.failures.append((str(outcome.item.path), outcome.reason))
        bar.set_postfix(done=summary.done, skipped=summary.skipped, failed=summary.failed, refresh=False)
        bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="transcribe") as pool:
            futures = [pool.submit(transcribe_one, item, **job) for item in items]
            try:
                for future in as_completed(futures):
                    record(future.result())
            except KeyboardInterrupt:  # send nothing more; the requests in flight finish and are kept
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                tqdm.write("interrupted: waiting for the requests in flight", file=sys.stderr)
                raise
    finally:
        bar.close()
    summary.wall_s = time.monotonic() - started
    order = {str(item.path): index for index, item in enumerate(items)}
    summary.failures.sort(key=lambda failure: order.get(failure[0], 0))
    return summary


# ---- command line -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Transcribe many audio files with the speech endpoint, several at a "
                                "time; skips files already done. The token comes from HF_TOKEN.")
    p.add_argument("inputs", type=Path, nargs="*", help="audio files and folders")
    p.add_argument("--list", type=Path, action="append", default=[], metavar="FILE",
                   help="text file naming one audio file per line (repeatable)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the results")
    p.add_argument("--url", default=os.environ.get("ENDPOINT_URL") or DEFAULT_URL,
                   help=f"endpoint URL (env ENDPOINT_URL; default {DEFAULT_URL})")
    p.add_argument("-c", "--concurrency", type=int, default=2, help="requests in flight (default 2)")
    p.add_argument("--formats", default="", help="comma-separated subset of srt,vtt,rttm (JSON is always written)")
    p.add_argument("--transport", choices=["json", "binary"], default="json")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for one request before it is retried")
    p.add_argument("--max-wait", type=float, default=900.0,
                   help="seconds one file keeps being retried (cold start, busy, timeouts)")
    p.add_argument("--summary-json", type=Path, help="also write the summary here as JSON")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always draw the progress bar (default: only on a terminal)")
    bar.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    add_request_arguments(p.add_argument_group("request parameters"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    if any(f not in SUBTITLES for f in formats):
        parser.error(f"--formats: choose from {','.join(SUBTITLES)}")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not args.inputs and not args.list:
        parser.error("name audio files, folders or --list files")
    try:
        items = collect(args.inputs, args.list)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    params = parameters_from(args, formats)
    print(f"{len(items)} files -> {args.output} ({args.concurrency} at a time, {args.url})", file=sys.stderr)
    summary = run(items, url=args.url, params=params, out_dir=args.output, formats=formats,
                  concurrency=args.concurrency, transport=args.transport, timeout=args.timeout,
                  max_wait=args.max_wait, progress=args.progress)
    print("\n".join(summary.lines()))
    if args.summary_json:
        write_atomic(args.summary_json, json.dumps(summary.as_json(), indent=2) + "\n")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
