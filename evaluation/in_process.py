"""The handler built in this process as the platform builds it (`EndpointHandler(repo)`,
settings from the environment), for evaluation scripts that need its public stages."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from evaluation.local_server import REPO


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for the block only."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set(values)
        yield
    finally:
        _set(saved)


def _set(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def build_handler(**settings: str | None):
    """`EndpointHandler(REPO)` with these settings in the environment (None: unset) while it
    loads; the environment is put back afterwards."""
    from handler import EndpointHandler

    with environment(**settings):
        return EndpointHandler(str(REPO))
