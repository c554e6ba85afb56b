"""A local stand-in for the Inference Endpoints serving container.

`app.create_app(handler_factory, settings)` builds an ASGI app (Starlette) that serves
the platform's contract for a custom handler; `scripts/serve.py` runs it with uvicorn and
`loading.load_handler(folder)` loads `handler.py` exactly as the platform does.

Contract
  GET  /, /health   200 "Ok" once the handler is loaded; 503 while loading or after a
                    failed load (with a safe message).
  POST /, /predict  body `application/json` {"inputs": base64, "parameters": {...}}, or the
                    audio bytes with an `audio/*` (or application/octet-stream, or no)
                    content type. Query-string parameters are used when the body has none.
                    A body without a content type that starts with `{` is read as JSON (older
                    huggingface_hub clients send JSON that way).
  POST /v1/audio/transcriptions, /v1/audio/translations
                    OpenAI's audio API: multipart/form-data in, json / text / srt / vtt /
                    verbose_json out, errors as {"error": {"message", "type", "param",
                    "code"}} (`openai_api`, `openai_format`).
  GET  /metrics     Prometheus text: requests by status, latency histogram, queue, in flight,
                    model readiness, process memory.
  GET  /demo        a page (HTML + JavaScript, no token needed to load it) that sends a
                    file or a recording to POST / and shows the turns, a timeline and
                    SRT/VTT/RTTM/JSON downloads.

  200 the handler's JSON; 400 {"error": msg} for every `ClientError` and malformed request;
  401 bad or missing bearer token (when one is configured); 413 body over the limit;
  503 loading / load failed / queue full (with Retry-After, except a failed load);
  504 per-request timeout; 500 {"error": "internal error", "request_id"} otherwise.
  Every response has an `X-Request-Id` header.

The handler runs on one worker thread, one request at a time (as one platform replica
does); requests wait in a bounded FIFO queue. Secrets (HF_TOKEN, API_TOKEN) are redacted
from every log record and from what the process writes to stdout/stderr.

Modules, one job each: `settings` (ServerSettings), `redaction` (secrets out of logs),
`loading` (handler.py like the platform), `parsing` (HTTP body -> handler input),
`admission` (worker thread, FIFO slot), `metrics` (Prometheus), `inference` (one request
from admission to answer, shared by every inference route), `openai_api` and
`openai_format` (OpenAI's audio routes), `demo` (the page, static/demo.html), `app` (routes,
middleware).
Importing this package imports none of them (`loading` needs no web framework).
"""
