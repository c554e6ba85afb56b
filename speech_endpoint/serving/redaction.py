"""Keeping secrets (HF_TOKEN, API_TOKEN) out of what the process logs and prints.

`install_redaction` (through `configure_logging`) redacts every log record when it is
created and again in every handler, and wraps stdout/stderr for text written outside
logging. The values come from `secret_values`: the token variables plus any extra ones.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "API_TOKEN")
REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


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
