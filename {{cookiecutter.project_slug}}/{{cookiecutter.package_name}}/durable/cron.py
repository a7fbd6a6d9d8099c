"""Cron expressions and time zones, as DBOS reads them: six fields put seconds first, five are classic cron.

croniter is imported inside each function: only a project that uses a schedule needs it loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from .error import DBOSException


def cron_ticks(cron: str, after: datetime, tz: tzinfo = UTC) -> Iterator[datetime]:
    """The ticks of ``cron`` strictly after ``after``, read in ``tz`` (each tick carries that zone)."""
    from croniter import croniter  # type: ignore[import-untyped]

    ticks = croniter(cron, after.astimezone(tz), second_at_beginning=True)
    while True:
        yield ticks.get_next(datetime)


def is_valid_cron(cron: str) -> bool:
    from croniter import croniter

    try:
        return bool(croniter.is_valid(cron, second_at_beginning=True))
    except Exception:  # a non-string, for instance
        return False


def check_cron(cron: str) -> None:
    """Raise DBOS's error for an expression croniter cannot read."""
    if not isinstance(cron, str) or not is_valid_cron(cron):
        raise DBOSException(f"Invalid cron schedule: '{cron}'")


def zone(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (UTC for None); raise DBOS's error for an unknown one."""
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, or a malformed key (ValueError)
        raise DBOSException(f"Invalid timezone: '{name}'") from None


def as_utc_if_naive(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC (as DBOS does for backfill windows)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
