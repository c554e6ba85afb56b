"""One map from command-line flags to request parameters, shared by every command that
sends or runs a request (client.py, transcribe.py), so a flag means the same everywhere."""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

# flag value -> parameter of the same name (None: not given)
VALUE_FLAGS = ("language", "task", "num_speakers", "min_speakers", "max_speakers", "batch_size", "beam_size")


def add_request_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--language", help="e.g. en or english (default: detected)")
    parser.add_argument("--task", choices=["transcribe", "translate"])
    parser.add_argument("--num-speakers", type=int)
    parser.add_argument("--min-speakers", type=int)
    parser.add_argument("--max-speakers", type=int)
    parser.add_argument("--no-diarization", action="store_true", help="send diarize: false")
    parser.add_argument("--assisted", action="store_true", help="use the assistant model (speculative decoding)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--beam-size", type=int, help="beam search (fewer errors in noise, 2-3x slower on a CPU)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="any other parameter; VALUE is parsed as JSON when it can be")


def parameters_from(args: argparse.Namespace, output_formats: Iterable[str] = ()) -> dict[str, Any]:
    """The request's `parameters` from parsed flags; `output_formats` (srt, vtt, rttm) are
    added to any given with --param."""
    params: dict[str, Any] = {key: getattr(args, key) for key in VALUE_FLAGS if getattr(args, key) is not None}
    if args.no_diarization:
        params["diarize"] = False
    if args.assisted:
        params["assisted"] = True
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    wanted = set(output_formats)
    if wanted:
        params["output_formats"] = sorted(set(params.get("output_formats") or []) | wanted)
    return params
