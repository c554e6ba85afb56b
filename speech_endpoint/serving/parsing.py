"""Reading an HTTP request into the handler's input (the platform's contract).

The body is `application/json` {"inputs": base64, "parameters": {...}}, or the audio bytes
with an `audio/*` (or application/octet-stream, or no) content type; query-string
parameters are used when the body has none. A body without a content type that starts
with `{` is read as JSON (older huggingface_hub clients send JSON that way).
Everything here but `read_body` is pure; `RequestError` is answered with HTTP 400.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


class RequestError(ValueError):
    """A malformed request (before the handler sees it): HTTP 400 with this message."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def query_parameters(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query-string pairs -> parameters; a repeated key becomes a list."""
    params: dict[str, Any] = {}
    for key, value in items:
        if key in params:
            previous = params[key]
            params[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            params[key] = value
    return params


def parse_request(content_type: str | None, body: bytes, query: dict[str, Any]) -> dict[str, Any]:
    """The handler's input from an HTTP body (see the module docstring for the shapes)."""
    kind = media_type(content_type)
    sniff_json = kind in ("", "application/octet-stream") and body.lstrip()[:1] == b"{"
    if kind == "application/json" or kind.endswith("+json") or sniff_json:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RequestError("The request body is not valid JSON") from None
        except RecursionError:
            raise RequestError("The request body's JSON is nested too deeply") from None
        if not isinstance(data, dict) or "inputs" not in data:
            raise RequestError(
                "The JSON body must be an object with 'inputs' (the audio as base64) "
                "and optionally 'parameters'")
        if not data.get("parameters") and query:
            data = {**data, "parameters": query}
        return data
    if kind.startswith("audio/") or kind in ("", "application/octet-stream"):
        if not body:
            raise RequestError("The request body is empty: send the audio file's bytes")
        return {"inputs": body, "parameters": query}
    raise RequestError(
        f"Unsupported content type '{kind[:80]}': send application/json "
        "{\"inputs\": base64 audio, \"parameters\": {...}} or the audio bytes with an "
        "audio/* content type (audio/wav, audio/flac, audio/mpeg, audio/ogg, audio/webm, "
        "audio/m4a, audio/amr, ...)")


class BodyTooLarge(Exception):
    """The body is over the limit: HTTP 413."""


async def read_body(request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes: Content-Length first, then counting
    while reading (a chunked body has no Content-Length)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            raise RequestError("Invalid Content-Length header") from None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
