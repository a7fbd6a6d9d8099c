"""A DBOS 2.x program using queues, events, messages and a schedule runs with only its import changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAM = Path(__file__).with_name("dbos_program.py")

# What the same program printed under dbos==2.31.1 itself (its import line set back to `from dbos import`),
# on SQLite and on PostgreSQL.
AS_DBOS_PRINTS = {
    "approval": "approved by ada",
    "children": 5,
    "first_steps": ["square_task", "square_task"],
    "progress": {"done": 5, "total": 30},
    "queue_status": "SUCCESS",
    "replayed": 30,
    "state_before_send": "waiting",
    "ticks": True,
    "total": 30,
}


def test_a_dbos_program_runs_with_only_its_import_changed(database_url: str) -> None:
    imports = [line for line in PROGRAM.read_text().splitlines() if "import" in line and "durable" in line]
    assert len(imports) == 1  # the one line a DBOS user changes
    done = subprocess.run(
        [sys.executable, str(PROGRAM), database_url],
        cwd=PROGRAM.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == AS_DBOS_PRINTS
