"""Generated workflow IDs: time-ordered UUIDs (version 7), so new rows append to the system tables' keys."""

from __future__ import annotations

import time
import uuid

from durable import DBOS
from durable.ids import time_ordered_uuid


def test_an_id_is_a_version_7_uuid_whose_first_bits_are_the_time() -> None:
    before_ms = time.time_ns() // 1_000_000
    made = uuid.UUID(time_ordered_uuid())
    after_ms = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before_ms <= made.int >> 80 <= after_ms
    assert str(made) == str(made).lower() and len(str(made)) == 36


def test_ids_of_later_milliseconds_sort_after_and_none_repeat() -> None:
    first = [time_ordered_uuid() for _ in range(5000)]
    time.sleep(0.002)
    later = time_ordered_uuid()
    assert all(made < later for made in first)  # as text, as the b-trees compare them
    assert len(set(first)) == len(first)  # 74 random bits within each millisecond


@DBOS.workflow()
def named_by_the_runtime() -> str:
    return DBOS.workflow_id or ""


def test_a_workflow_started_without_an_id_gets_a_time_ordered_one(dbos: type[DBOS]) -> None:
    ids = [named_by_the_runtime() for _ in range(3)]
    assert [uuid.UUID(i).version for i in ids] == [7, 7, 7]
    handle = DBOS.start_workflow(named_by_the_runtime)
    assert handle.get_result() == handle.workflow_id and uuid.UUID(handle.workflow_id).version == 7
