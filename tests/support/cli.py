"""Running `captioner` as a user does: `python -m captioner ARGS` in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def captioner(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "captioner", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )
