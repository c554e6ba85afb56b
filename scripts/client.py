#!/usr/bin/env python
"""Send an audio file to the endpoint (a deployed Inference Endpoint or `scripts/serve.py`)
and print the speaker-labelled transcript, or write SRT / WebVTT / JSON.

    HF_TOKEN=hf_... python -m scripts.client meeting.wav --url https://xyz.endpoints.huggingface.cloud
    python -m scripts.client meeting.wav --url http://127.0.0.1:8000 --format srt -o meeting.srt

Transports (--transport):
  json              POST application/json {"inputs": base64 audio, "parameters": {...}}
  binary            POST the file's bytes with an audio/* content type; parameters go in the
                    query string (?language=en&num_speakers=2)
  inference-client  huggingface_hub.InferenceClient(model=URL).automatic_speech_recognition(
                    audio, extra_body=parameters): JSON like `json` when there are parameters,
                    the raw bytes otherwise

The token is read from the HF_TOKEN environment variable only (never a flag) and sent as
`Authorization: Bearer`; it is never printed. (With `inference-client` and no HF_TOKEN,
huggingface_hub may send the token saved by `hf auth login`.)

A scaled-to-zero endpoint answers 503 with `X-Scale-Up-Timeout` while it starts, and the
local server answers 503 with `Retry-After` while its models load or its queue is full:
those (and 429, and refused connections) are retried until --max-wait seconds have passed.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from scripts.endpoint_http import (
    EndpointError,
    Reply,
    audio_sender,
    json_answer,
    send_with_retries,
    short,
)
from scripts.request_options import add_request_arguments
from scripts.request_options import parameters_from as request_parameters

DEFAULT_URL = "http://127.0.0.1:8000"


# ---- request building -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Transcribe an audio file with the speech endpoint. "
                                "The token comes from the HF_TOKEN environment variable.")
    p.add_argument("audio", type=Path, help="audio file (wav, flac, mp3, ogg, webm, m4a, ...)")
    p.add_argument("--url", default=os.environ.get("ENDPOINT_URL") or DEFAULT_URL,
                   help=f"endpoint URL (env ENDPOINT_URL; default {DEFAULT_URL})")
    p.add_argument("--transport", choices=["json", "binary", "inference-client"], default="json")
    p.add_argument("--format", choices=["text", "json", "srt", "vtt"], default="text",
                   help="text: one '[start - end] SPEAKER: text' line per utterance")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    add_request_arguments(p.add_argument_group("request parameters"))
    net = p.add_argument_group("network")
    net.add_argument("--timeout", type=float, default=600.0, help="seconds for one request")
    net.add_argument("--max-wait", type=float, default=600.0,
                     help="total seconds to keep retrying while the endpoint starts (503) or is busy")
    return p


def parameters_from(args: argparse.Namespace) -> dict[str, Any]:
    return request_parameters(args, [args.format] if args.format in ("srt", "vtt") else [])


# ---- sending, with cold-start retries (scripts/endpoint_http.py) ------------------------


def _inference_client_sender(url: str, audio: bytes, params: dict[str, Any], *,
                             timeout: float) -> Callable[[], Reply]:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=url, token=os.environ.get("HF_TOKEN") or None, timeout=timeout)
    kwargs: dict[str, Any] = {}
    if params:
        if "extra_body" not in inspect.signature(client.automatic_speech_recognition).parameters:
            raise EndpointError("this huggingface_hub's automatic_speech_recognition() takes no parameters "
                                "(no extra_body); upgrade it or use --transport json")
        kwargs["extra_body"] = params

    def send() -> Reply:
        try:
            output = client.automatic_speech_recognition(audio, **kwargs)
        except Exception as exc:  # noqa: BLE001 - sorted below by what it carries
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            if status is not None:
                return Reply(status, response.headers, _body_of(response))
            name = type(exc).__name__
            if name == "OfflineModeIsEnabled":
                raise EndpointError("huggingface_hub's offline mode (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE) "
                                    "blocks every InferenceClient request; unset it or use --transport json") from None
            if "Connect" in name or "RemoteProtocol" in name:
                raise ConnectionError(short(exc)) from None
            if "Timeout" in name:
                raise EndpointError(f"no answer within --timeout {timeout:g} s") from None
            raise
        return Reply(200, {}, dict(output) if isinstance(output, dict) else vars(output))

    return send


def _body_of(response: Any) -> bytes:
    try:
        return response.content
    except Exception:  # noqa: BLE001 - a streamed httpx response that was not read
        try:
            return response.read()
        except Exception:  # noqa: BLE001
            return b""


def transcribe(path: Path, url: str, transport: str, params: dict[str, Any], *,
               timeout: float = 600.0, max_wait: float = 600.0) -> dict[str, Any]:
    """Send the file and return the endpoint's JSON answer; raises EndpointError."""
    audio = path.read_bytes()
    if transport == "inference-client":
        send = _inference_client_sender(url, audio, params, timeout=timeout)
    else:
        send = audio_sender(path, audio, url, transport, params, timeout=timeout)
    return json_answer(send_with_retries(send, max_wait))


# ---- output -----------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """00:01.2, or 1:02:03.4 past an hour (tenths of a second)."""
    tenths = max(0, round(float(seconds) * 10))
    minutes, rest = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    text = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{text}" if hours else text


def transcript_lines(result: dict[str, Any]) -> list[str]:
    """One line per speaker utterance (`speakers`), else per chunk, else the whole text."""
    lines = []
    for item in result.get("speakers") or []:
        start, end = item["timestamp"]
        lines.append(f"[{clock(start)} - {clock(end)}] {item['speaker']}: {item['text'].strip()}")
    if lines:
        return lines
    for chunk in result.get("chunks") or []:
        start, end = chunk["timestamp"]
        lines.append(f"[{clock(start)} - {clock(end)}] {chunk['text'].strip()}")
    if not lines and (result.get("text") or "").strip():
        lines.append(result["text"].strip())
    return lines


def render(result: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    if fmt in ("srt", "vtt"):
        if fmt not in result:
            raise EndpointError(f"the endpoint's answer has no '{fmt}' field (does it support output_formats?)")
        return result[fmt]
    lines = transcript_lines(result)
    return "\n".join(lines) + "\n" if lines else ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.audio.is_file():
        print(f"error: no such file: {args.audio}", file=sys.stderr)
        return 2
    params = parameters_from(args)
    try:
        result = transcribe(args.audio, args.url, args.transport, params,
                            timeout=args.timeout, max_wait=args.max_wait)
        text = render(result, args.format)
    except EndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "text" and not text:
        print("(no speech recognised)", file=sys.stderr)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
