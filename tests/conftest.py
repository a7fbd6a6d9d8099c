"""Shared fixtures: PostgreSQL access, a database per test, bakes shared across the session."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baking import DEFAULT_COMBINATION, Bakery, combination_id
from helpers import (  # noqa: F401 -- re-exported for tests/runtime/
    IS_CI,
    PG_ADMIN_URL,
    PG_SERVER_URL,
    create_database,
    drop_database,
    free_port,
    require_postgres,
    wait_until,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test: a SQLite file, or a uniquely named PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    require_postgres()
    name = f"t_{uuid.uuid4().hex[:12]}"
    create_database(name)
    try:
        yield f"{PG_SERVER_URL}/{name}"
    finally:
        drop_database(name)


@pytest.fixture(scope="session", autouse=True)
def tool_path() -> Iterator[None]:
    """Let hooks find uv (installed next to this Python) and share one uv cache across bakes."""
    saved = {key: os.environ.get(key) for key in ("PATH", "UV_CACHE_DIR")}
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["UV_CACHE_DIR"] = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def bakery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bakery]:
    shop = Bakery(tmp_path_factory.mktemp("bakes"))
    try:
        yield shop
    finally:
        shop.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the tests of one bake run in one worker, so each combination is baked once.

    A bake (with its venv) costs a minute; each worker has its own session, hence its own ``bakery``.
    ``--dist loadgroup`` keeps a group together and spreads everything else.
    """
    for item in items:
        params = getattr(item, "callspec", None)
        combination = params.params.get("baked") or params.params.get("combination") if params else None
        if combination is None and "bakery" in getattr(item, "fixturenames", ()):
            combination = DEFAULT_COMBINATION
        if combination is not None:
            item.add_marker(pytest.mark.xdist_group(combination_id(combination)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if IS_CI and skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} test(s) skipped; CI must run every test (is PostgreSQL up?)", red=True
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test fails the run: a skip there means a service CI should provide is missing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IS_CI and reporter is not None and reporter.stats.get("skipped") and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
