"""Many threads and several processes on one database never corrupt or duplicate a checkpoint."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from conftest import RUNTIME_PARENT
from durable import DBOS, SetWorkflowID
from parallel import in_processes, in_threads


@DBOS.step()
def double(x: int) -> int:
    return 2 * x


@DBOS.workflow()
def doubles_three_times(x: int) -> int:
    return double(double(double(x)))


def test_many_threads_run_workflows_at_once(dbos: type[DBOS]) -> None:
    def worker(n: int) -> None:
        for i in range(15):
            with SetWorkflowID(f"t{n}-{i}"):
                assert doubles_three_times(i) == 8 * i

    assert in_threads(worker, 8) == []
    done = DBOS.list_workflows(status="SUCCESS")
    assert len(done) == 120
    assert all(len(DBOS.list_workflow_steps(w.workflow_id)) == 3 for w in done[:10])


def test_fan_out_with_start_workflow(dbos: type[DBOS]) -> None:
    handles = [DBOS.start_workflow(doubles_three_times, i) for i in range(200)]
    assert [h.get_result(timeout_seconds=60) for h in handles] == [8 * i for i in range(200)]


PROCESS = f"""
import sys, threading
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig, SetWorkflowID

@DBOS.step()
def record(n):
    import sqlalchemy as sa
    return n

@DBOS.workflow()
def shared(n):
    return record(n) + record(n)

DBOS(config=DBOSConfig(name="multi", application_database_url=sys.argv[1]))
def run(t):
    for i in range(25):
        with SetWorkflowID(f"shared-{{i}}"):   # every process and thread starts the same 25 IDs
            assert shared(i) == 2 * i
threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
DBOS.destroy()
print("ok")
"""


def test_processes_starting_the_same_workflows_record_each_step_once(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "proc.py"
    script.write_text(PROCESS)
    results = in_processes(script, [database_url], count=3)
    assert [p.returncode for p in results] == [0, 0, 0], [p.stderr[-3000:] for p in results]
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            workflows = conn.exec_driver_sql(f"SELECT status, COUNT(*) FROM {prefix}workflow_status GROUP BY status").all()
            steps = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {prefix}operation_outputs").scalar()
    finally:
        engine.dispose()
    assert workflows == [("SUCCESS", 25)]
    assert steps == 50
