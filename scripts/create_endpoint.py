#!/usr/bin/env python
"""Create an Inference Endpoint running this repository's custom handler.

    HF_TOKEN=hf_... python scripts/create_endpoint.py --name speech --repository you/speech-endpoint \\
        --diarization-model pyannote/speaker-diarization-3.1 --wait

The token is read only from the HF_TOKEN environment variable (never a flag, so it stays out
of shell history and process lists). It authenticates the API call and is handed to the
endpoint as a *secret* (not a plain env variable, which the endpoint's UI shows) so the
container can download gated models. `--dry-run` prints the request with secrets masked and
touches no network.

Needs huggingface_hub >= 0.31 on the machine running this script (`env=` appeared in 0.31);
the endpoint's own container is unaffected by that version.
"""
from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

MIN_HUB_VERSION = "0.31.0"
MASK = "***"
SECRET_KWARGS = ("token",)  # kwargs whose whole value is secret; every value under `secrets` is too


class UsageError(ValueError):
    """Bad combination of options: reported without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Create a Hugging Face Inference Endpoint for the Whisper + pyannote handler. "
        "Reads the token from the HF_TOKEN environment variable.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--name", required=True, help="endpoint name")
    p.add_argument("--repository", required=True, help="hub repo holding handler.py and this code")
    p.add_argument("--revision", help="commit or branch of --repository to deploy")
    p.add_argument("--namespace", help="user or organisation owning the endpoint (default: the token's user)")

    hw = p.add_argument_group("hardware and scaling")
    hw.add_argument("--accelerator", default="gpu", help="gpu or cpu")
    hw.add_argument("--vendor", default="aws")
    hw.add_argument("--region", default="us-east-1")
    hw.add_argument("--instance-type", default="nvidia-a10g")
    hw.add_argument("--instance-size", default="x1")
    hw.add_argument("--min-replicas", type=int, default=0, help="0 allows scaling to zero when idle")
    hw.add_argument("--max-replicas", type=int, default=1)
    hw.add_argument(
        "--scale-to-zero-timeout", type=int, metavar="MINUTES",
        help="idle minutes before scaling to zero (only with --min-replicas 0; default 15 then)",
    )

    models = p.add_argument_group("models (sent as the endpoint's environment variables)")
    models.add_argument("--asr-model", default="openai/whisper-large-v3")
    models.add_argument("--assistant-model", default="distil-whisper/distil-large-v3",
                        help="draft model for speculative decoding")
    models.add_argument("--no-assistant", action="store_true", help="deploy without an assistant model")
    models.add_argument(
        "--diarization-model",
        help="enables diarization. pyannote/speaker-diarization-3.1 suits the platform's default "
        "container (pyannote.audio 3); pyannote/speaker-diarization-community-1 needs pyannote.audio 4 "
        "(a custom image). Both are gated: accept their terms with the HF_TOKEN account",
    )
    models.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra non-secret setting, e.g. DEFAULT_ASSISTED=auto (repeatable)")

    image = p.add_argument_group("custom container (default: the platform's own image)")
    image.add_argument("--custom-image-url", help="e.g. ghcr.io/you/speech-endpoint:latest")
    image.add_argument("--custom-image-port", type=int, default=80)
    image.add_argument("--custom-image-health-route", default="/health")

    run = p.add_argument_group("run")
    run.add_argument("--dry-run", action="store_true",
                     help="print the request (secrets masked) and exit without contacting the API")
    run.add_argument("--wait", action="store_true", help="wait until the endpoint is running")
    run.add_argument("--wait-timeout", type=int, default=1800, metavar="SECONDS")
    return p


def build_request(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments for `huggingface_hub.create_inference_endpoint`. Pure (no I/O),
    so tests and --dry-run see exactly what a real run sends. Raises UsageError."""
    if args.min_replicas < 0 or args.max_replicas < 1 or args.max_replicas < args.min_replicas:
        raise UsageError("need 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1")

    request: dict[str, Any] = {
        "name": args.name,
        "repository": args.repository,
        "framework": "pytorch",
        "task": "custom",  # runs handler.py's EndpointHandler
        "accelerator": args.accelerator,
        "vendor": args.vendor,
        "region": args.region,
        "instance_type": args.instance_type,
        "instance_size": args.instance_size,
        "min_replica": args.min_replicas,
        "max_replica": args.max_replicas,
    }
    if args.min_replicas == 0:
        timeout = 15 if args.scale_to_zero_timeout is None else args.scale_to_zero_timeout
        if timeout < 1:
            raise UsageError("--scale-to-zero-timeout must be at least 1 minute")
        request["scale_to_zero_timeout"] = timeout
    elif args.scale_to_zero_timeout is not None:
        raise UsageError("--scale-to-zero-timeout only applies with --min-replicas 0")
    if args.revision:
        request["revision"] = args.revision
    if args.namespace:
        request["namespace"] = args.namespace

    env = {"ASR_MODEL": args.asr_model}
    if not args.no_assistant and args.assistant_model:
        env["ASSISTANT_MODEL"] = args.assistant_model
    if args.diarization_model:
        env["DIARIZATION_MODEL"] = args.diarization_model
    for item in args.env:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--env expects NAME=VALUE, got {key or item!r}")
        if key.upper() == "HF_TOKEN":
            raise UsageError("HF_TOKEN is sent as a secret from your environment; do not pass it with --env")
        env[key] = value
    request["env"] = env

    if args.custom_image_url:
        if not 1 <= args.custom_image_port <= 65535:
            raise UsageError("--custom-image-port must be between 1 and 65535")
        route = args.custom_image_health_route
        # Key names as the Endpoints API spells them (camelCase: `healthRoute`, not
        # `health_route`); huggingface_hub forwards this dict as-is.
        request["custom_image"] = {
            "url": args.custom_image_url,
            "port": args.custom_image_port,
            "healthRoute": route if route.startswith("/") else "/" + route,
        }

    token = environ.get("HF_TOKEN", "").strip()
    if token:
        request["secrets"] = {"HF_TOKEN": token}
        request["token"] = token
    return request


def redact(request: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to print or log: the token and every secret value become "***"."""
    safe = copy.deepcopy(dict(request))
    for key in SECRET_KWARGS:
        if safe.get(key) is not None:
            safe[key] = MASK
    if isinstance(safe.get("secrets"), dict):
        safe["secrets"] = {name: MASK for name in safe["secrets"]}
    return safe


def unsupported_kwargs(create: Any, request: Mapping[str, Any]) -> list[str]:
    """Keyword arguments the installed `create_inference_endpoint` does not accept."""
    params = inspect.signature(create).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return [key for key in request if key not in params]


def _upgrade_message(version: str, missing: Sequence[str]) -> str:
    return (
        f"huggingface_hub {version} on this machine cannot send {', '.join(missing)} to the "
        "Inference Endpoints API (create_inference_endpoint has no such argument); without it the "
        "endpoint would start without its model settings. Upgrade huggingface_hub on this machine, the "
        f"one running this script: pip install -U 'huggingface_hub>={MIN_HUB_VERSION}'. "
        "The endpoint's container does not need it."
    )


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """Error messages come from the network layer; make sure no secret is echoed back."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        request = build_request(args, environ)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secrets = [request.get("token") or "", *(request.get("secrets") or {}).values()]

    try:
        import huggingface_hub
    except ImportError:
        huggingface_hub = None

    if args.dry_run:
        print(json.dumps(redact(request), indent=2, sort_keys=True))
        if "token" not in request:
            print("note: HF_TOKEN is not set; a real run would stop here.", file=sys.stderr)
        if huggingface_hub is None:
            print(f"note: huggingface_hub is not installed (need >= {MIN_HUB_VERSION}).", file=sys.stderr)
        elif missing := unsupported_kwargs(huggingface_hub.create_inference_endpoint, request):
            print("note: " + _upgrade_message(huggingface_hub.__version__, missing), file=sys.stderr)
        return 0

    if "token" not in request:
        print(
            "error: set the HF_TOKEN environment variable to a token allowed to create endpoints "
            "(and to read the gated models); it is never taken from the command line.",
            file=sys.stderr,
        )
        return 2
    if huggingface_hub is None:
        print(f"error: pip install 'huggingface_hub>={MIN_HUB_VERSION}'", file=sys.stderr)
        return 2
    create = huggingface_hub.create_inference_endpoint
    if missing := unsupported_kwargs(create, request):
        print("error: " + _upgrade_message(huggingface_hub.__version__, missing), file=sys.stderr)
        return 2

    try:
        endpoint = create(**request)
    except Exception as exc:  # HTTP errors, validation by the API, ...
        print(f"error: creating the endpoint failed: {_scrub(str(exc), secrets)}", file=sys.stderr)
        return 1
    print(f"created endpoint {endpoint.name!r} (status: {endpoint.status})")

    if args.wait:
        print(f"waiting up to {args.wait_timeout} s for it to run...", file=sys.stderr)
        try:
            endpoint = endpoint.wait(timeout=args.wait_timeout)
        except Exception as exc:  # timeout or a failed deployment
            print(f"error: endpoint did not start: {_scrub(str(exc), secrets)}", file=sys.stderr)
            return 1
    if endpoint.url:
        print(f"URL: {endpoint.url}")
    else:
        print("URL: not assigned yet; rerun with --wait, or check https://endpoints.huggingface.co")
    return 0


if __name__ == "__main__":
    sys.exit(main())
