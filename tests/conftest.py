"""Shared fixtures: tiny random-weight checkpoints built offline once per session, and
handlers built the way the platform builds them (repo folder on sys.path, then
`EndpointHandler(path)`), with settings from the environment and the test's values over it
(passed as `ModelSettings`: the environment is not edited)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent  # on sys.path (pyproject.toml), as the platform does

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from support.server import fast_models  # noqa: E402,F401 - a fixture for the server tests

torch.set_num_threads(1)  # 2 shared cores: more threads stall under contention

MODEL_ENV = ("ASR_MODEL", "ASSISTANT_MODEL", "DIARIZATION_MODEL", "HF_TOKEN")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Paths of tiny random checkpoints: .whisper, .assistant, .diarization."""
    from support.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


def settings_from(**env: str | None):
    """The endpoint's settings: the environment with these values over it (environment names;
    the model settings not given, and a None value, count as unset). Nothing is written to
    the environment."""
    from config import ModelSettings

    values = {**{name: None for name in MODEL_ENV}, **env}
    return ModelSettings.from_env(**{name.lower(): None if value is None else str(value) for name, value in values.items()})


@contextmanager
def handler_with(**env):
    """`EndpointHandler(REPO)` with these settings (see `settings_from`), for module-scoped
    fixtures."""
    from handler import EndpointHandler

    yield EndpointHandler(str(REPO), settings=settings_from(**env))


@pytest.fixture
def make_handler():
    """Build `EndpointHandler(REPO)` with the given settings (see `settings_from`)."""

    def build(**env: str | None):
        from handler import EndpointHandler

        return EndpointHandler(str(REPO), settings=settings_from(**env))

    return build


@pytest.fixture(scope="session")
def real_whisper_dir():
    """The real Whisper checkpoint named by WHISPER_MODEL_DIR; tests skip without it."""
    path = os.environ.get("WHISPER_MODEL_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("WHISPER_MODEL_DIR is not set to a real Whisper checkpoint")
    return Path(path)


@pytest.fixture(scope="session")
def dialogue_dir():
    """The two-speaker dialogue with ground truth named by DIALOGUE_DIR."""
    path = os.environ.get("DIALOGUE_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("DIALOGUE_DIR is not set to the dialogue folder")
    return Path(path)


@pytest.fixture(scope="session")
def ami_dev_dir():
    """Real AMI meeting excerpts with gold transcripts and turns, named by AMI_DEV_DIR
    (AMI Meeting Corpus, CC BY 4.0; read from there, never copied into the repo)."""
    path = os.environ.get("AMI_DEV_DIR")
    if not path or not (Path(path) / "manifest.json").is_file():
        pytest.skip("AMI_DEV_DIR is not set to the ami-dev folder")
    return Path(path)


@pytest.fixture(scope="session")
def real_diarization_dir():
    """The real pyannote pipeline folder named by DIARIZATION_MODEL_DIR (segmentation-3.0 +
    CAM++; its module must be importable: the folder on PYTHONPATH, as .ci/run sets it)."""
    path = os.environ.get("DIARIZATION_MODEL_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("DIARIZATION_MODEL_DIR is not set to a real diarization pipeline")
    pytest.importorskip("campplus_pyannote", reason="the pipeline folder is not on PYTHONPATH")
    return Path(path)
