"""Helpers shared by the template's tests (and tests/runtime/): PostgreSQL, bounded waits, ports, commands."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_SERVER_URL = PG_ADMIN_URL.rsplit("/", 1)[0]  # append "/<database>" for a database on the same server
IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CACHE_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})  # tools leave these


@functools.cache
def postgres_error() -> str | None:
    """Why PostgreSQL cannot be used, or None; asked once per session."""
    engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc.orig}"
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Skip when PostgreSQL is unreachable, or fail under CI=true, where a skip would hide a broken setup."""
    error = postgres_error()
    if error and IS_CI:
        pytest.fail(error)
    if error:
        pytest.skip(error)


def create_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()


def drop_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise naming ``what`` after ``timeout`` seconds.

    Exceptions from the predicate count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 -- e.g. connection refused while a server starts
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds for a graceful exit, then SIGKILL."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def run(
    argv: Sequence[str | os.PathLike[str]], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion with a deadline; the caller checks ``returncode``.

    In its own process group: past the deadline the whole group is killed, so servers it started (a
    generated suite's gunicorn) do not outlive it.
    """
    with subprocess.Popen(
        [str(a) for a in argv], cwd=cwd, env=dict(env) if env is not None else None, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def project_env(**extra: str) -> dict[str, str]:
    """The environment for a baked project's own commands: no DATABASE_URL leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SYSTEM_DATABASE_URL", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def output_of(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"


def http_status(url: str) -> int:
    """The status code of a GET on ``url`` (an HTTP error is an answer too)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def load_hook(name: str) -> ModuleType:
    """Import a hook as a module: its Jinja line is an unrendered string, so its functions are testable."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is being made
    spec.loader.exec_module(module)
    return module


def dev_tool(name: str) -> str:
    """A command requirements-dev.txt installs (next to this Python), else one on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} not found: install requirements-dev.txt"
    return found


def relative_tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (tool caches aside) by relative path, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not CACHE_NAMES.intersection(p.relative_to(root).parts)
    }
