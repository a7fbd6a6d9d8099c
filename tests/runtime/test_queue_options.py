"""Queue options beyond limits: deduplication IDs, partitions, register_queue, listing, transactional enqueue."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from conftest import wait_for_status
from durable import DBOS, EnqueueInTransaction, Queue, SetEnqueueOptions, SetWorkflowID
from durable.error import DBOSException, DBOSQueueDeduplicatedError

dedup_queue = Queue("test-dedup")
partitioned = Queue("test-partitioned", partition_concurrency=1)
legacy_partitioned = Queue("test-legacy-partitioned", concurrency=1, partition_queue=True)
outbox_queue = Queue("test-outbox")

GATES: dict[str, threading.Event] = {}
RUNNING: list[tuple[str, float, float]] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    GATES.clear()
    RUNNING.clear()


@DBOS.workflow()
def waits_for(gate: str) -> str:
    GATES.setdefault(gate, threading.Event()).wait(10)
    return gate


@DBOS.workflow()
def busy(label: str, seconds: float) -> str:
    start = time.monotonic()
    time.sleep(seconds)
    RUNNING.append((label, start, time.monotonic()))
    return label


@DBOS.workflow()
def echo_value(value: str) -> str:
    return value


# -- deduplication ---------------------------------------------------------------------------------


def test_a_deduplication_id_is_held_while_its_workflow_waits_or_runs(dbos: type[DBOS]) -> None:
    GATES["dedup"] = threading.Event()
    with SetEnqueueOptions(deduplication_id="user-42"):
        first = dedup_queue.enqueue(waits_for, "dedup")
    wait_for_status(first.workflow_id, "PENDING")
    with SetEnqueueOptions(deduplication_id="user-42"), pytest.raises(DBOSQueueDeduplicatedError) as refused:
        dedup_queue.enqueue(waits_for, "dedup")
    assert refused.value.deduplication_id == "user-42" and refused.value.queue_name == "test-dedup"
    assert refused.value.status_code == 409
    with SetEnqueueOptions(deduplication_id="user-7"):  # another ID is free
        other = dedup_queue.enqueue(echo_value, "other")
    assert other.get_result(timeout_seconds=10) == "other"
    GATES["dedup"].set()
    assert first.get_result(timeout_seconds=10) == "dedup"
    with SetEnqueueOptions(deduplication_id="user-42"):  # released once the first finished
        again = dedup_queue.enqueue(echo_value, "again")
    assert again.get_result(timeout_seconds=10) == "again"


@DBOS.workflow()
def fails_once_queued() -> str:
    raise RuntimeError("boom")


def test_resuming_a_workflow_whose_deduplication_id_is_taken_again(dbos: type[DBOS]) -> None:
    """Its ID was freed when it failed; resume drops it (as DBOS does) instead of colliding."""
    with SetWorkflowID("dedup-failed"), SetEnqueueOptions(deduplication_id="again"):
        failed = dedup_queue.enqueue(fails_once_queued)
    with pytest.raises(RuntimeError):
        failed.get_result(timeout_seconds=10)
    GATES["holder"] = threading.Event()
    with SetEnqueueOptions(deduplication_id="again"):
        holder = dedup_queue.enqueue(waits_for, "holder")
    wait_for_status(holder.workflow_id, "PENDING")
    resumed = DBOS.resume_workflow("dedup-failed")
    with pytest.raises(RuntimeError):
        resumed.get_result(timeout_seconds=10)
    status = DBOS.get_workflow_status("dedup-failed")
    assert status is not None and status.deduplication_id is None
    GATES["holder"].set()
    holder.get_result(timeout_seconds=10)


def test_the_same_deduplication_id_on_another_queue_is_independent(dbos: type[DBOS]) -> None:
    GATES["held"] = threading.Event()
    with SetEnqueueOptions(deduplication_id="same"):
        held = dedup_queue.enqueue(waits_for, "held")
        elsewhere = outbox_queue.enqueue(echo_value, "elsewhere")
    assert elsewhere.get_result(timeout_seconds=10) == "elsewhere"
    GATES["held"].set()
    held.get_result(timeout_seconds=10)


def test_deduplication_holds_across_processes_racing(dbos: type[DBOS], database_url: str) -> None:
    """Eight threads race to enqueue one ID: the unique index lets exactly one in."""
    GATES["race"] = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            with SetEnqueueOptions(deduplication_id="race"):
                dedup_queue.enqueue(waits_for, "race")
            result = "enqueued"
        except DBOSQueueDeduplicatedError:
            result = "deduplicated"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    GATES["race"].set()
    assert sorted(outcomes) == ["deduplicated"] * 7 + ["enqueued"]


# -- partitions ------------------------------------------------------------------------------------


def test_partition_concurrency_applies_to_each_key_separately(dbos: type[DBOS]) -> None:
    handles = []
    for key in ("a", "b"):
        for i in range(2):
            with SetEnqueueOptions(queue_partition_key=key):
                handles.append(partitioned.enqueue(busy, f"{key}{i}", 0.3))
    for handle in handles:
        handle.get_result(timeout_seconds=20)
    spans = {label: (start, end) for label, start, end in RUNNING}
    firsts = []
    for key in ("a", "b"):  # one at a time within a partition
        first, second = sorted([spans[f"{key}0"], spans[f"{key}1"]])
        assert second[0] >= first[1] - 0.01, spans
        firsts.append(first)
    # ...while the two partitions ran side by side.
    assert min(end for _, end in firsts) > max(start for start, _ in firsts), spans
    status = DBOS.get_workflow_status(handles[0].workflow_id)
    assert status is not None and status.queue_partition_key == "a"


def test_legacy_partition_queue_applies_concurrency_per_key(dbos: type[DBOS]) -> None:
    handles = []
    for key in ("x", "y"):
        with SetEnqueueOptions(queue_partition_key=key):
            handles.append(legacy_partitioned.enqueue(busy, key, 0.3))
    for handle in handles:
        handle.get_result(timeout_seconds=20)
    (_, s1, e1), (_, s2, e2) = RUNNING
    assert min(e1, e2) > max(s1, s2), "concurrency=1 with partition_queue=True is per partition"


def test_rows_enqueued_before_the_queue_was_partitioned_still_run(dbos: type[DBOS]) -> None:
    """A rolling deploy adds partition limits while un-keyed rows wait: they form a partition of their own."""
    queue = DBOS.register_queue("test-becomes-partitioned", concurrency=1)
    GATES["first"] = threading.Event()
    first = queue.enqueue(waits_for, "first")
    wait_for_status(first.workflow_id, "PENDING")
    waiting = queue.enqueue(echo_value, "enqueued without a key")
    DBOS.register_queue("test-becomes-partitioned", concurrency=2, partition_concurrency=1)
    GATES["first"].set()
    with SetEnqueueOptions(queue_partition_key="k"):
        keyed = queue.enqueue(echo_value, "keyed")
    assert keyed.get_result(timeout_seconds=10) == "keyed"
    assert waiting.get_result(timeout_seconds=10) == "enqueued without a key"


def test_a_busy_partition_does_not_starve_the_others(dbos: type[DBOS]) -> None:
    """Partitions served least recently go first: a long backlog in one cannot hold every free slot."""
    queue = DBOS.register_queue("test-fair-partitions", concurrency=1, partition_concurrency=1)
    GATES["blocker"] = threading.Event()
    with SetEnqueueOptions(queue_partition_key="a"):
        blocker = queue.enqueue(waits_for, "blocker")
    wait_for_status(blocker.workflow_id, "PENDING")
    handles = []
    for label in ("a1", "a2", "a3", "b1", "c1"):
        with SetEnqueueOptions(queue_partition_key=label[0]):
            handles.append(queue.enqueue(busy, label, 0.01))
        time.sleep(0.005)  # distinct creation times
    GATES["blocker"].set()
    for handle in handles:
        handle.get_result(timeout_seconds=20)
    assert [label for label, _, _ in RUNNING] == ["b1", "c1", "a1", "a2", "a3"]


def test_partition_keys_are_required_exactly_on_partitioned_queues(dbos: type[DBOS]) -> None:
    with pytest.raises(ValueError, match="without a partition key"):
        partitioned.enqueue(echo_value, "no key")
    with SetEnqueueOptions(queue_partition_key="k"), pytest.raises(ValueError, match="non-partitioned queue"):
        dedup_queue.enqueue(echo_value, "stray key")
    with SetEnqueueOptions(queue_partition_key="k", deduplication_id="d"), pytest.raises(ValueError, match="dedup"):
        partitioned.enqueue(echo_value, "both")


def test_queue_limits_are_checked_when_declared() -> None:
    with pytest.raises(ValueError, match="concurrency must be greater than or equal to worker_concurrency"):
        Queue("bad-1", 2, worker_concurrency=3)
    with pytest.raises(ValueError, match="global_concurrency must be greater than or equal to partition_concurrency"):
        Queue("bad-2", global_concurrency=4, partition_concurrency=5)
    with pytest.raises(ValueError, match="limiter must specify both"):
        Queue("bad-3", limiter={"limit": 2})  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="set only one of them"):
        Queue("bad-4", partition_queue=True, partition_concurrency=1)
    with pytest.raises(ValueError, match="set only one of them"):
        Queue("bad-5", concurrency=1, global_concurrency=1)
    with pytest.raises(ValueError, match="already been declared"):
        Queue("test-dedup")


# -- register_queue and listing --------------------------------------------------------------------


def test_register_queue_stores_the_queue_and_on_conflict_decides_updates(dbos: type[DBOS]) -> None:
    queue = DBOS.register_queue("test-registered", worker_concurrency=1, limiter={"limit": 5, "period": 1})
    assert queue.database_backed_queue and queue.worker_concurrency == 1
    assert queue.limiter == {"limit": 5, "period": 1}
    DBOS.register_queue("test-registered", worker_concurrency=3, on_conflict="never_update")
    assert queue.worker_concurrency == 1, "never_update kept the stored limits"
    DBOS.register_queue("test-registered", worker_concurrency=3)  # this process runs the latest version
    assert queue.worker_concurrency == 3 and queue.limiter is None
    fresh = DBOS.retrieve_queue("test-registered")
    assert fresh is not None and fresh.worker_concurrency == 3
    assert [q.name for q in DBOS.list_queues()] == ["test-registered"]
    assert DBOS.enqueue_workflow("test-registered", echo_value, "registered").get_result(timeout_seconds=10) == "registered"
    with pytest.raises(ValueError, match="on_conflict"):
        DBOS.register_queue("test-registered", on_conflict="sometimes")
    with pytest.raises(ValueError, match="greater than or equal to worker_concurrency"):
        DBOS.register_queue("test-never-declared", concurrency=2, worker_concurrency=5)
    assert DBOS.retrieve_queue("test-never-declared") is None, "a refused registration stored the queue"
    DBOS.delete_queue("test-registered")
    assert DBOS.retrieve_queue("test-registered") is None and DBOS.list_queues() == []


def test_list_queued_workflows_shows_waiting_and_running_ones(dbos: type[DBOS]) -> None:
    GATES["listed"] = threading.Event()
    running = dedup_queue.enqueue(waits_for, "listed")
    wait_for_status(running.workflow_id, "PENDING")
    done = outbox_queue.enqueue(echo_value, "done")
    done.get_result(timeout_seconds=10)
    DBOS.start_workflow(echo_value, "not queued").get_result(timeout_seconds=10)
    queued = DBOS.list_queued_workflows()
    assert [w.workflow_id for w in queued] == [running.workflow_id]
    assert [w.workflow_id for w in DBOS.list_queued_workflows(queue_name="test-outbox")] == []
    finished = DBOS.list_queued_workflows(status="SUCCESS", queue_name="test-outbox")
    assert [w.workflow_id for w in finished] == [done.workflow_id]
    assert [w.workflow_id for w in DBOS.list_workflows(queue_name="test-dedup")] == [running.workflow_id]
    GATES["listed"].set()
    running.get_result(timeout_seconds=10)
    assert DBOS.list_queued_workflows() == []


# -- transactional enqueue -------------------------------------------------------------------------


@DBOS.transaction()
def record_and_enqueue(order: str, fail: bool) -> str:
    DBOS.sql_session.execute(sa.text("INSERT INTO outbox_orders (name) VALUES (:n)"), {"n": order})
    with SetWorkflowID(f"ship-{order}"):
        outbox_queue.enqueue(echo_value, f"shipped {order}")
    if fail:
        raise RuntimeError("payment declined")
    return order


@DBOS.workflow()
def place_order(order: str, fail: bool) -> str:
    return record_and_enqueue(order, fail)


@pytest.fixture
def outbox_table(database_url: str):  # type: ignore[no-untyped-def]
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE outbox_orders (name TEXT PRIMARY KEY)")
    yield engine
    engine.dispose()


def test_a_workflow_enqueued_in_a_transaction_commits_with_it(dbos: type[DBOS], outbox_table: sa.Engine) -> None:
    assert place_order("o1", False) == "o1"
    assert DBOS.retrieve_workflow("ship-o1").get_result(timeout_seconds=10) == "shipped o1"
    with pytest.raises(RuntimeError, match="payment declined"):
        place_order("o2", True)
    assert DBOS.get_workflow_status("ship-o2") is None, "the rolled-back transaction's workflow exists"
    with outbox_table.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT name FROM outbox_orders")] == ["o1"]


def test_enqueue_in_the_applications_own_transaction(dbos: type[DBOS], outbox_table: sa.Engine) -> None:
    with Session(outbox_table) as session:
        session.execute(sa.text("INSERT INTO outbox_orders (name) VALUES ('kept')"))
        with EnqueueInTransaction(session), SetWorkflowID("own-kept"):
            handle = outbox_queue.enqueue(echo_value, "kept")
        assert DBOS.get_workflow_status("own-kept") is None  # not visible before the commit
        session.commit()
    assert handle.get_result(timeout_seconds=10) == "kept"
    with Session(outbox_table) as session:
        with EnqueueInTransaction(session), SetWorkflowID("own-dropped"):
            DBOS.start_workflow(echo_value, "dropped")  # start_workflow joins the transaction too
        session.rollback()
    time.sleep(0.3)
    assert DBOS.get_workflow_status("own-dropped") is None
    with outbox_table.begin() as conn, EnqueueInTransaction(conn), SetWorkflowID("own-started"):
        started = DBOS.start_workflow(echo_value, "started")
    assert started.get_result(timeout_seconds=10) == "started"


def test_a_deduplicated_enqueue_leaves_the_transaction_usable(dbos: type[DBOS], outbox_table: sa.Engine) -> None:
    GATES["tx-dedup"] = threading.Event()
    with SetEnqueueOptions(deduplication_id="tx"):
        held = dedup_queue.enqueue(waits_for, "tx-dedup")
    with Session(outbox_table) as session:
        with EnqueueInTransaction(session), SetEnqueueOptions(deduplication_id="tx"):
            with pytest.raises(DBOSQueueDeduplicatedError):
                dedup_queue.enqueue(echo_value, "refused")
        session.execute(sa.text("INSERT INTO outbox_orders (name) VALUES ('after refusal')"))
        session.commit()
    with outbox_table.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT name FROM outbox_orders")] == ["after refusal"]
    GATES["tx-dedup"].set()
    held.get_result(timeout_seconds=10)


def test_enqueue_in_a_transaction_from_a_workflow_body_is_refused(dbos: type[DBOS], outbox_table: sa.Engine) -> None:
    @DBOS.workflow()
    def body_enqueues() -> None:
        with Session(outbox_table) as session, EnqueueInTransaction(session):
            outbox_queue.enqueue(echo_value, "x")

    with pytest.raises(DBOSException, match="in a @DBOS.transaction"):
        body_enqueues()
