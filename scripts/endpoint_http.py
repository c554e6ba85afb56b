"""Sending audio to the endpoint over HTTP, shared by scripts/client.py and
scripts/transcribe_many.py: the request bodies (json / binary), the bearer token from
HF_TOKEN, and the retries that wait out a starting or busy endpoint.

Retried until `max_wait` seconds have passed: a scaled-to-zero Inference Endpoint's 503
with `X-Scale-Up-Timeout` while it starts, the local server's 503 with `Retry-After`
(models loading, queue full), 429, refused connections, and (when the caller asks)
requests that got no answer within their timeout. `Retry-After` sets the wait (1 to 30 s);
otherwise the wait doubles from 1 s up to 15 s. Every other answer is final: a 400 is the
request's own fault and is never sent again.
"""
from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

CONTENT_TYPES = {
    ".wav": "audio/wav", ".wave": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".webm": "audio/webm",
    ".m4a": "audio/m4a", ".mp4": "audio/m4a", ".aac": "audio/m4a", ".amr": "audio/amr",
}
GENERIC_AUDIO = "audio/x-audio"


class EndpointError(RuntimeError):
    """The endpoint answered with an error, or could not be reached (message is safe to
    print). `status` is the HTTP status of a final error answer, None without one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def query_string_parameters(params: dict[str, Any]) -> dict[str, str]:
    """Parameters as query-string values: lists comma-joined, booleans lower-case."""
    out = {}
    for key, value in params.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), GENERIC_AUDIO)


def auth_headers() -> dict[str, str]:
    token = os.environ.get("HF_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


# ---- retries ------------------------------------------------------------------------------


class Reply:
    """Status, headers and body of an HTTP answer, whichever library made the request."""

    def __init__(self, status: int, headers: Any, body: Any):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        try:
            return self.headers.get(name)
        except AttributeError:
            return None


def retry_delay(reply: Reply | None, attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when this answer is final."""
    backoff = min(2.0 ** attempt, 15.0)
    if reply is None:  # connection refused / reset, or no answer in time
        return backoff
    if reply.status == 429 or (reply.status == 503 and (
            reply.header("Retry-After") or reply.header("X-Scale-Up-Timeout"))):
        try:
            return min(max(float(reply.header("Retry-After") or backoff), 1.0), 30.0)
        except ValueError:
            return backoff
    return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def send_with_retries(send: Callable[[], Reply], max_wait: float, *,
                      sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic,
                      log: Callable[[str], None] = _stderr) -> Reply:
    """Call `send` until it gives a final answer or `max_wait` seconds have passed.
    `send` returns a Reply, or raises ConnectionError (refused/reset connection) or
    TimeoutError (no answer in time; only senders asked to retry timeouts raise it)."""
    started = clock()
    attempt = 0
    while True:
        try:
            reply, problem = send(), None
        except (ConnectionError, TimeoutError) as exc:
            reply, problem = None, exc
        delay = retry_delay(reply, attempt)
        if delay is None:
            assert reply is not None
            return reply
        waited = clock() - started
        if waited + delay > max_wait:
            if reply is not None:
                return reply  # the last 503 is reported as the error
            if isinstance(problem, TimeoutError):
                raise EndpointError(f"no answer from the endpoint within {max_wait:g} s: {problem}")
            raise EndpointError(f"could not connect to the endpoint within {max_wait:g} s: {problem}")
        what = (f"HTTP {reply.status}" + (" (endpoint scaling up)" if reply.header("X-Scale-Up-Timeout") else "")
                if reply is not None else ("no answer in time" if isinstance(problem, TimeoutError)
                                           else "connection failed"))
        log(f"{what}; retrying in {delay:.0f} s (waited {waited:.0f} of {max_wait:g} s)")
        sleep(delay)
        attempt += 1


# ---- sending ------------------------------------------------------------------------------


def requests_sender(url: str, *, timeout: float, retry_timeouts: bool = False, **kwargs) -> Callable[[], Reply]:
    """`send()` for send_with_retries: one requests.post(url, **kwargs). A request that
    gets no answer within `timeout` raises TimeoutError when `retry_timeouts`, else it is
    a final EndpointError."""
    import requests

    def send() -> Reply:
        try:
            response = requests.post(url, timeout=timeout, **kwargs)
        except requests.ConnectionError as exc:
            if cut_off(exc):
                raise EndpointError("the endpoint closed the connection while the file was being sent "
                                    "(is it larger than the endpoint's body limit?)") from None
            raise ConnectionError(short(exc)) from None
        except requests.Timeout:
            if retry_timeouts:
                raise TimeoutError(f"no answer within {timeout:g} s") from None
            raise EndpointError(f"no answer within --timeout {timeout:g} s") from None
        return Reply(response.status_code, response.headers, response.content)

    return send


def audio_sender(path: Path, audio: bytes, url: str, transport: str, params: dict[str, Any], *,
                 timeout: float, retry_timeouts: bool = False) -> Callable[[], Reply]:
    """`send()` posting `audio` the platform's way: `json` {"inputs": base64, "parameters"}
    or `binary` (the bytes with an audio/* content type, parameters in the query string)."""
    headers = auth_headers()
    if transport == "json":
        body = {"inputs": base64.b64encode(audio).decode("ascii"), "parameters": params}
        return requests_sender(url, timeout=timeout, retry_timeouts=retry_timeouts, json=body, headers=headers)
    if transport == "binary":
        return requests_sender(url, timeout=timeout, retry_timeouts=retry_timeouts, data=audio,
                               params=query_string_parameters(params),
                               headers={**headers, "Content-Type": content_type_for(path)})
    raise ValueError(f"unknown transport {transport!r}")


def json_answer(reply: Reply) -> dict[str, Any]:
    """The endpoint's JSON answer; EndpointError (with the status) for an error answer."""
    if isinstance(reply.body, dict):
        return reply.body
    if reply.status != 200:
        raise EndpointError(f"HTTP {reply.status}: {error_message(reply)}", status=reply.status)
    try:
        return json.loads(reply.body)
    except ValueError:
        raise EndpointError("the endpoint's answer is not JSON", status=reply.status) from None


def error_message(reply: Reply) -> str:
    text = reply.body.decode("utf-8", "replace") if isinstance(reply.body, bytes) else str(reply.body)
    try:
        data = json.loads(text)
        message = data.get("error") or text
        if isinstance(message, dict):  # OpenAI's shape
            message = message.get("message") or text
        if isinstance(data, dict) and data.get("request_id"):
            message = f"{message} (request id {data['request_id']})"
    except (ValueError, AttributeError):
        message = text.strip()
    request_id = reply.header("X-Request-Id")
    if request_id and request_id not in message:
        message = f"{message} [X-Request-Id {request_id}]"
    return message[:1000] or "(no message)"


def cut_off(exc: BaseException) -> bool:
    """A connection reset or broken mid-request (not worth retrying: typically a server
    that answered 413 and closed while a large body was still being sent), as opposed to
    a refused connection (a server that is not listening yet)."""
    text = repr(exc)
    return any(marker in text for marker in ("BrokenPipe", "ConnectionReset", "Connection aborted"))


def short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
