"""`flask workflow ...` on this project's app: find a failed workflow, see why, fork it from the failed step."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from {{ cookiecutter.package_name }}.durable import DBOS, SetWorkflowID

FAIL = {"now": True}


@DBOS.step()
def look_up(x: int) -> int:
    return x + 1


@DBOS.step()
def send_invoice(x: int) -> int:
    if FAIL["now"]:
        raise RuntimeError("mail server down")
    return x * 2


@DBOS.workflow()
def bill_customer(x: int) -> int:
    return send_invoice(look_up(x))


def cli(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=[*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_find_see_and_fork_a_failed_workflow(app: Flask) -> None:
    FAIL["now"] = True
    with SetWorkflowID("invoice-1"), pytest.raises(RuntimeError):
        bill_customer(1)
    failed = cli(app, "workflow", "list", "--status", "ERROR")
    assert [w["workflow_id"] for w in failed] == ["invoice-1"]
    steps = cli(app, "workflow", "steps", "invoice-1")
    assert [s["error"] for s in steps] == [None, "RuntimeError: mail server down"]
    FAIL["now"] = False
    forked = cli(app, "workflow", "fork", "invoice-1", "--step", "2", "--wait", "30")
    assert (forked["status"], forked["output"]) == ("SUCCESS", 4)
    missing = app.test_cli_runner().invoke(args=["workflow", "get", "no-such-workflow"])
    assert missing.exit_code == 3
