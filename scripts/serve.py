#!/usr/bin/env python
"""Serve the custom handler locally (or in a container) with the platform's HTTP contract.

    ASR_MODEL=openai/whisper-large-v3 DIARIZATION_MODEL=pyannote/speaker-diarization-3.1 \\
        HF_TOKEN=hf_... python scripts/serve.py --port 8000

`handler.py` is loaded like the platform loads it (its folder first on sys.path,
`EndpointHandler(folder)`) on a background thread; `GET /health` answers 503 until the
models are loaded, then 200. See `speech_endpoint/server.py` for the routes and answers.

Every option can also come from an environment variable (the flag wins):
HOST, PORT, HANDLER_DIR, API_TOKEN, ALLOW_UNAUTHENTICATED, MAX_QUEUE, REQUEST_TIMEOUT,
MAX_BODY_BYTES, LOG_LEVEL. Model settings (ASR_MODEL, ASSISTANT_MODEL, DIARIZATION_MODEL,
HF_TOKEN, WARMUP, MAX_PAYLOAD_BYTES, ...) are read by the handler itself.

Without an API token the server only binds to loopback addresses, unless
--allow-unauthenticated says that something in front of it (the Inference Endpoints
proxy, in the Docker image) authenticates clients.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from speech_endpoint.server import (  # noqa: E402
    ServerSettings,
    configure_logging,
    create_app,
    load_handler,
    secret_values,
)

DEFAULT_PORT = 8000
FALLBACK_BODY_LIMIT = 200 * 1024 * 1024
TRUE = {"1", "true", "yes", "on"}


def default_body_limit() -> int:
    """Room for a JSON body carrying MAX_PAYLOAD_BYTES of audio as base64 (4/3 larger, plus
    parameters); the handler then enforces the exact audio limit with a clear message."""
    try:
        from config import ModelSettings

        # asr_model is given so a missing ASR_MODEL does not matter here (the handler
        # reports that itself); every other field comes from the environment.
        payload = int(ModelSettings(asr_model=os.environ.get("ASR_MODEL") or "-").max_payload_bytes)
        return payload * 4 // 3 + 64 * 1024
    except Exception:  # noqa: BLE001 - an invalid setting is reported by the handler at load
        return FALLBACK_BODY_LIMIT


def env(name: str, default=None, kind=str):
    """The environment variable `name` converted with `kind`, or `default` when unset."""
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SystemExit(f"serve.py: error: environment variable {name} must be {what}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Serve handler.py over HTTP like a Hugging Face Inference Endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default=env("HOST", "127.0.0.1"), help="bind address (env HOST)")
    p.add_argument("--port", type=int, default=env("PORT", DEFAULT_PORT, int), help="port (env PORT)")
    p.add_argument("--handler-dir", default=env("HANDLER_DIR", str(REPO)),
                   help="folder holding handler.py (env HANDLER_DIR)")
    p.add_argument("--api-token", default=None,
                   help="bearer token required on POST (env API_TOKEN, preferred: flags show in process lists)")
    p.add_argument("--allow-unauthenticated", action="store_true",
                   default=env("ALLOW_UNAUTHENTICATED", "").lower() in TRUE,
                   help="allow binding beyond loopback without an API token (env ALLOW_UNAUTHENTICATED)")
    p.add_argument("--max-queue", type=int, default=env("MAX_QUEUE", 16, int),
                   help="requests that may wait while one runs; beyond that 503 + Retry-After (env MAX_QUEUE)")
    p.add_argument("--request-timeout", type=float, default=env("REQUEST_TIMEOUT", 600.0, float),
                   help="seconds from admission (queue wait included) to answer before 504 (env REQUEST_TIMEOUT)")
    p.add_argument("--max-body-bytes", type=int, default=None,
                   help="largest request body; 413 beyond (env MAX_BODY_BYTES; "
                        "default ModelSettings.max_payload_bytes)")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "info"),
                   choices=["critical", "error", "warning", "info", "debug"], help="(env LOG_LEVEL)")
    return p


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from(args: argparse.Namespace) -> ServerSettings:
    body = args.max_body_bytes
    if body is None:
        body = env("MAX_BODY_BYTES", 0, int) or default_body_limit()
    return ServerSettings(max_queue=args.max_queue, request_timeout_s=args.request_timeout,
                          max_body_bytes=body, api_token=args.api_token or env("API_TOKEN"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    if not settings.api_token and not is_loopback(args.host) and not args.allow_unauthenticated:
        parser.error(f"refusing to listen on {args.host} without an API token: set API_TOKEN (or --api-token), "
                     "bind to 127.0.0.1, or pass --allow-unauthenticated when a proxy in front authenticates")
    secrets = secret_values([settings.api_token])
    configure_logging(args.log_level, secrets)
    handler_dir = str(Path(args.handler_dir).resolve())
    app = create_app(lambda: load_handler(handler_dir), settings, secrets=secrets)

    import uvicorn

    # log_config=None: uvicorn's loggers propagate to the root handler set up above, whose
    # filter (and the record factory) redact secrets.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, log_level=args.log_level,
                lifespan="on", access_log=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
