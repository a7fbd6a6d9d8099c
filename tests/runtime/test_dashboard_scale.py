"""The dashboard's pages at a million workflows: every page, however deep, reads about one page of index.

The rows are written straight into the system table (a million workflows would take too long to run);
the pages are read through ``overview.workflow_page``, as the dashboard does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from durable import DBOS, overview

ROWS = 1_000_000
BUDGET_SEC = 0.5  # per page; about a millisecond when idle, but CI shares two cores with everything else

# created_at: one row per millisecond but every 7th shares its neighbour's (keyset ties); a name out
# of 50, a status out of 4, a queue for one row in 10.
_FILL = """
INSERT INTO {table} (workflow_uuid, status, name, queue_name, created_at, updated_at, owner_generation,
                     workflow_version, recovery_attempts, priority)
SELECT 'wf-' || {pad}, CASE n % 4 WHEN 0 THEN 'SUCCESS' WHEN 1 THEN 'ERROR' WHEN 2 THEN 'PENDING'
       ELSE 'CANCELLED' END, 'job_' || (n % 50), CASE WHEN n % 10 = 0 THEN 'q' || (n % 3) ELSE NULL END,
       1700000000000 + n - (CASE WHEN n % 7 = 0 THEN 1 ELSE 0 END), 1700000000000 + n, 0, '', 0, 0
FROM {numbers}"""


def fill(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                sql = _FILL.format(table="dbos.workflow_status", pad="lpad(n::text, 7, '0')",
                                   numbers=f"generate_series(1, {ROWS}) AS n")
                conn.execute(sa.text(sql))
                conn.execute(sa.text("ANALYZE dbos.workflow_status"))
            else:
                numbers = f"(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {ROWS}) SELECT n FROM c)"
                sql = _FILL.format(table="dbos_workflow_status", pad="substr('0000000' || n, -7)", numbers=numbers)
                conn.execute(sa.text(sql))
                conn.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


def timed(read: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    found = read()
    return found, time.perf_counter() - start


@pytest.mark.timeout(600)
def test_pages_stay_fast_at_a_million_workflows(dbos: type[DBOS], database_url: str) -> None:
    fill(database_url)
    slowest: dict[str, float] = {}
    for label, filters in {
        "all": {},
        "status": {"status": "ERROR"},
        "name": {"name": "job_7"},
        "queue": {"queue_name": "q1"},
        "status+time": {"status": "PENDING", "end_time": "2023-11-14T22:30:00+00:00"},
    }.items():
        cursor = None
        seen: list[str] = []
        for _ in range(4):  # the first pages, then jump deep and page on
            page, took = timed(lambda c=cursor, f=filters: overview.workflow_page(cursor=c, limit=50, **f))
            slowest[label] = max(slowest.get(label, 0.0), took)
            seen += [w.workflow_id for w in page.workflows]
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == 200, label  # no row twice across pages, ties included
        deep = f"{1700000000000 + ROWS // 50}.wf-{ROWS // 50:07d}"  # near the oldest rows
        page, took = timed(lambda c=deep, f=filters: overview.workflow_page(cursor=c, limit=50, **f))
        slowest[label] = max(slowest[label], took)
        assert page.workflows or label in ("queue", "status+time"), label
    print("page seconds", slowest)
    assert max(slowest.values()) < BUDGET_SEC, slowest
