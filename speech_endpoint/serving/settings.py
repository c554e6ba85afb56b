"""The server's settings: environment variables, overridden by keyword arguments (the
command line's flags, in `scripts/serve.py`).

| variable | field | default |
|---|---|---|
| HOST | host | 127.0.0.1 |
| PORT | port | 8000 |
| HANDLER_DIR | handler_dir | the launcher's repository |
| API_TOKEN | api_token | none: POST needs no bearer token |
| ALLOW_UNAUTHENTICATED | allow_unauthenticated | false |
| MAX_QUEUE | max_queue | 16 |
| REQUEST_TIMEOUT | request_timeout_s | 600 |
| MAX_BODY_BYTES | max_body_bytes | 200 MiB (the launcher derives it from MAX_PAYLOAD_BYTES) |
| LOG_LEVEL | log_level | info |
| RETRY_AFTER | retry_after_s | 5 |

Empty variables count as unset. `load_settings` reports invalid values naming the
variable (or flag) and never the value; `repr` and `str` show the token as '**********'.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FALLBACK_BODY_LIMIT = 200 * 1024 * 1024
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid", case_sensitive=False, env_ignore_empty=True,
                                      validate_by_name=True, validate_by_alias=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    handler_dir: str | None = None  # folder holding handler.py; None: the launcher's choice
    api_token: SecretStr | None = None  # when set, POST needs `Authorization: Bearer <token>`
    allow_unauthenticated: bool = False  # bind beyond loopback without a token (a proxy authenticates)
    max_queue: int = Field(16, ge=0)  # requests waiting while one runs; more are refused with 503
    request_timeout_s: float = Field(600.0, gt=0, validation_alias="REQUEST_TIMEOUT")  # admission to answer
    max_body_bytes: int = Field(FALLBACK_BODY_LIMIT, ge=1)
    log_level: LogLevel = "info"
    retry_after_s: int = Field(5, ge=0, validation_alias="RETRY_AFTER")  # on 503 while loading / queue full

    @field_validator("api_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return init_settings, env_settings  # keyword arguments win over the environment; no files

    @property
    def token(self) -> str | None:
        """The API token in clear (for comparing and redacting), or None."""
        return self.api_token.get_secret_value() if self.api_token else None


def env_name(field: str) -> str:
    """The environment variable read for `field`."""
    alias = ServerSettings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field.upper()


class SettingsError(ValueError):
    """Invalid settings; the message names each variable or flag, never its value."""


def load_settings(overrides: Mapping[str, Any] | None = None, labels: Mapping[str, str] | None = None
                  ) -> ServerSettings:
    """`ServerSettings` from the environment with `overrides` (field name -> value) on top.
    An invalid value raises `SettingsError` naming where it came from: `labels[field]` (the
    flag, say) for an override, else the environment variable."""
    overrides = dict(overrides or {})
    try:
        return ServerSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            field = _field_of(error["loc"])
            if field is None:
                where = ".".join(str(part) for part in error["loc"]) or "settings"
            elif field in overrides:
                where = (labels or {}).get(field, field)
            else:
                where = f"environment variable {env_name(field)}"
            problems.append(f"{where}: {error['msg']}")
        raise SettingsError("invalid setting: " + "; ".join(problems)) from None


def _field_of(loc: tuple) -> str | None:
    name = str(loc[0]) if loc else ""
    for field in ServerSettings.model_fields:
        if name.lower() in (field, env_name(field).lower()):
            return field
    return None
