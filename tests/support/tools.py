"""System programs some tests need (espeak-ng, Chromium): such a test skips where the
program is missing, except under REQUIRE_SYSTEM_TOOLS=1 (.ci/run installs them), where a
missing program fails the test instead of quietly skipping it."""
from __future__ import annotations

import os
import shutil

import pytest


def require(executable: str) -> str:
    """The program's path; skips (or fails, see above) when it is not installed."""
    path = shutil.which(executable)
    if path:
        return path
    if os.environ.get("REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(f"{executable} is not installed, and REQUIRE_SYSTEM_TOOLS=1 says it must be")
    pytest.skip(f"{executable} is not installed")
