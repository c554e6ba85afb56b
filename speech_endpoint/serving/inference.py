"""One inference request from admission to answer, shared by every inference route.

`InferenceService.serve(request, protocol)` checks the bearer token and the handler's
state, reads the body within the limit, parses it with the route's `Protocol`, waits for
the handler slot (bounded FIFO, 503 when full), runs the handler on the worker thread
under the per-request timeout, renders the result with the route's `Protocol` and keeps
the metrics. A route only says how its requests are read and its answers written.
"""
from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from speech_endpoint.serving.admission import Slot, Worker
from speech_endpoint.serving.loading import is_client_error, safe_error
from speech_endpoint.serving.metrics import Metrics
from speech_endpoint.serving.parsing import BodyTooLarge, RequestError, read_body
from speech_endpoint.serving.redaction import attach_filter_everywhere, redact
from speech_endpoint.serving.settings import ServerSettings

log = logging.getLogger("speech_endpoint.server")  # the name this server has always logged under

STATUS_CLIENT_CLOSED = 499  # nginx's convention for "client went away before the answer"
REQUEST_ID_SCOPE_KEY = "speech_endpoint.request_id"


@dataclass(frozen=True)
class Protocol:
    """How one route reads its requests and writes its answers.

    parse(request, body) -> the handler's input, or a `Parsed` when the answer's form
        depends on the request; may be a coroutine function; raises `RequestError` (400).
    render(result) -> the 200 response; runs on the worker thread (an exception is a 500).
    error(status, message, headers, extra) -> an error response; `message` is redacted.
    """

    parse: Callable[[Request, bytes], Any]
    render: Callable[[Any], Response]
    error: Callable[[int, str, dict[str, str] | None, dict[str, Any]], Response]


@dataclass(frozen=True)
class Parsed:
    """What `Protocol.parse` returns for a route whose answer depends on the request (an
    output format, say): the handler's input and the renderer for this request's result."""

    data: Any
    render: Callable[[Any], Response]


def request_id(request: Request) -> str:
    return request.scope.get(REQUEST_ID_SCOPE_KEY) or "-"


class InferenceService:
    """The handler (loaded on the worker thread), its slot and queue, and the metrics."""

    def __init__(self, settings: ServerSettings, metrics: Metrics, slot: Slot, secrets: list[str]):
        self.settings = settings
        self.metrics = metrics
        self.slot = slot
        self.secrets = secrets
        self.status = "loading"  # loading | ready | failed
        self.handler: Any = None
        self.error: str | None = None
        self.worker: Worker | None = None

    # ---- life cycle ----------------------------------------------------------------

    def start(self, handler_factory: Callable[[], Any]) -> None:
        """Start the worker and load the handler on it; the server answers meanwhile."""
        self.worker = Worker()
        self.worker.submit(handler_factory).add_done_callback(self._loaded)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def _loaded(self, future: asyncio.Future) -> None:
        exc = future.exception()
        if exc is None:
            self.handler, self.status = future.result(), "ready"
            attach_filter_everywhere()
            placement = getattr(self.handler, "placement", None)  # a handler that says where it runs
            if placement is not None:
                self.metrics.device(str(placement.device), str(placement.dtype_name))
            log.info("handler loaded; serving requests")
        else:
            self.error, self.status = safe_error(exc, self.secrets), "failed"
            attach_filter_everywhere()
            log.error("loading the handler failed", exc_info=(type(exc), exc, exc.__traceback__))

    # ---- one request ---------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        token = self.settings.token
        if not token:
            return True
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())

    async def serve(self, request: Request, protocol: Protocol) -> Response:
        settings = self.settings

        def error(status: int, message: str, headers: dict[str, str] | None = None, **extra) -> Response:
            return protocol.error(status, redact(message, self.secrets), headers, extra)

        retry = {"Retry-After": str(settings.retry_after_s)}
        if not self.authorized(request):
            return error(401, "Missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
        if self.status == "loading":
            return error(503, "The models are still loading; retry shortly", retry)
        if self.status == "failed":
            return error(503, f"The models failed to load: {self.error}")
        try:
            parsed = protocol.parse(request, await read_body(request, settings.max_body_bytes))
            if inspect.isawaitable(parsed):
                parsed = await parsed
        except BodyTooLarge:
            return error(413, f"The request body is larger than the limit of {settings.max_body_bytes} bytes",
                         {"Connection": "close"})
        except RequestError as exc:
            return error(400, str(exc))
        data, render = (parsed.data, parsed.render) if isinstance(parsed, Parsed) else (parsed, protocol.render)

        admitted = time.monotonic()
        deadline = admitted + settings.request_timeout_s
        entered = self.slot.try_enter(settings.max_queue)
        if entered is False:
            return error(503, f"The server is busy ({settings.max_queue} requests already waiting); retry later",
                         retry)
        if entered is None and not await self.slot.wait(deadline - time.monotonic()):
            self.metrics.drop("timeout_waiting")
            return error(504, f"The request timed out after {settings.request_timeout_s:g} s waiting in the queue",
                         request_id=request_id(request))
        handed_over = False
        try:
            if await request.is_disconnected():
                self.metrics.drop("client_disconnected")
                log.info("request %s: client disconnected before its turn; skipped", request_id(request))
                return Response(status_code=STATUS_CLIENT_CLOSED)
            job, late = self._submit(request_id(request), data, render)
            handed_over = True  # from here the job's end releases the slot
            return await self._answer(job, late, request_id(request), admitted, error)
        finally:
            if not handed_over:
                self.slot.release()

    def _submit(self, rid: str, data: Any, render: Callable[[Any], Response]) -> tuple[asyncio.Future, list[bool]]:
        """Run the handler and the rendering on the worker thread; the slot is released
        when that ends, even after the request stopped waiting for it (`late[0]`)."""
        handler = self.handler
        assert self.worker is not None
        job = self.worker.submit(lambda: render(handler(data)))
        self.metrics.in_flight.inc()
        late = [False]

        def finished(future: asyncio.Future) -> None:
            self.metrics.in_flight.dec()
            self.slot.release()
            if future.cancelled() or not late[0]:
                return
            exc = future.exception()  # a result nobody waits for any more
            if exc is not None and not is_client_error(exc):
                log.error("request %s: failed after its timeout", rid, exc_info=(type(exc), exc, exc.__traceback__))

        job.add_done_callback(finished)
        return job, late

    async def _answer(self, job: asyncio.Future, late: list[bool], rid: str, admitted: float,
                      error: Callable[..., Response]) -> Response:
        timeout_s = self.settings.request_timeout_s
        try:
            remaining = admitted + timeout_s - time.monotonic()
            response = await asyncio.wait_for(asyncio.shield(job), timeout=max(remaining, 0))
        except asyncio.TimeoutError:
            late[0] = True
            self.metrics.drop("timeout_running")
            log.warning("request %s: timed out after %.0f s; its result will be dropped", rid, timeout_s)
            return error(504, f"The request timed out after {timeout_s:g} s", request_id=rid)
        except Exception as exc:  # noqa: BLE001
            if is_client_error(exc):
                return error(400, str(exc))
            log.error("request %s: internal error (%s)", rid, type(exc).__name__,
                      exc_info=(type(exc), exc, exc.__traceback__))
            return error(500, "internal error", request_id=rid)
        self.metrics.duration.observe(time.monotonic() - admitted)
        return response
