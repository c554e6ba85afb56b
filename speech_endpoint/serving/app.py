"""The ASGI app (Starlette): `create_app(handler_factory, settings)`.

Routes (see the package docstring for the answers):
  GET  /, /health   "Ok" once the handler is loaded, else 503
  POST /, /predict  inference with the platform's request and response shapes
  POST /v1/audio/transcriptions, /v1/audio/translations   OpenAI's audio API
                    (`speech_endpoint.serving.openai_api`)
  GET  /metrics     Prometheus text (`speech_endpoint.serving.metrics`)
  GET  /demo        a page to try POST / in a browser (`speech_endpoint.serving.demo`)

Every inference route is a (path, `Protocol`) pair in `INFERENCE_ROUTES`: the same
`InferenceService` admits, runs and meters them all, and their paths are the ones
counted in `speech_requests_total`.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from speech_endpoint.serving.demo import ROUTES as DEMO_ROUTES
from speech_endpoint.serving.admission import Slot
from speech_endpoint.serving.inference import REQUEST_ID_SCOPE_KEY, InferenceService, Protocol
from speech_endpoint.serving.metrics import CONTENT_TYPE, Metrics
from speech_endpoint.serving.openai_api import OPENAI_ROUTES
from speech_endpoint.serving.parsing import parse_request, query_parameters
from speech_endpoint.serving.redaction import secret_values
from speech_endpoint.serving.settings import ServerSettings

log = logging.getLogger("speech_endpoint.server")

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


# ---- the platform's contract ---------------------------------------------------------------


def platform_parse(request: Request, body: bytes) -> dict[str, Any]:
    return parse_request(request.headers.get("content-type"), body,
                         query_parameters(request.query_params.multi_items()))


def json_render(result: Any) -> Response:
    body = json.dumps(result, ensure_ascii=False, allow_nan=False).encode("utf-8")  # NaN: a 500
    return Response(body, media_type="application/json")


def json_error(status: int, message: str, headers: dict[str, str] | None, extra: dict[str, Any]) -> Response:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


PLATFORM = Protocol(parse=platform_parse, render=json_render, error=json_error)

# POST path -> how its requests are read and answered. The one list of inference routes.
INFERENCE_ROUTES: Mapping[str, Protocol] = {"/": PLATFORM, "/predict": PLATFORM, **OPENAI_ROUTES}


# ---- request ids, status counts, last-resort 500 ------------------------------------------


class RequestContextMiddleware:
    """Pure ASGI: gives each HTTP request an id (a sane incoming X-Request-Id is kept),
    sets the `X-Request-Id` response header, counts the answers of POSTs to
    `counted_paths` by status, and turns an unexpected exception into a logged 500
    (never a traceback to the client)."""

    def __init__(self, app, metrics: Metrics, counted_paths: Iterable[str]):
        self.app = app
        self.metrics = metrics
        self.counted_paths = frozenset(counted_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        counted = scope["method"] == "POST" and scope["path"] in self.counted_paths
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                if counted:
                    self.metrics.answered(message["status"])
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


# ---- the app -------------------------------------------------------------------------------


def create_app(handler_factory: Callable[[], Any], settings: ServerSettings | None = None, *,
               secrets: Iterable[str] | None = None,
               inference_routes: Mapping[str, Protocol] = INFERENCE_ROUTES) -> Starlette:
    """The ASGI app. `handler_factory()` runs on the worker thread at start-up (the server
    answers health meanwhile) and must return a callable `handler(data) -> dict`."""
    settings = settings or ServerSettings()
    secret_list = list(secrets) if secrets is not None else secret_values([settings.token])
    slot = Slot()
    service: InferenceService

    metrics = Metrics(queue_size=lambda: len(slot.waiters), queue_capacity=settings.max_queue,
                      ready=lambda: service.status == "ready")
    service = InferenceService(settings, metrics, slot, secret_list)

    @asynccontextmanager
    async def lifespan(app):
        log.info("loading the handler in the background (%r)", settings)
        service.start(handler_factory)
        try:
            yield
        finally:
            service.stop()

    async def health(request: Request) -> Response:
        if service.status == "ready":
            return PlainTextResponse("Ok")
        if service.status == "loading":
            return PlainTextResponse("Loading the models", status_code=503,
                                     headers={"Retry-After": str(settings.retry_after_s)})
        return PlainTextResponse(f"The models failed to load: {service.error}", status_code=503)

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    def inference(protocol: Protocol):
        async def endpoint(request: Request) -> Response:
            return await service.serve(request, protocol)

        return endpoint

    routes = [
        Route("/", health, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        *(Route(path, inference(protocol), methods=["POST"]) for path, protocol in inference_routes.items()),
        Route("/metrics", metrics_route, methods=["GET"]),
        *DEMO_ROUTES,
    ]
    middleware = [Middleware(RequestContextMiddleware, metrics=metrics, counted_paths=inference_routes)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.service = service  # for tests and embedding
    app.state.metrics = metrics
    return app
