"""`.env` is for development: `flask` commands read it (python-dotenv, a dev-only dependency), nothing else does."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

DISTRIBUTION = "{{ cookiecutter.project_slug }}"


def flask_routes(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`flask routes` builds the app (Settings.from_env) the way `flask run` does, without serving."""
    base = {
        k: v for k, v in os.environ.items() if k not in ("FLASK_SKIP_DOTENV", "LOG_LEVEL", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "{{ cookiecutter.package_name }}", "routes"],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_flask_commands_read_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=LOUD\n")
    done = flask_routes(tmp_path)
    assert done.returncode != 0
    assert "LOG_LEVEL='LOUD' is not a log level" in done.stderr


def test_variables_already_set_win_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=LOUD\n")
    done = flask_routes(tmp_path, LOG_LEVEL="INFO", DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}")
    assert done.returncode == 0, done.stderr
    assert "/healthz" in done.stdout


def test_dotenv_is_a_development_dependency_only() -> None:
    """The Docker image installs no dev extra, so no code there can read a .env."""
    requirements = [Requirement(line) for line in importlib.metadata.requires(DISTRIBUTION) or []]
    dotenv = [req for req in requirements if req.name == "python-dotenv"]
    assert dotenv, "python-dotenv should be in the dev extra"
    for req in dotenv:
        assert req.marker is not None and req.marker.evaluate({"extra": "dev"})
        assert not req.marker.evaluate({"extra": ""}), f"{req} would be installed in production"
