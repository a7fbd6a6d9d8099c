"""Worker for the crash tests of test_row_flush (a workflow whose unflushed row is SIGKILLed before its
transaction) and test_row_deferral (SIGKILLed inside the transaction that carries its row).

    python row_flush_worker.py <database_url> start|recover|start-deferred|recover-deferred <workdir>
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from worker_kit import launch_from_argv, print_when_finished

from durable import DBOS, SetWorkflowID
from durable.context import current_context

run: dict[str, Any] = {}


@DBOS.transaction()
def book(label: str) -> None:
    DBOS.sql_session.execute(sa.text("INSERT INTO booked (label) VALUES (:l)"), {"l": label})
    if label == "crashed" and run["scenario"] == "start-deferred":
        (run["workdir"] / "in-transaction").write_text(DBOS.workflow_id or "")
        time.sleep(120)  # killed here: the row waits for this transaction's commit (row_flush.py)


@DBOS.step()
def confirm(label: str) -> str:
    return f"confirmed {label}"


@DBOS.workflow()
def booking(label: str, block: bool) -> str:
    if block and run["scenario"] == "start":
        state = current_context().workflow  # type: ignore[union-attr]
        (run["workdir"] / "row-inserted").write_text(str(state.row_unflushed))  # type: ignore[union-attr]
        time.sleep(120)  # killed here: the row is committed, not flushed, and nothing else ran
    book(label)
    return confirm(label)


def main() -> None:
    scenario = launch_from_argv("row-flush-crash", run)
    if scenario == "start-deferred":
        with sa.create_engine(run["url"]).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE booked (label TEXT NOT NULL)")
        booking("warm-up", False)
        booking("crashed", False)  # a generated ID: its row is left to book's transaction
    elif scenario == "recover-deferred":
        time.sleep(1.0)  # the recovery pass of launch has looked for orphans by now
    elif scenario == "start":
        with sa.create_engine(run["url"]).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE booked (label TEXT NOT NULL)")
        booking("warm-up", False)  # learns that booking begins with a transaction
        with SetWorkflowID("rf-crash"):
            booking("crashed", True)
    else:
        print_when_finished("rf-crash", time.monotonic() + 60, with_result=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
