"""The handler built in this process as the platform builds it (`EndpointHandler(repo)`,
settings from the environment, some given over it), for evaluation scripts that need its
public stages."""
from __future__ import annotations

from evaluation.local_server import REPO


def build_handler(**settings: str | None):
    """`EndpointHandler(REPO)` with these settings (environment names, None: unset) over the
    environment's, which is left as it is."""
    from config import ModelSettings
    from handler import EndpointHandler

    return EndpointHandler(str(REPO), settings=ModelSettings.from_env(**{k.lower(): v for k, v in settings.items()}))
