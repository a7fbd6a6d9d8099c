"""One leader per database; leadership moves when the leader's process dies."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from conftest import RUNTIME_PARENT
from durable.leadership import Leadership
from durable.store.dialects import dialect_for
from helpers import wait_until


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    dialect = dialect_for(database_url)
    engine = dialect.create_engine(database_url, pool_size=4, autocommit=True)
    yield engine
    engine.dispose()


def test_only_one_candidate_leads_until_it_resigns(engine: sa.Engine) -> None:
    first, second = Leadership(engine), Leadership(engine)
    assert first.try_lead() is True
    assert second.try_lead() is False
    assert first.try_lead() is True  # confirming keeps it
    first.resign()
    assert second.try_lead() is True and first.try_lead() is False
    second.resign()


HOLDER = f"""
import sys, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable.leadership import Leadership
from durable.store.dialects import dialect_for
url = sys.argv[1]
leader = Leadership(dialect_for(url).create_engine(url, pool_size=2, autocommit=True))
print("leader" if leader.try_lead() else "follower", flush=True)
time.sleep(120)
"""


def test_leadership_moves_when_the_leader_is_killed(engine: sa.Engine, database_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, database_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "leader"
        candidate = Leadership(engine)
        assert candidate.try_lead() is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        wait_until(candidate.try_lead, timeout=20, what="leadership to move to the survivor")
        candidate.resign()
    finally:
        holder.kill()
        holder.wait(timeout=10)
