"""Streams (DBOS.write_stream / close_stream / read_stream) on real SQLite files and PostgreSQL."""

from __future__ import annotations

import contextvars
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from durable import DBOS, SetWorkflowID, error
from helpers import wait_until

WORKER = Path(__file__).with_name("stream_worker.py")


def start(database_url: str, scenario: str, workdir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), database_url, scenario, str(workdir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stream_rows(database_url: str, workflow_id: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                f"SELECT key, stream_offset, value FROM {prefix}streams WHERE workflow_uuid = :id "
                "ORDER BY key, stream_offset"), {"id": workflow_id})]
    finally:
        engine.dispose()


@DBOS.workflow()
def writes(values: list[Any], close: bool) -> None:
    for value in values:
        DBOS.write_stream("s", value)
    if close:
        DBOS.close_stream("s")


@DBOS.workflow()
def reads(workflow_id: str) -> list[Any]:
    return list(DBOS.read_stream(workflow_id, "s"))


def test_values_come_back_in_order_with_their_types(dbos: type[DBOS]) -> None:
    values = ["a", 1, 2.5, None, (1, 2), {"k": {3}}, "__DBOS_STREAM_CLOSED__"]
    with SetWorkflowID("typed"):
        writes(values, True)
    assert list(DBOS.read_stream("typed", "s")) == values
    assert list(DBOS.read_stream("typed", "s", offset=4)) == values[4:]
    steps = [s["function_name"] for s in DBOS.list_workflow_steps("typed")]
    assert steps == ["DBOS.writeStream"] * len(values) + ["DBOS.closeStream"]


def test_overlapping_reads_in_one_workflow_are_refused(dbos: type[DBOS]) -> None:
    release = threading.Event()

    @DBOS.workflow()
    def holds_open() -> None:
        DBOS.write_stream("s", "v0")
        release.wait(30)

    @DBOS.workflow()
    def overlapping() -> str:
        def background_read() -> None:
            try:
                list(DBOS.read_stream("held", "s", timeout_seconds=2))
            except Exception:
                pass

        reader = threading.Thread(target=contextvars.copy_context().run, args=(background_read,))
        reader.start()
        time.sleep(0.5)  # the background read now waits for the second value
        try:
            DBOS.read_stream_offset("held", "s", 0)
            return "allowed"
        except error.DBOSStreamNondeterminismError:
            return "refused"
        finally:
            reader.join()

    with SetWorkflowID("held"):
        handle = DBOS.start_workflow(holds_open)
    try:
        assert overlapping() == "refused"
    finally:
        release.set()
        handle.get_result()


def test_an_unclosed_stream_ends_with_its_workflow(dbos: type[DBOS]) -> None:
    with SetWorkflowID("unclosed"):
        writes([1, 2], False)
    assert list(DBOS.read_stream("unclosed", "s")) == [1, 2]


def test_writing_outside_a_workflow_is_refused(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSException, match="must be called from within a workflow"):
        DBOS.write_stream("s", 1)
    with pytest.raises(error.DBOSNonExistentWorkflowError):
        list(DBOS.read_stream("no-such-workflow", "s"))


def test_a_replayed_writer_appends_nothing_twice(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("replayed"):
        writes([1, 2, 3], True)
    with SetWorkflowID("replayed"):
        writes([1, 2, 3], True)  # same ID: the finished workflow's result, no run
    from conftest import reopen_as_orphan

    reopen_as_orphan(database_url, "replayed")  # as if its process died just before it finished
    DBOS.recover_pending_workflows()
    DBOS.retrieve_workflow("replayed").get_result()
    assert [r[1] for r in stream_rows(database_url, "replayed")] == [0, 1, 2, 3]
    assert list(DBOS.read_stream("replayed", "s")) == [1, 2, 3]


def test_a_reading_workflow_replays_what_it_read(dbos: type[DBOS]) -> None:
    with SetWorkflowID("source"):
        writes([1, 2], True)
    with SetWorkflowID("reader"):
        assert reads("source") == [1, 2]
    assert [s["function_name"] for s in DBOS.list_workflow_steps("reader")] == ["DBOS.readStream"] * 3


def test_a_timeout_raises_and_a_closed_stream_gives_up_at_once(dbos: type[DBOS]) -> None:
    release = threading.Event()

    @DBOS.workflow()
    def holds_open() -> None:
        DBOS.write_stream("s", "v0")
        release.wait(30)
        DBOS.close_stream("s")

    with SetWorkflowID("open"):
        handle = DBOS.start_workflow(holds_open)
    try:
        assert DBOS.read_stream_offset("open", "s", 0) == "v0"
        with pytest.raises(error.DBOSStreamTimeoutError):
            DBOS.read_stream_offset("open", "s", 1, timeout_seconds=0.3)
    finally:
        release.set()
        handle.get_result()
    started = time.monotonic()
    with pytest.raises(error.DBOSStreamTimeoutError):
        DBOS.read_stream_offset("open", "s", 5, timeout_seconds=30)
    assert time.monotonic() - started < 2


def test_another_process_reads_a_stream_while_it_is_written(dbos: type[DBOS], tmp_path: Path) -> None:
    database_url = str(DBOS.config.app_db_url)
    writer = start(database_url, "write-slow", tmp_path)
    try:
        wait_until(lambda: DBOS.get_workflow_status("slow-writer") is not None, timeout=30, what="the writer")
        seen: list[tuple[int, str]] = []
        for value in DBOS.read_stream("slow-writer", "numbers", polling_interval_sec=5.0):
            status = DBOS.get_workflow_status("slow-writer")
            seen.append((value, status.status if status else ""))
        assert [v for v, _ in seen] == [0, 1, 2, 3, 4]
        assert seen[0][1] == "PENDING"  # the first value arrived while the writer was still running
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    finally:
        writer.kill()


def test_a_crashed_writer_resumes_without_duplicates(dbos: type[DBOS], tmp_path: Path) -> None:
    database_url = str(DBOS.config.app_db_url)
    worker = start(database_url, "write-start", tmp_path)
    try:
        wait_until(lambda: (tmp_path / "written").exists(), timeout=30, what="the first writes")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    reader = iter(DBOS.read_stream("crash-writer", "numbers"))
    assert [next(reader), next(reader)] == [0, 1]  # readable while the writer is dead

    recovering = start(database_url, "recover", tmp_path, "crash-writer")
    try:
        out, err = recovering.communicate(timeout=60)
    finally:
        recovering.kill()
    assert recovering.returncode == 0, err
    assert out.splitlines()[:1] == ["SUCCESS"]
    assert list(reader) == [2]
    assert [(r[1], r[2] is None) for r in stream_rows(database_url, "crash-writer")] == [
        (0, False), (1, False), (2, False), (3, True)]
