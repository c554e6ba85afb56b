"""The requirement files keep their roles.

* requirements.txt          what the platform installs on top of its default container
                            (torch 2.5.1, transformers 4.51.3, huggingface_hub 0.30.2, ...):
                            it must never change those. Checked here by a pip dry run in a
                            platform-stack venv, and by .ci/run on a bare container-like venv.
* requirements-platform.txt a stand-in for that container (CI's second venv).
* requirements-current.txt  the current stack, exact pins (local set-up, custom container).
* requirements-dev.txt      test and evaluation tools, installable on both stacks.
* requirements-peers.txt    optional: faster-whisper for the peer benchmark, on top of the
                            current stack without changing its pins.

The static checks run everywhere, offline. The dry run needs the package index and runs
only inside a venv whose torch/torchaudio/transformers/huggingface_hub are the container's;
.ci/run sets CI_STACK=platform there so that it cannot silently skip (and CI_STACK=current
in the current-stack venv, checked against requirements-current.txt).

Also a script, so .ci/run can run the dry run before the dev tools are installed:
    python tests/test_requirements.py dry-run
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    import pytest
except ImportError:  # run as a script in a venv without the dev tools
    pytest = None

REPO = Path(__file__).resolve().parent.parent
PLATFORM_ADDS = REPO / "requirements.txt"
PLATFORM_BASE = REPO / "requirements-platform.txt"
CURRENT = REPO / "requirements-current.txt"
DEV = REPO / "requirements-dev.txt"
PEERS = REPO / "requirements-peers.txt"

# What the container brings and requirements.txt must leave exactly as it is.
PROTECTED = ("torch", "torchaudio", "torchvision", "transformers", "huggingface-hub", "accelerate", "tokenizers")
# What identifies the platform stack in a venv (requirements-platform.txt pins them).
PLATFORM_MARKERS = ("torch", "torchaudio", "transformers", "huggingface-hub")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """{normalized name: specifier} of a requirements file (comments, options and
    `-r` includes skipped). Raises on a line that is not `name<spec>`."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([<>=!~].*)?", line)
        assert m, f"{path.name}: cannot read {raw!r}"
        name = normalize(m.group(1))
        assert name not in pins, f"{path.name}: {name} is listed twice"
        pins[name] = (m.group(3) or "").replace(" ", "")
    return pins


def exact(spec: str) -> str | None:
    return spec[2:] if spec.startswith("==") and "," not in spec else None


def installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def on_platform_stack() -> bool:
    pins = read_pins(PLATFORM_BASE)
    return all(installed(n) == exact(pins[n]) for n in PLATFORM_MARKERS)


def dry_run(requirements: Path = PLATFORM_ADDS, python: str = sys.executable) -> list[tuple[str, str]]:
    """(name, version) of everything `pip install -r requirements` would install or change
    in the environment of `python`, from pip's own dry-run report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
             "-r", str(requirements)],
            capture_output=True, text=True, timeout=900,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pip --dry-run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        data = json.loads(report.read_text())
    return [(normalize(item["metadata"]["name"]), item["metadata"]["version"]) for item in data.get("install", [])]


def changed_protected(would_install: list[tuple[str, str]]) -> list[str]:
    return [f"{name} {installed(name) or '(absent)'} -> {new}"
            for name, new in would_install if name in PROTECTED]


# ---- static checks (every stack, offline) ----------------------------------------------


def test_every_file_parses():
    for path in (PLATFORM_ADDS, PLATFORM_BASE, CURRENT, DEV, PEERS):
        assert read_pins(path), f"{path.name} lists nothing"


def test_platform_additions_leave_the_container_alone():
    pins = read_pins(PLATFORM_ADDS)
    named = sorted(set(pins) & {*PROTECTED, "starlette", "uvicorn"})
    assert not named, f"requirements.txt must not name what the container has: {named}"
    assert exact(pins["pyannote-audio"]) == "3.4.0", "pyannote.audio 4 needs torch >= 2.8"
    loose = sorted(n for n, spec in pins.items() if not exact(spec))
    assert not loose, f"requirements.txt pins everything exactly (markers cannot see torch): {loose}"
    for name in ("pydantic-settings", "av", "soundfile"):
        assert name in pins, f"the handler needs {name}"


def test_platform_stand_in_pins_the_container():
    pins = read_pins(PLATFORM_BASE)
    assert {n: exact(pins.get(n, "")) for n in PLATFORM_MARKERS} == {
        "torch": "2.5.1", "torchaudio": "2.5.1", "transformers": "4.51.3", "huggingface-hub": "0.30.2"}
    assert exact(pins["accelerate"]) == "1.6.0"
    # the container's toolkit uses Starlette's `on_startup`, gone from 0.47 on
    major, minor = (int(p) for p in exact(pins["starlette"]).split(".")[:2])
    assert (major, minor) < (0, 47)
    assert "uvicorn" in pins


def test_current_stack_is_pinned_exactly():
    pins = read_pins(CURRENT)
    loose = sorted(n for n, spec in pins.items() if not exact(spec))
    assert not loose, f"requirements-current.txt pins everything exactly: {loose}"
    for name in ("torch", "torchaudio", "transformers", "huggingface-hub", "accelerate", "pyannote-audio",
                 "pydantic-settings", "av", "soundfile", "starlette", "uvicorn", "requests", "tqdm"):
        assert name in pins, f"requirements-current.txt lacks {name}"
    assert exact(pins["pyannote-audio"]).startswith("4."), "pyannote.audio 4 on the current stack"


def test_dev_tools_fit_both_stacks():
    dev = read_pins(DEV)
    stack = sorted(set(dev) & {*PROTECTED, "pyannote-audio", "starlette", "uvicorn", "numpy"})
    assert not stack, f"requirements-dev.txt must not pin stack packages: {stack}"
    for other in (CURRENT, PLATFORM_ADDS, PLATFORM_BASE):
        pins = read_pins(other)
        clash = {n: (dev[n], pins[n]) for n in set(dev) & set(pins) if dev[n] != pins[n]}
        assert not clash, f"requirements-dev.txt and {other.name} disagree: {clash}"


def test_peers_add_to_the_current_stack_only():
    """requirements-peers.txt names only what requirements-current.txt lacks, pinned exactly
    (pip's dry run on the current stack installed these four and changed nothing)."""
    peers, current = read_pins(PEERS), read_pins(CURRENT)
    assert not set(peers) & set(current), f"already pinned by requirements-current.txt: {set(peers) & set(current)}"
    assert not set(peers) & {*PROTECTED, "numpy"}
    assert all(exact(spec) for spec in peers.values()), peers
    assert {"faster-whisper", "ctranslate2"} <= set(peers)


def test_librosa_stays_out():
    for path in (PLATFORM_ADDS, PLATFORM_BASE, CURRENT, DEV):
        assert "librosa" not in read_pins(path), f"{path.name}: leave librosa out (old llvmlite on 3.11)"


# ---- the installed stack ----------------------------------------------------------------


def _skip(reason: str) -> None:
    if pytest is None:
        raise SystemExit(reason)
    pytest.skip(reason)


def test_current_venv_matches_its_pins():
    """In CI's current-stack venv everything pinned is installed at that version."""
    if os.environ.get("CI_STACK") != "current":
        _skip("CI_STACK is not 'current'")
    wrong = {n: (exact(spec), installed(n)) for n, spec in read_pins(CURRENT).items() if installed(n) != exact(spec)}
    assert not wrong, f"installed differs from requirements-current.txt (pinned, installed): {wrong}"


def test_requirements_txt_would_not_change_the_container_stack():
    """pip install --dry-run -r requirements.txt, here, must not touch torch & co."""
    required = os.environ.get("CI_STACK") == "platform"
    if not on_platform_stack():
        assert not required, (
            "CI_STACK=platform but this venv does not hold requirements-platform.txt's "
            f"{', '.join(f'{n}=={installed(n)}' for n in PLATFORM_MARKERS)}")
        _skip("not a platform-stack venv (torch 2.5.1 / transformers 4.51.3)")
    changed = changed_protected(dry_run())
    assert not changed, f"requirements.txt would change the container's stack: {changed}"


if __name__ == "__main__":
    # `python tests/test_requirements.py dry-run`: the same check, as a CI step.
    if sys.argv[1:] != ["dry-run"]:
        raise SystemExit(__doc__)
    if not on_platform_stack():
        raise SystemExit("not a platform-stack venv: install requirements-platform.txt first")
    would = dry_run()
    print(f"pip --dry-run -r requirements.txt would install {len(would)} packages:")
    print("  " + " ".join(f"{n}=={v}" for n, v in sorted(would)))
    problems = changed_protected(would)
    if problems:
        print("FAIL: requirements.txt would change the container's stack: " + "; ".join(problems))
        raise SystemExit(1)
    print(f"OK: none of {', '.join(PROTECTED)} would change")
