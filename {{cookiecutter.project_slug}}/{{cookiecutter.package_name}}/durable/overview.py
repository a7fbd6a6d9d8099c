"""What the dashboard and the metrics read: pages of workflows, queues with their depth and limits.

``DBOS.list_workflows`` pages with LIMIT/OFFSET, as DBOS does; an operator paging through a million
workflows needs pages that cost the same at any depth, so ``workflow_page`` pages by keyset (a cursor
naming the last row seen; ``store/overview_store.py``). Counts are read from the database when asked,
so any process (any gunicorn worker) answers for all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .current import current_runtime
from .handles import WorkflowStatus
from .queues import declared_queues
from .store.overview_store import OverviewStore, PageFilter

MAX_PAGE = 500


@dataclass(frozen=True)
class WorkflowPage:
    """One page, newest first; ``next_cursor`` gets the page after it (None on the last page)."""

    workflows: list[WorkflowStatus]
    next_cursor: str | None


@dataclass(frozen=True)
class QueueOverview:
    """A queue's depth (waiting: ENQUEUED; running: PENDING) and, if declared here, its limits."""

    name: str
    enqueued: int
    pending: int
    declared: bool
    concurrency: int | None = None
    worker_concurrency: int | None = None
    limit_per_period: int | None = None
    period_sec: float | None = None


def workflow_page(
    *,
    status: str | None = None,
    name: str | None = None,
    queue_name: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> WorkflowPage:
    """Workflows matching the filters (times in ISO 8601), newest first, after ``cursor``; without
    their inputs and outputs (``DBOS.get_workflow_status`` has them)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit={limit!r}: a page holds 1 to {MAX_PAGE} workflows")
    rt = current_runtime()
    where = PageFilter(status or None, name or None, queue_name or None, _epoch_ms(start_time), _epoch_ms(end_time))
    rows = OverviewStore(rt.sys_db).page(where, parse_cursor(cursor) if cursor else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    found = [WorkflowStatus.from_row(rt, r, load_input=False, load_output=False) for r in rows]
    last = rows[-1] if more and rows else None
    return WorkflowPage(found, f"{last.created_at}.{last.workflow_id}" if last is not None else None)


def parse_cursor(cursor: str) -> tuple[int, str]:
    """``"<created_at ms>.<workflow id>"`` -> (ms, id); a clear error for anything else."""
    created, dot, workflow_id = cursor.partition(".")
    if not dot or not created.isdigit() or not workflow_id:
        raise ValueError(f"cursor={cursor!r} is not a page cursor; take next_cursor from the page before")
    return int(created), workflow_id


def queue_overview() -> list[QueueOverview]:
    """Every queue declared in this process, and any other with work waiting or running, by name."""
    counts = OverviewStore(current_runtime().sys_db).queue_counts()
    found: dict[str, QueueOverview] = {}
    for queue in declared_queues():
        settings = queue.settings
        limiter = settings.limiter
        depth = counts.get(queue.name, {})
        found[queue.name] = QueueOverview(
            queue.name, depth.get("ENQUEUED", 0), depth.get("PENDING", 0), True,
            settings.concurrency, settings.worker_concurrency,
            limiter["limit"] if limiter else None, limiter["period"] if limiter else None,
        )
    for name, depth in counts.items():
        if name not in found:
            found[name] = QueueOverview(name, depth.get("ENQUEUED", 0), depth.get("PENDING", 0), False)
    return [found[name] for name in sorted(found)]


def step_attempts(workflow_id: str) -> dict[int, int | None]:
    """How many times each recorded step ran (retries included); None for kinds that do not retry."""
    return {step_id: record.attempts
            for step_id, record in current_runtime().checkpoint_store.load_steps(workflow_id).items()}


def step_inputs(workflow_id: str) -> dict[int, Any]:
    """Each step's recorded call, ``{"args": [...], "kwargs": {...}}``, or ``{"unrecorded": why}``.

    Steps that take none (sleeps, messages, child starts) and steps recorded before step 4 have no entry.
    A value the codec can no longer rebuild (its class is gone) is shown as the stored JSON.
    """
    rt = current_runtime()
    found: dict[int, Any] = {}
    for step_id, text in OverviewStore(rt.sys_db).step_inputs(workflow_id).items():
        try:
            found[step_id] = rt.codec.decode_shown(text)
        except Exception:  # the page shows what is stored rather than failing
            found[step_id] = json.loads(text)
    return found


def count_workflows(status: str) -> int:
    """How many workflows have ``status`` now (the pending gauge reads PENDING)."""
    return OverviewStore(current_runtime().sys_db).count(status)


def _epoch_ms(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time, such as 2026-01-05T10:00") from None
