"""Prune the project by option, record the answers, and optionally set it up (lock, .venv, database).

This hook never exits non-zero: cookiecutter deletes the project when it does, and a failed set-up
(no network, PostgreSQL down) should leave a complete project plus the commands to finish by hand.
Only the stdlib is available here; anything needing psycopg runs inside the new ``.venv``.

``cruft update`` runs this hook again, twice, on throwaway renders of the old and the new template
that it diffs: there it prunes and records the answers (so the renders match the project) and sets
nothing up, since a lock or a migration made there would be thrown away or, worse, reach the user's
database.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RAW_ANSWERS = r"""{{ cookiecutter | jsonify }}"""  # the only Jinja here: no other double braces below

PRUNED_WHEN: dict[tuple[str, object], list[str]] = {  # (option, value) -> paths removed for that answer
    ("include_example", False): [
        "{pkg}/orders",
        "migrations/versions/0002_orders.py",
        "migrations/versions/0004_orders_workflow_id.py",
        "tests/test_orders.py",
        "tests/test_orders_gunicorn.py",
        "tests/test_orders_hostile.py",
        "tests/test_orders_properties.py",
    ],
    ("enable_otlp", False): ["compose.otlp.yaml"],
}
STRAY_NAMES = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")  # copied along with durable/
VENV = ".venv"
STEP_TIMEOUT_SEC = 900

# Runs with the project's own Python, where psycopg is installed; argv: admin conninfo, database name.
CREATE_DATABASE_SCRIPT = (
    "import sys, psycopg; from psycopg import sql; "
    "conn = psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=10); "
    "exists = conn.execute('SELECT 1 FROM pg_database WHERE datname = %s', (sys.argv[2],)).fetchone(); "
    "exists or conn.execute(sql.SQL('CREATE DATABASE ') + sql.Identifier(sys.argv[2])); "
    "print('database', sys.argv[2], 'exists' if exists else 'created')"
)


@dataclass
class Step:
    """One set-up command, as the user would type it in the project folder."""

    what: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    alternative: str = ""  # an easier-to-type equivalent, shown as a comment

    def command(self) -> str:
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        line = " ".join([*assignments, shlex.join(self.argv)])
        return f"{line}\n  # or: {self.alternative}" if self.alternative else line


class SetupError(Exception):
    """A set-up step failed; ``commands`` finish the job by hand."""

    def __init__(self, message: str, commands: str) -> None:
        super().__init__(message)
        self.commands = commands


def remove_path(path: Path) -> None:
    """Delete a file or folder; fine if it is already gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def prune(root: Path, answers: Mapping[str, Any]) -> None:
    """Remove the files the answers turn off, stray caches, then any folder left empty."""
    for (option, value), paths in PRUNED_WHEN.items():
        if answers[option] == value:
            for rel in paths:
                remove_path(root / rel.format(pkg=answers["package_name"]))
    # Bottom-up, so a folder emptied by pruning its children is seen empty too; .venv is not ours to tidy.
    for folder, _subfolders, _files in os.walk(root, topdown=False):
        path = Path(folder)
        if VENV in path.relative_to(root).parts or path == root:
            continue
        if path.name in STRAY_NAMES:
            remove_path(path)
        elif not any(path.iterdir()):
            path.rmdir()


def write_answers_file(root: Path, answers: Mapping[str, Any]) -> None:
    """Record the answers (minus cookiecutter's private "_" keys, which hold local paths) for later updates."""
    public = {key: value for key, value in answers.items() if not key.startswith("_")}
    (root / ".cookiecutter.json").write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")


def admin_conninfo(database_url: str) -> tuple[str, str]:
    """Split an SQLAlchemy PostgreSQL URL into a libpq URI for the server's ``postgres`` database and the name."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    return urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, "")), name


def is_cruft_update_render(root: Path, answers: Mapping[str, Any]) -> bool:
    """Whether this is one of the renders ``cruft update`` diffs, rather than a project someone keeps.

    cruft (alone) puts ``_commit`` in the answers; ``cruft update`` renders each side into a fresh
    ``tempfile.TemporaryDirectory`` (``tmp`` and 8 random characters) holding nothing else, ``cruft
    create`` into the folder the user named. cruft sets no variable to tell them apart;
    ``DBOS_FLASK_NO_SETUP=1`` is the explicit way to skip set-up anywhere.
    """
    if "_commit" not in answers:
        return False
    parent = root.resolve().parent
    return (
        parent.parent == Path(tempfile.gettempdir()).resolve()
        and re.fullmatch(r"tmp[a-z0-9_]{8}", parent.name) is not None
        and [child.name for child in parent.iterdir()] == [root.name]
    )


def plan_setup(answers: Mapping[str, Any], uv: str | None) -> list[Step]:
    """The set-up commands for these answers, in order."""
    python = f"{VENV}/bin/python"
    extras = ["dev", "otlp"] if answers["enable_otlp"] else ["dev"]
    if uv:  # uv reuses its cache across bakes: seconds instead of a minute per project
        extra_flags = [flag for extra in extras for flag in ("--extra", extra)]
        steps = [
            # uv.lock pins every version within pyproject.toml's ranges; Docker and CI install exactly it.
            Step("lock the dependencies", [uv, "lock", "--quiet"]),
            Step("install the locked dependencies into .venv",
                 [uv, "sync", "--quiet", "--frozen", "--python", answers["python_version"], *extra_flags]),
        ]
    else:
        base = shutil.which(f"python{answers['python_version']}") or sys.executable
        steps = [
            Step("create the virtualenv", [base, "-m", "venv", VENV]),
            Step("install the project", [f"{VENV}/bin/pip", "install", "--quiet", "-e", f".[{','.join(extras)}]"]),
        ]
    if answers["database"] == "postgresql":
        conninfo, name = admin_conninfo(answers["postgresql_url"])
        steps.append(
            Step("create the database", [python, "-c", CREATE_DATABASE_SCRIPT, conninfo, name],
                 alternative=shlex.join(["createdb", "--maintenance-db", conninfo, name]))
        )
    steps.append(Step("migrate the database", [f"{VENV}/bin/alembic", "upgrade", "head"]))
    return steps


def run_steps(root: Path, steps: Sequence[Step]) -> None:
    """Run each step in ``root``; on the first failure raise SetupError listing what is left to run."""
    # The answers name the database: an exported DATABASE_URL from another project must not redirect it.
    # Likewise an active virtualenv or uv project environment must not stand in for this project's .venv.
    ignored = ("DATABASE_URL", "SYSTEM_DATABASE_URL", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in ignored}
    for index, step in enumerate(steps):
        print(f"  {step.what} ...", flush=True)
        try:
            done = subprocess.run(
                step.argv, cwd=root, env={**env, **step.env}, capture_output=True, text=True,
                timeout=STEP_TIMEOUT_SEC, check=False,
            )
            detail = (done.stderr or done.stdout).strip() if done.returncode else ""
            failed = done.returncode != 0
        except (OSError, subprocess.TimeoutExpired) as exc:
            detail, failed = str(exc), True
        if failed:
            tail = "\n".join(detail.splitlines()[-8:])
            remaining = "\n".join(f"  {s.command()}" for s in steps[index:])
            raise SetupError(f"could not {step.what}:\n{tail}", f"  cd {shlex.quote(str(root))}\n{remaining}")


def set_up(root: Path, answers: Mapping[str, Any]) -> None:
    """Lock (with uv), create .venv, install the project, create and migrate its database."""
    uv = shutil.which("uv")
    print(f"Setting up {root.name} (set DBOS_FLASK_NO_SETUP=1 or run_setup=false to skip):")
    if not uv:
        print("  uv not found: installing from pyproject.toml's ranges, with no uv.lock (README: Dependencies)")
    run_steps(root, plan_setup(answers, uv))


def setup_skipped_because(root: Path, answers: Mapping[str, Any]) -> str | None:
    """Why set-up does not run for this render, or None when it should."""
    if is_cruft_update_render(root, answers):
        return "cruft update render (the project being updated keeps its .venv, uv.lock and database)"
    if not answers["run_setup"]:
        return "run_setup is false"
    if os.environ.get("DBOS_FLASK_NO_SETUP"):
        return "DBOS_FLASK_NO_SETUP is set"
    return None


def print_next_steps(root: Path, answers: Mapping[str, Any], skipped: str | None) -> None:
    if skipped:
        commands = "\n".join(f"  {step.command()}" for step in plan_setup(answers, shutil.which("uv")))
        print(f"Set-up skipped ({skipped}); to set up, run in {root}:\n{commands}")
    print(
        f"\nDone: {root}\n"
        f"  cd {shlex.quote(str(root))}\n"
        f"  make dev                                        # serve with reload on http://127.0.0.1:8000\n"
        f"  make test                                       # run the tests\n"
        f"  {VENV}/bin/gunicorn --config gunicorn.conf.py   # serve as in production\n"
        f"See README.md for Docker, configuration, updates of the runtime and where to edit workflows."
    )


def main() -> int:
    answers = json.loads(RAW_ANSWERS)
    root = Path.cwd()
    skipped: str | None = None
    try:
        prune(root, answers)
        write_answers_file(root, answers)
        skipped = setup_skipped_because(root, answers)
        if skipped is None:
            set_up(root, answers)
        elif is_cruft_update_render(root, answers):
            # No next steps: nobody keeps this folder (and should someone, README.md says how to set up).
            print(f"{root.name}: set-up skipped, {skipped}")
            return 0
    except SetupError as exc:
        print(f"Set-up stopped: {exc}\nThe project is intact; to finish, run:\n{exc.commands}")
    except Exception as exc:  # noqa: BLE001 -- any escape would make cookiecutter delete the project
        commands = "\n".join(f"  {step.command()}" for step in plan_setup(answers, shutil.which("uv")))
        print(f"Set-up stopped: {type(exc).__name__}: {exc}\nTo finish, run in {root}:\n{commands}")
    print_next_steps(root, answers, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
