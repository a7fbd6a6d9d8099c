"""Runtime tests: import the vendored runtime straight from the template as ``durable``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNTIME_PARENT = Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"
sys.path.insert(0, str(RUNTIME_PARENT))

from durable import DBOS, DBOSConfig  # noqa: E402


def make_config(database_url: str, **extra: object) -> DBOSConfig:
    config = DBOSConfig(name="runtime-test", application_database_url=database_url)
    config.update(extra)  # type: ignore[typeddict-item]
    return config


@pytest.fixture
def dbos(database_url: str) -> Iterator[type[DBOS]]:
    """A configured, launched runtime on a fresh database; destroyed after the test."""
    DBOS.destroy()
    DBOS(config=make_config(database_url))
    DBOS.launch()
    try:
        yield DBOS
    finally:
        DBOS.destroy()
