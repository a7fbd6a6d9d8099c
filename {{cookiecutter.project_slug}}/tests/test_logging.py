"""Logs: every line written inside a workflow or a request names them; LOG_FORMAT=json writes JSON lines.

The service runs in a child process, as in production: there, no test runner has installed handlers of
its own, so what is checked is the handler ``configure_logging`` installs, with its context filter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from gunicorn_server import call, running_gunicorn

from {{ cookiecutter.package_name }}.settings import Settings, SettingsError

SERVICE = textwrap.dedent(
    """
    import logging, sys
    from {{ cookiecutter.package_name }} import create_app
    from {{ cookiecutter.package_name }}.durable import DBOS, SetWorkflowID

    log = logging.getLogger("{{ cookiecutter.package_name }}.billing")

    @DBOS.step()
    def charge(amount: int) -> int:
        log.info("charging %d", amount)
        return amount

    @DBOS.workflow()
    def logged_checkout(amount: int) -> int:
        log.info("checkout starts")
        charged = charge(amount)
        log.warning("checkout done: %d", charged)
        return charged

    app = create_app()

    @app.get("/work")
    def work() -> str:
        log.info("in the request")
        return "ok"

    DBOS.launch()
    with SetWorkflowID("wf-logged"):
        assert logged_checkout(5) == 5
    app.test_client().get("/work", headers={"dbos-request-id": "req-42"})
    log.info("outside everything")
    DBOS.destroy()
    """
)


def run_service(tmp_path: Path, log_format: str) -> list[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'logs.db'}",
        "LOG_FORMAT": log_format,
        "LOG_LEVEL": "INFO",
    }
    done = subprocess.run(
        [sys.executable, "-c", SERVICE], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr.splitlines()


def test_json_logs_carry_the_workflow_on_every_line_inside_it(tmp_path: Path) -> None:
    lines = run_service(tmp_path, "json")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    by_message = {r["message"]: r for r in records}
    for message in ("checkout starts", "charging 5", "checkout done: 5"):
        assert by_message[message]["workflow_id"] == "wf-logged", by_message[message]
    assert by_message["charging 5"]["step_id"] == 1
    assert by_message["checkout starts"]["step_id"] is None
    assert by_message["in the request"]["request_id"] == "req-42"
    outside = by_message["outside everything"]
    assert outside["workflow_id"] is None and outside["request_id"] is None
    assert {"timestamp", "level", "logger"} <= outside.keys()
    assert by_message["checkout done: 5"]["level"] == "WARNING"
    # The runtime's own lines, logged on child loggers of durable, carry the fields too.
    runtime_logger = "{{ cookiecutter.package_name }}.durable"
    runtime_lines = [r for r in records if r["logger"].startswith(runtime_logger)]
    assert runtime_lines, records


def test_text_logs_show_the_context_at_the_end_of_the_line(tmp_path: Path) -> None:
    lines = run_service(tmp_path, "text")
    [charging] = [line for line in lines if "charging 5" in line]
    assert charging.endswith("charging 5 [workflow_id=wf-logged step_id=1]")
    [request] = [line for line in lines if "in the request" in line]
    assert request.endswith("[request_id=req-42]")
    [outside] = [line for line in lines if "outside everything" in line]
    assert outside.endswith("outside everything")


def test_an_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="LOG_FORMAT='xml' is not one of text, json"):
        Settings.from_env({"LOG_FORMAT": "xml"})


def test_under_gunicorn_every_line_is_json(tmp_path: Path, alembic_config: Config, database_url: str) -> None:
    """gunicorn's own lines too (gunicorn.conf.py's JsonLogger), not only the app's."""
    command.upgrade(alembic_config, "head")
    log = tmp_path / "gunicorn.log"
    with running_gunicorn(
        database_url, log, "--pythonpath", "tests", "metrics_app:app", LOG_FORMAT="json", LOG_LEVEL="INFO"
    ) as (base, _master):
        status, _body = call("POST", f"{base}/work/5", headers={"dbos-request-id": "req-gunicorn-json"})
        assert status == 200
    records = [json.loads(line) for line in log.read_text().splitlines()]
    [metering] = [r for r in records if r["message"] == "metering 5"]
    assert metering["request_id"] == "req-gunicorn-json" and metering["workflow_id"]
    assert any(r["logger"] == "gunicorn.error" for r in records)  # "Booting worker", "Shutting down"
