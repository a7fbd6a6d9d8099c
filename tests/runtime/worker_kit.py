"""What the worker scripts share (the processes crash tests start and SIGKILL): launch from the command
line, and wait out a recovery.

    python <worker>.py <database_url> <scenario> <workdir> [workflow_id]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"))

from durable import DBOS, DBOSConfig  # noqa: E402


def launch_from_argv(app_name: str, run: dict[str, Any]) -> str:
    """Put the URL, scenario and workdir in ``run`` first (the recovery launch starts may run workflows
    that read it), launch with a short heartbeat so orphans are seen soon; return the scenario."""
    url, scenario, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    run.update(url=url, scenario=scenario, workdir=workdir)
    DBOS(config=DBOSConfig(name=app_name, application_database_url=url, executor_heartbeat_sec=0.2,
                           executor_timeout_sec=5))
    DBOS.launch()
    return scenario


def status_of(workflow_id: str) -> str | None:
    status = DBOS.get_workflow_status(workflow_id)
    return status.status if status else None


def print_when_finished(workflow_id: str, deadline: float, *, with_result: bool = False) -> None:
    """Wait until the workflow leaves PENDING (recovered here or elsewhere); print its status, and its result."""
    while status_of(workflow_id) in (None, "PENDING") and time.monotonic() < deadline:
        time.sleep(0.05)
    print(status_of(workflow_id), flush=True)
    if with_result:
        print(repr(DBOS.retrieve_workflow(workflow_id).get_result()), flush=True)
