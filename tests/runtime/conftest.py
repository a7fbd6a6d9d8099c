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


def reopen_as_orphan(database_url: str, workflow_id: str, *, drop_steps_from: int | None = None,
                     owner: str | None = None) -> None:
    """Make a finished workflow look like one whose process died mid-run: PENDING, owned by `owner`.

    One transaction, because the background recovery sweep may look at the row between two.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {prefix}workflow_status SET status = 'PENDING', output = NULL, "
                                 "executor_id = :owner WHERE workflow_uuid = :id"), {"id": workflow_id, "owner": owner})
            if drop_steps_from is not None:
                conn.execute(sa.text(f"DELETE FROM {prefix}operation_outputs WHERE workflow_uuid = :id "
                                     "AND function_id >= :n"), {"id": workflow_id, "n": drop_steps_from})
    finally:
        engine.dispose()


def wait_for_status(workflow_id: str, status: str, timeout: float = 10) -> None:
    """Wait (bounded) until a workflow's row shows ``status``."""
    from helpers import wait_until

    def reached() -> bool:
        found = DBOS.get_workflow_status(workflow_id)
        return found is not None and found.status == status

    wait_until(reached, timeout=timeout, what=f"{workflow_id} to reach {status}", interval=0.02)
