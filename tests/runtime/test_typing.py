"""The runtime is typed: ``mypy --strict`` passes on it as shipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import RUNTIME_PARENT


def test_runtime_passes_mypy_strict(tmp_path: Path) -> None:
    # Checked from a copy: the template's folder name ({{cookiecutter.package_name}}) is no package name.
    shutil.copytree(RUNTIME_PARENT / "durable", tmp_path / "durable")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "durable"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
