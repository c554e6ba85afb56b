#!/usr/bin/env python
"""Serve the custom handler locally (or in a container) with the platform's HTTP contract.

    ASR_MODEL=openai/whisper-large-v3 DIARIZATION_MODEL=pyannote/speaker-diarization-3.1 \\
        HF_TOKEN=hf_... python -m scripts.serve --port 8000

`handler.py` is loaded like the platform loads it (its folder first on sys.path,
`EndpointHandler(folder)`) on a background thread; `GET /health` answers 503 until the
models are loaded, then 200. See `speech_endpoint/serving/` for the routes and answers.

Every option can also come from an environment variable (the flag wins):
HOST, PORT, HANDLER_DIR, API_TOKEN, ALLOW_UNAUTHENTICATED, MAX_QUEUE, REQUEST_TIMEOUT,
MAX_BODY_BYTES, LOG_LEVEL, and RETRY_AFTER (no flag); they are read by
`speech_endpoint.serving.settings.ServerSettings`. Model settings (ASR_MODEL,
ASSISTANT_MODEL, DIARIZATION_MODEL, HF_TOKEN, WARMUP, MAX_PAYLOAD_BYTES, ...) are read by
the handler itself.

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

from speech_endpoint.serving.settings import (
    FALLBACK_BODY_LIMIT,
    ServerSettings,
    SettingsError,
    env_name,
    load_settings,
)

REPO = Path(__file__).resolve().parent.parent

# flag -> ServerSettings field
FLAGS = {"--host": "host", "--port": "port", "--handler-dir": "handler_dir", "--api-token": "api_token",
         "--allow-unauthenticated": "allow_unauthenticated", "--max-queue": "max_queue",
         "--request-timeout": "request_timeout_s", "--max-body-bytes": "max_body_bytes", "--log-level": "log_level"}
LABELS = {field: flag for flag, field in FLAGS.items()}


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


def build_parser() -> argparse.ArgumentParser:
    """Flags left out are absent from the parsed namespace (the environment or the default
    decides those); the others come back under their ServerSettings field names."""
    p = argparse.ArgumentParser(description="Serve handler.py over HTTP like a Hugging Face Inference Endpoint.",
                                argument_default=argparse.SUPPRESS)

    def add(flag: str, help: str, default: str | None = None, **kwargs) -> None:
        field = FLAGS[flag]
        if default is None and ServerSettings.model_fields[field].default is not None:
            default = str(ServerSettings.model_fields[field].default)
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs["metavar"] = env_name(field)
        where = f"env {env_name(field)}" + (f"; default {default}" if default else "")
        p.add_argument(flag, dest=field, help=f"{help} ({where})", **kwargs)

    add("--host", "bind address")
    add("--port", "port")
    add("--handler-dir", "folder holding handler.py", "this repository")
    add("--api-token", "bearer token required on POST; prefer the environment: flags show in process lists")
    add("--allow-unauthenticated", "allow binding beyond loopback without an API token", action="store_true")
    add("--max-queue", "requests that may wait while one runs; beyond that 503 + Retry-After")
    add("--request-timeout", "seconds from admission (queue wait included) to answer before 504")
    add("--max-body-bytes", "largest request body; 413 beyond", "room for the handler's MAX_PAYLOAD_BYTES")
    add("--log-level", "log level", choices=["critical", "error", "warning", "info", "debug"])
    return p


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from(args: argparse.Namespace) -> ServerSettings:
    """Flags over the environment; MAX_BODY_BYTES, when neither sets it, from the
    handler's MAX_PAYLOAD_BYTES. Raises `SettingsError` naming the flag or variable."""
    settings = load_settings(vars(args), LABELS)
    if "max_body_bytes" not in settings.model_fields_set:
        settings = settings.model_copy(update={"max_body_bytes": default_body_limit()})
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        parser.error(str(exc))
    if not settings.token and not is_loopback(settings.host) and not settings.allow_unauthenticated:
        parser.error(f"refusing to listen on {settings.host} without an API token: set API_TOKEN (or --api-token), "
                     "bind to 127.0.0.1, or pass --allow-unauthenticated when a proxy in front authenticates")

    from speech_endpoint.serving.app import create_app
    from speech_endpoint.serving.loading import load_handler
    from speech_endpoint.serving.redaction import configure_logging, secret_values

    secrets = secret_values([settings.token])
    configure_logging(settings.log_level, secrets)
    handler_dir = str(Path(settings.handler_dir or REPO).resolve())
    app = create_app(lambda: load_handler(handler_dir), settings, secrets=secrets)

    import uvicorn

    # log_config=None: uvicorn's loggers propagate to the root handler set up above, whose
    # filter (and the record factory) redact secrets.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, log_level=settings.log_level,
                lifespan="on", access_log=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
