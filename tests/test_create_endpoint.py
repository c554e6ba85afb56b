"""scripts/create_endpoint.py, offline: the request it builds, that the token never shows,
and that its keyword arguments bind to the installed huggingface_hub's real signature."""
from __future__ import annotations

import functools
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest

from scripts import create_endpoint as ce

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "create_endpoint.py"
FAKE_TOKEN = "hf_FAKEtoken1234567890"
BASE = ["--name", "speech-test", "--repository", "me/speech-endpoint"]
# Tests that bind against the installed create_inference_endpoint need the hub release the
# script asks for; the platform container's 0.30 lacks `env=` (the script then refuses, as
# test_old_huggingface_hub_without_env_gets_upgrade_advice checks).
needs_script_hub = pytest.mark.skipif(
    tuple(int(p) for p in huggingface_hub.__version__.split(".")[:2])
    < tuple(int(p) for p in ce.MIN_HUB_VERSION.split(".")[:2]),
    reason=f"huggingface_hub {huggingface_hub.__version__} < {ce.MIN_HUB_VERSION}, which the script needs",
)


def request_for(*extra: str, token: str | None = FAKE_TOKEN) -> dict:
    args = ce.build_parser().parse_args([*BASE, *extra])
    return ce.build_request(args, {"HF_TOKEN": token} if token else {})


def run_script(*argv: str, token: str | None = FAKE_TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env["HF_HUB_OFFLINE"] = "1"  # belt and braces: nothing here may reach the hub
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=env, timeout=120)


# ---- build_request / redact -----------------------------------------------------------


def test_default_request():
    req = request_for()
    assert req["framework"] == "pytorch" and req["task"] == "custom"
    assert (req["accelerator"], req["vendor"], req["region"]) == ("gpu", "aws", "us-east-1")
    assert (req["instance_type"], req["instance_size"]) == ("nvidia-a10g", "x1")
    assert (req["min_replica"], req["max_replica"], req["scale_to_zero_timeout"]) == (0, 1, 15)
    assert req["env"] == {"ASR_MODEL": "openai/whisper-large-v3", "ASSISTANT_MODEL": "distil-whisper/distil-large-v3"}
    assert req["secrets"] == {"HF_TOKEN": FAKE_TOKEN} and req["token"] == FAKE_TOKEN
    assert FAKE_TOKEN not in json.dumps(req["env"])  # the token is a secret, never a plain env var
    assert "custom_image" not in req and "revision" not in req and "namespace" not in req


def test_models_revision_namespace_and_extra_env():
    req = request_for("--no-assistant", "--diarization-model", "pyannote/speaker-diarization-3.1",
                      "--asr-model", "openai/whisper-small", "--revision", "abc123", "--namespace", "org",
                      "--env", "DEFAULT_ASSISTED=auto")
    assert req["env"] == {"ASR_MODEL": "openai/whisper-small",
                          "DIARIZATION_MODEL": "pyannote/speaker-diarization-3.1", "DEFAULT_ASSISTED": "auto"}
    assert (req["revision"], req["namespace"]) == ("abc123", "org")


def test_custom_image():
    req = request_for("--custom-image-url", "ghcr.io/me/speech:1", "--custom-image-health-route", "health")
    assert req["custom_image"] == {"url": "ghcr.io/me/speech:1", "port": 80, "healthRoute": "/health"}


@pytest.mark.parametrize(
    "extra",
    [
        ("--min-replicas", "2", "--max-replicas", "1"),
        ("--min-replicas", "1", "--scale-to-zero-timeout", "15"),
        ("--scale-to-zero-timeout", "0"),
        ("--env", "HF_TOKEN=x"),
        ("--env", "NOEQUALS"),
        ("--custom-image-url", "x", "--custom-image-port", "0"),
    ],
)
def test_bad_option_combinations(extra):
    with pytest.raises(ce.UsageError):
        request_for(*extra)


def test_scaling_without_scale_to_zero():
    req = request_for("--min-replicas", "1", "--max-replicas", "3")
    assert (req["min_replica"], req["max_replica"]) == (1, 3) and "scale_to_zero_timeout" not in req
    assert request_for("--scale-to-zero-timeout", "30")["scale_to_zero_timeout"] == 30


def test_redact_masks_secrets_without_touching_the_request():
    req = request_for()
    safe = ce.redact(req)
    assert safe["token"] == "***" and safe["secrets"] == {"HF_TOKEN": "***"}
    assert FAKE_TOKEN not in json.dumps(safe)
    assert req["token"] == FAKE_TOKEN  # original left intact for the real call
    assert ce.redact(request_for(token=None)).get("secrets") is None


@needs_script_hub
def test_request_binds_to_installed_signature():
    """Every keyword we send exists in this huggingface_hub (catches renamed arguments)."""
    req = request_for("--custom-image-url", "u", "--revision", "r", "--namespace", "n")
    inspect.signature(huggingface_hub.create_inference_endpoint).bind(**req)


# ---- the script as a subprocess -------------------------------------------------------


def test_dry_run_prints_request_and_never_the_token():
    proc = run_script(*BASE, "--diarization-model", "pyannote/speaker-diarization-3.1",
                      "--custom-image-url", "ghcr.io/me/speech:1", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert FAKE_TOKEN not in proc.stdout and FAKE_TOKEN not in proc.stderr
    body = json.loads(proc.stdout)
    assert body["secrets"] == {"HF_TOKEN": "***"} and body["token"] == "***"
    assert body["env"]["DIARIZATION_MODEL"] == "pyannote/speaker-diarization-3.1"
    assert (body["min_replica"], body["max_replica"], body["scale_to_zero_timeout"]) == (0, 1, 15)
    assert body["custom_image"]["url"] == "ghcr.io/me/speech:1"


def test_missing_token_is_a_clear_error():
    proc = run_script(*BASE, token=None)
    assert proc.returncode == 2
    assert "HF_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


def test_token_is_not_a_flag():
    proc = run_script(*BASE, "--token", "x", "--dry-run")
    assert proc.returncode == 2  # argparse: unrecognized argument


# ---- main() against a recording create_inference_endpoint -----------------------------

REAL_CREATE = huggingface_hub.create_inference_endpoint


class FakeEndpoint:
    def __init__(self, name: str):
        self.name, self.status, self.url = name, "pending", None

    def wait(self, timeout=None, refresh_every=5):
        self.status, self.url = "running", "https://abc.us-east-1.aws.endpoints.huggingface.cloud"
        return self


@pytest.fixture
def recorded(monkeypatch):
    """Replace create_inference_endpoint with a recorder that keeps the real signature and
    binds each call against it, so a wrong keyword fails here as it would for real."""
    calls: list[dict] = []

    @functools.wraps(REAL_CREATE)
    def fake(*args, **kwargs):
        inspect.signature(REAL_CREATE).bind(*args, **kwargs)
        calls.append(kwargs)
        return FakeEndpoint(kwargs["name"])

    monkeypatch.setattr(huggingface_hub, "create_inference_endpoint", fake)
    return calls


@needs_script_hub
def test_main_creates_waits_and_prints_url(recorded, capsys):
    rc = ce.main([*BASE, "--diarization-model", "pyannote/speaker-diarization-community-1",
                  "--custom-image-url", "ghcr.io/me/speech:1", "--wait"], environ={"HF_TOKEN": FAKE_TOKEN})
    out = capsys.readouterr()
    assert rc == 0, out.err
    (kwargs,) = recorded
    assert kwargs["token"] == FAKE_TOKEN and kwargs["secrets"] == {"HF_TOKEN": FAKE_TOKEN}
    assert kwargs["env"]["DIARIZATION_MODEL"] == "pyannote/speaker-diarization-community-1"
    assert kwargs["custom_image"] == {"url": "ghcr.io/me/speech:1", "port": 80, "healthRoute": "/health"}
    assert "https://abc.us-east-1.aws.endpoints.huggingface.cloud" in out.out
    assert FAKE_TOKEN not in out.out + out.err


@needs_script_hub
def test_main_without_wait_says_url_comes_later(recorded, capsys):
    assert ce.main(BASE, environ={"HF_TOKEN": FAKE_TOKEN}) == 0
    assert "not assigned yet" in capsys.readouterr().out


def test_api_errors_are_reported_without_the_token(monkeypatch, capsys):
    def failing(*args, **kwargs):
        raise RuntimeError(f"401 Unauthorized for token {kwargs['token']}")

    monkeypatch.setattr(huggingface_hub, "create_inference_endpoint", failing)
    assert ce.main(BASE, environ={"HF_TOKEN": FAKE_TOKEN}) == 1
    out = capsys.readouterr()
    assert "401 Unauthorized" in out.err and FAKE_TOKEN not in out.out + out.err


def test_old_huggingface_hub_without_env_gets_upgrade_advice(monkeypatch, capsys):
    """huggingface_hub 0.30.x has `secrets=` but no `env=` (added in 0.31)."""

    def create_0_30(name, *, repository, framework, accelerator, instance_size, instance_type, region,
                    vendor, account_id=None, min_replica=0, max_replica=1, scale_to_zero_timeout=15,
                    revision=None, task=None, custom_image=None, secrets=None, type="protected",
                    namespace=None, token=None):
        raise AssertionError("must not be called")

    monkeypatch.setattr(huggingface_hub, "create_inference_endpoint", create_0_30)
    assert ce.main(BASE, environ={"HF_TOKEN": FAKE_TOKEN}) == 2
    err = capsys.readouterr().err
    assert "env" in err and "pip install -U 'huggingface_hub>=0.31.0'" in err and FAKE_TOKEN not in err
