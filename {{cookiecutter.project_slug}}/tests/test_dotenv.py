"""`.env` is for development: `flask` commands read it (python-dotenv, a dev-only dependency), nothing else does."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

DISTRIBUTION = "{{ cookiecutter.project_slug }}"


def test_flask_commands_read_dotenv_and_set_variables_win(tmp_path: Path) -> None:
    """`flask routes` builds the app (Settings.from_env) as `flask run` does, without serving."""
    dotenv_folder = tmp_path / "from-dotenv"  # the app makes its SQLite folder: proof .env was read
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{dotenv_folder / 'app.db'}\nLOG_LEVEL=LOUD\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_SKIP_DOTENV", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "{{ cookiecutter.package_name }}", "routes"],
        cwd=tmp_path,
        env={**env, "LOG_LEVEL": "INFO"},  # set: wins over .env's LOUD, which the app would refuse
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "/healthz" in done.stdout
    assert dotenv_folder.is_dir()


def test_dotenv_is_a_development_dependency_only() -> None:
    """The Docker image installs no dev extra, so no code there can read a .env."""
    requirements = [Requirement(line) for line in importlib.metadata.requires(DISTRIBUTION) or []]
    dotenv = [req for req in requirements if req.name == "python-dotenv"]
    assert dotenv, "python-dotenv should be in the dev extra"
    for req in dotenv:
        assert req.marker is not None and req.marker.evaluate({"extra": "dev"})
        assert not req.marker.evaluate({"extra": ""}), f"{req} would be installed in production"
