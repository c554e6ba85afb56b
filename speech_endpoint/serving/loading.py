"""Loading `handler.py` the way the Inference Endpoints toolkit does, and describing what
went wrong in words fit for a client or a health check."""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from speech_endpoint.serving.redaction import redact, secret_values


def load_handler(folder: str | os.PathLike) -> Any:
    """`EndpointHandler(folder)` from `folder/handler.py`, imported the way the inference
    toolkit does: the folder goes first on sys.path (for the handler's own modules), the
    file is imported as module `handler`, and the class gets the folder path.

    Putting the folder on sys.path is the platform's behaviour emulated here, and the one
    place in this package that edits sys.path."""
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
    """A `speech_endpoint.schema.ClientError` (also when a handler folder carries its own
    copy of the module, i.e. the same class loaded twice)."""
    from speech_endpoint.schema import ClientError

    if isinstance(exc, ClientError):
        return True
    return any(c.__name__ == "ClientError" and c.__module__.endswith("errors") for c in type(exc).__mro__)


def safe_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line description of a start-up failure for the health route: the exception
    type and the first line of its message, truncated, with secrets redacted.

    The handler's own start-up errors (missing ASR_MODEL, gated diarization model) are
    written to be shown; library errors may name paths, which is acceptable for a
    health message on an endpoint whose operator reads it."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return redact(text[:500], list(secrets) or secret_values())
