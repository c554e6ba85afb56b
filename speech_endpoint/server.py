"""A local stand-in for the Inference Endpoints serving container.

`create_app(handler_factory, settings)` builds an ASGI app (Starlette) that serves the
platform's contract for a custom handler; `scripts/serve.py` runs it with uvicorn and
`load_handler(folder)` loads `handler.py` exactly as the platform does.

Contract
  GET  /, /health   200 "Ok" once the handler is loaded; 503 while loading or after a
                    failed load (with a safe message).
  POST /, /predict  body `application/json` {"inputs": base64, "parameters": {...}}, or the
                    audio bytes with an `audio/*` (or application/octet-stream, or no)
                    content type. Query-string parameters are used when the body has none.
                    A body without a content type that starts with `{` is read as JSON (older
                    huggingface_hub clients send JSON that way).
  GET  /metrics     Prometheus text: queue size, requests in flight, counts by status.

  200 the handler's JSON; 400 {"error": msg} for every `ClientError` and malformed request;
  401 bad or missing bearer token (when one is configured); 413 body over the limit;
  503 loading / load failed / queue full (with Retry-After, except a failed load);
  504 per-request timeout; 500 {"error": "internal error", "request_id"} otherwise.
  Every response has an `X-Request-Id` header.

The handler runs on one worker thread, one request at a time (as one platform replica
does); requests wait in a bounded FIFO queue. Secrets (HF_TOKEN, API_TOKEN) are redacted
from every log record and from what the process writes to stdout/stderr.
"""
from __future__ import annotations

import asyncio
import collections
import hmac
import importlib.util
import io
import json
import logging
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("speech_endpoint.server")

SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "API_TOKEN")
REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
STATUS_CLIENT_CLOSED = 499  # nginx's convention for "client went away before the answer"


# ---- secrets: redaction of log records and process output ----------------------------


def secret_values(extra: Iterable[str | None] = ()) -> list[str]:
    """The secret values to keep out of logs: the token env variables plus `extra`."""
    values = [os.environ.get(name) for name in SECRET_ENV] + list(extra)
    unique = {v.strip() for v in values if v and len(v.strip()) >= MIN_SECRET_LEN}
    return sorted(unique, key=len, reverse=True)  # longest first: one may contain another


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class SecretRedactingFilter(logging.Filter):
    """Replaces secret values in a record's message, arguments, traceback and stack.

    Arguments are redacted one by one (not flattened into the message) so formatters that
    read `record.args` (uvicorn's access log) keep working. A traceback is formatted here,
    redacted, and cached in `record.exc_text`, which `logging.Formatter` uses as-is.
    """

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record, self.secrets)
        return True


def _redact_value(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, (int, float, bool, type(None))):
        return value
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return value
    return redact(text, secrets) if any(s in text for s in secrets) else value


def _redact_record(record: logging.LogRecord, secrets: list[str]) -> None:
    if not secrets or getattr(record, "_secrets_redacted", False):
        return
    record.msg = _redact_value(record.msg, secrets)
    if isinstance(record.args, dict):
        record.args = {k: _redact_value(v, secrets) for k, v in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_redact_value(v, secrets) for v in record.args)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)
    record._secrets_redacted = True


class RedactingStream(io.TextIOBase):
    """Wraps stdout/stderr so text printed outside `logging` (print, tqdm, warnings written
    by libraries) is redacted too. Secrets split across two writes are not caught; this is
    defence in depth behind the logging filter."""

    def __init__(self, stream, secrets: Iterable[str]):
        self._stream = stream
        self._secrets = list(secrets)

    def write(self, text):  # type: ignore[override]
        if isinstance(text, str):
            text = redact(text, self._secrets)
        return self._stream.write(text)

    def writelines(self, lines):  # type: ignore[override]
        for line in lines:
            self.write(line)

    def flush(self):
        return self._stream.flush()

    def isatty(self):
        return self._stream.isatty()

    def fileno(self):
        return self._stream.fileno()

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name):
        return getattr(self._stream, name)


_installed_filter: SecretRedactingFilter | None = None


def install_redaction(secrets: Iterable[str], *, wrap_streams: bool = True) -> SecretRedactingFilter:
    """Redact `secrets` from everything this process logs or prints.

    - a log record factory, so every record (from any logger, whatever its handlers) is
      redacted when it is created;
    - the same as a filter on every handler currently attached (`attach_filter_everywhere`
      repeats that for handlers libraries add later);
    - warnings routed through logging, uncaught exceptions (main and other threads) logged;
    - stdout/stderr wrapped (`RedactingStream`) for text written outside logging.
    """
    global _installed_filter
    values = list(secrets)
    if _installed_filter is not None:
        _installed_filter.secrets[:] = sorted(set(_installed_filter.secrets) | set(values), key=len, reverse=True)
        return _installed_filter
    flt = _installed_filter = SecretRedactingFilter(values)
    base_factory = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = base_factory(*args, **kwargs)
        _redact_record(record, flt.secrets)
        return record

    logging.setLogRecordFactory(factory)
    logging.captureWarnings(True)

    def log_uncaught(exc_type, exc, tb):
        logging.getLogger("speech_endpoint").critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    threading.excepthook = lambda a: log_uncaught(a.exc_type, a.exc_value, a.exc_traceback)
    if wrap_streams and values:
        if not isinstance(sys.stdout, RedactingStream):
            sys.stdout = RedactingStream(sys.stdout, flt.secrets)
        if not isinstance(sys.stderr, RedactingStream):
            sys.stderr = RedactingStream(sys.stderr, flt.secrets)
    attach_filter_everywhere()
    return flt


def attach_filter_everywhere() -> None:
    """Add the redaction filter to every handler of every logger (libraries such as
    transformers install their own, non-propagating handlers)."""
    if _installed_filter is None:
        return
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if _installed_filter not in handler.filters:
                handler.addFilter(_installed_filter)


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """One stderr handler on the root logger (uvicorn's loggers propagate to it), with the
    redaction filter, plus `install_redaction`."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    install_redaction(secrets)


def safe_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line description of a start-up failure for the health route: the exception
    type and the first line of its message, truncated, with secrets redacted.

    The handler's own start-up errors (missing ASR_MODEL, gated diarization model) are
    written to be shown; library errors may name paths, which is acceptable for a
    health message on an endpoint whose operator reads it."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return redact(text[:500], list(secrets) or secret_values())


# ---- loading the handler like the platform ----------------------------------------------


def load_handler(folder: str | os.PathLike) -> Any:
    """`EndpointHandler(folder)` from `folder/handler.py`, imported the way the inference
    toolkit does: the folder goes first on sys.path (for the handler's own modules), the
    file is imported as module `handler`, and the class gets the folder path."""
    folder = str(Path(folder).resolve())
    path = Path(folder) / "handler.py"
    if not path.is_file():
        raise FileNotFoundError(f"No handler.py in {folder}")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("handler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    return module.EndpointHandler(folder)


def is_client_error(exc: BaseException) -> bool:
    """A `speech_endpoint.errors.ClientError` (also when a handler folder carries its own
    copy of the module, i.e. the same class loaded twice)."""
    from speech_endpoint.errors import ClientError

    if isinstance(exc, ClientError):
        return True
    return any(c.__name__ == "ClientError" and c.__module__.endswith("errors") for c in type(exc).__mro__)


# ---- request parsing (pure) -------------------------------------------------------------


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


# ---- settings, worker, queue, metrics -------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    max_queue: int = 16  # requests waiting while one runs; more are refused with 503
    request_timeout_s: float = 600.0  # from admission (queue wait included) to answer
    max_body_bytes: int = 200 * 1024 * 1024
    api_token: str | None = None  # when set, POST needs `Authorization: Bearer <token>`
    retry_after_s: int = 5  # Retry-After on 503 while loading or when the queue is full

    def __post_init__(self):
        if self.max_queue < 0 or self.request_timeout_s <= 0 or self.max_body_bytes < 1:
            raise ValueError("max_queue must be >= 0, request_timeout_s > 0, max_body_bytes >= 1")

    def __repr__(self) -> str:  # never show the token
        token = "set" if self.api_token else None
        return (f"ServerSettings(max_queue={self.max_queue}, request_timeout_s={self.request_timeout_s}, "
                f"max_body_bytes={self.max_body_bytes}, api_token={token}, retry_after_s={self.retry_after_s})")


class Worker:
    """One daemon thread running submitted callables in order; results come back as
    asyncio futures. A daemon, so a shutdown never waits for a long transcription."""

    def __init__(self, name: str = "handler-worker"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((fn, future, loop))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, future, loop = item
            try:
                result, error = fn(), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed (shutdown)
                return


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Slot:
    """The one handler slot with a FIFO of waiters. Ownership passes directly from the
    releasing request to the next waiter, so nobody can jump the queue."""

    def __init__(self):
        self.busy = False
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    def try_enter(self, max_waiting: int) -> bool | None:
        """True: got the slot now; None: must wait (`wait`); False: queue full."""
        if not self.busy and not self.waiters:
            self.busy = True
            return True
        return None if len(self.waiters) < max_waiting else False

    async def wait(self, timeout: float) -> bool:
        """Queue up; True once the slot is ours, False after `timeout` (then not queued)."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await asyncio.wait({future}, timeout=max(timeout, 0))
        except BaseException:
            self._leave(future)
            raise
        if future.done():
            return True
        self._leave(future)
        return False

    def _leave(self, future: asyncio.Future) -> None:
        if future.done() and not future.cancelled():
            self.release()  # it was handed to us but we are leaving: pass it on
            return
        try:
            self.waiters.remove(future)
        except ValueError:
            pass
        future.cancel()

    def release(self) -> None:
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.busy = False


class Metrics:
    def __init__(self):
        self.by_status: collections.Counter[int] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.duration_sum = 0.0
        self.duration_count = 0

    def render(self, *, queue_size: int, queue_capacity: int, ready: bool) -> str:
        lines = [
            "# HELP speech_queue_size Requests waiting for the handler.",
            "# TYPE speech_queue_size gauge",
            f"speech_queue_size {queue_size}",
            "# HELP speech_queue_capacity Requests that may wait before the server answers 503.",
            "# TYPE speech_queue_capacity gauge",
            f"speech_queue_capacity {queue_capacity}",
            "# HELP speech_requests_in_flight Handler calls running now (including ones whose request timed out).",
            "# TYPE speech_requests_in_flight gauge",
            f"speech_requests_in_flight {self.in_flight}",
            "# HELP speech_model_ready 1 once the handler is loaded.",
            "# TYPE speech_model_ready gauge",
            f"speech_model_ready {int(ready)}",
            "# HELP speech_requests_total Inference requests (POST / and /predict) answered, by HTTP status.",
            "# TYPE speech_requests_total counter",
        ]
        lines += [f'speech_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.by_status.items())]
        lines += [
            "# HELP speech_requests_dropped_total Requests whose work was skipped or whose result was discarded.",
            "# TYPE speech_requests_dropped_total counter",
        ]
        lines += [f'speech_requests_dropped_total{{reason="{r}"}} {n}' for r, n in sorted(self.dropped.items())]
        lines += [
            "# HELP speech_request_duration_seconds Time from admission to answer of requests answered 200.",
            "# TYPE speech_request_duration_seconds summary",
            f"speech_request_duration_seconds_sum {self.duration_sum:.6f}",
            f"speech_request_duration_seconds_count {self.duration_count}",
        ]
        return "\n".join(lines) + "\n"


class BodyTooLarge(Exception):
    pass


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


def _request_id(scope) -> str:
    return scope.get("speech_endpoint.request_id") or "-"


class RequestContextMiddleware:
    """Pure ASGI: gives each HTTP request an id (a sane incoming X-Request-Id is kept),
    sets the `X-Request-Id` response header, counts inference responses by status, and
    turns an unexpected exception into a logged 500 (never a traceback to the client)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers, MutableHeaders

        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope["speech_endpoint.request_id"] = request_id
        counted = scope["method"] == "POST" and scope["path"] in ("/", "/predict")
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                if counted:
                    self.metrics.by_status[message["status"]] += 1
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - logged with its traceback, answered as 500
            log.exception("request %s: unhandled server error", request_id)
            if not started:
                body = json.dumps({"error": "internal error", "request_id": request_id}).encode()
                await send_with_id({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})


# ---- the app ---------------------------------------------------------------------------


class _State:
    def __init__(self):
        self.status = "loading"  # loading | ready | failed
        self.handler: Any = None
        self.error: str | None = None


def create_app(handler_factory: Callable[[], Any], settings: ServerSettings | None = None, *,
               secrets: Iterable[str] | None = None):
    """The ASGI app. `handler_factory()` runs on the worker thread at start-up (the server
    answers health meanwhile) and must return a callable `handler(data) -> dict`."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    settings = settings or ServerSettings()
    secret_list = list(secrets) if secrets is not None else secret_values([settings.api_token])
    state = _State()
    slot = Slot()
    metrics = Metrics()
    worker_box: dict[str, Worker] = {}

    def error(status: int, message: str, headers: dict[str, str] | None = None, **extra) -> Response:
        return JSONResponse({"error": redact(message, secret_list), **extra}, status_code=status, headers=headers)

    def loaded(future: asyncio.Future) -> None:
        exc = future.exception()
        if exc is None:
            state.handler, state.status = future.result(), "ready"
            attach_filter_everywhere()
            log.info("handler loaded; serving requests")
        else:
            state.error, state.status = safe_error(exc, secret_list), "failed"
            attach_filter_everywhere()
            log.error("loading the handler failed", exc_info=(type(exc), exc, exc.__traceback__))

    @asynccontextmanager
    async def lifespan(app):
        worker = worker_box["worker"] = Worker()
        log.info("loading the handler in the background (%r)", settings)
        worker.submit(handler_factory).add_done_callback(loaded)
        try:
            yield
        finally:
            worker.stop()

    async def health(request: Request) -> Response:
        if state.status == "ready":
            return PlainTextResponse("Ok")
        if state.status == "loading":
            return PlainTextResponse("Loading the models", status_code=503,
                                     headers={"Retry-After": str(settings.retry_after_s)})
        return PlainTextResponse(f"The models failed to load: {state.error}", status_code=503)

    async def metrics_route(request: Request) -> Response:
        text = metrics.render(queue_size=len(slot.waiters), queue_capacity=settings.max_queue,
                              ready=state.status == "ready")
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    def authorized(request: Request) -> bool:
        if not settings.api_token:
            return True
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), settings.api_token.encode())

    def run_handler(data: dict[str, Any]) -> bytes:
        """On the worker thread: call the handler and encode its answer."""
        result = state.handler(data)
        return json.dumps(result, ensure_ascii=False, allow_nan=False).encode("utf-8")

    async def predict(request: Request) -> Response:
        request_id = _request_id(request.scope)
        if not authorized(request):
            return error(401, "Missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
        if state.status == "loading":
            return error(503, "The models are still loading; retry shortly",
                         {"Retry-After": str(settings.retry_after_s)})
        if state.status == "failed":
            return error(503, f"The models failed to load: {state.error}")
        try:
            body = await read_body(request, settings.max_body_bytes)
            data = parse_request(request.headers.get("content-type"), body,
                                 query_parameters(request.query_params.multi_items()))
        except BodyTooLarge:
            return error(413, f"The request body is larger than the limit of {settings.max_body_bytes} bytes",
                         {"Connection": "close"})
        except RequestError as exc:
            return error(400, str(exc))
        del body

        admitted = time.monotonic()
        deadline = admitted + settings.request_timeout_s
        entered = slot.try_enter(settings.max_queue)
        if entered is False:
            return error(503, f"The server is busy ({settings.max_queue} requests already waiting); retry later",
                         {"Retry-After": str(settings.retry_after_s)})
        if entered is None and not await slot.wait(deadline - time.monotonic()):
            metrics.dropped["timeout_waiting"] += 1
            return error(504, f"The request timed out after {settings.request_timeout_s:g} s waiting in the queue",
                         request_id=request_id)
        handed_over = False
        try:
            if await request.is_disconnected():
                metrics.dropped["client_disconnected"] += 1
                log.info("request %s: client disconnected before its turn; skipped", request_id)
                return Response(status_code=STATUS_CLIENT_CLOSED)
            job = worker_box["worker"].submit(lambda: run_handler(data))
            metrics.in_flight += 1
            handed_over = True
            late = [False]  # set when the request stopped waiting for this job

            def finished(future: asyncio.Future) -> None:
                metrics.in_flight -= 1
                slot.release()
                if future.cancelled() or not late[0]:
                    return
                exc = future.exception()  # a result nobody waits for any more
                if exc is not None and not is_client_error(exc):
                    log.error("request %s: failed after its timeout", request_id,
                              exc_info=(type(exc), exc, exc.__traceback__))

            job.add_done_callback(finished)
            try:
                payload = await asyncio.wait_for(asyncio.shield(job), timeout=max(deadline - time.monotonic(), 0))
            except asyncio.TimeoutError:
                late[0] = True
                metrics.dropped["timeout_running"] += 1
                log.warning("request %s: timed out after %.0f s; its result will be dropped",
                            request_id, settings.request_timeout_s)
                return error(504, f"The request timed out after {settings.request_timeout_s:g} s",
                             request_id=request_id)
            except Exception as exc:  # noqa: BLE001
                if is_client_error(exc):
                    return error(400, str(exc))
                log.error("request %s: internal error (%s)", request_id, type(exc).__name__,
                          exc_info=(type(exc), exc, exc.__traceback__))
                return error(500, "internal error", request_id=request_id)
            metrics.duration_sum += time.monotonic() - admitted
            metrics.duration_count += 1
            return Response(payload, media_type="application/json")
        finally:
            if not handed_over:
                slot.release()

    routes = [
        Route("/", health, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/", predict, methods=["POST"]),
        Route("/predict", predict, methods=["POST"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(RequestContextMiddleware, metrics=metrics)])
    app.state.server = state  # for tests and embedding
    app.state.metrics = metrics
    app.state.slot = slot
    return app

