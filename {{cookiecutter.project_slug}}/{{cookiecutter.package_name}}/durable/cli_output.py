"""How ``flask workflow ...`` answers: exit codes a script can rely on, readable tables, or ``--json``.

Exit codes (``cli.py`` documents them in ``--help`` too):

    0  done
    1  unexpected error (the message says what)
    2  bad usage: an unknown option, a bad filter value (click's own code for usage errors)
    3  no such workflow
    4  conflict: a live executor without --force, a fork ID already taken
    5  the database cannot be reached, or the app does not configure DBOS
    6  --wait ran out before the workflow finished
    7  --wait saw the workflow end in ERROR, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from .json_view import as_dict, plain

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_WAIT_TIMEOUT = 6
EXIT_WORKFLOW_FAILED = 7

MAX_CELL = 60  # a table cell longer than this is cut (``--json`` has everything)


class CommandError(click.ClickException):
    """An error with its exit code; click prints ``Error: <message>`` to stderr and exits with it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance too






def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, default=plain, indent=2))


def when(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    shown = plain(value) if isinstance(value, BaseException) else value if isinstance(value, str) else \
        json.dumps(value, default=plain)
    shown = " ".join(str(shown).split())  # one line per row
    return shown if len(shown) <= MAX_CELL else shown[: MAX_CELL - 3] + "..."


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns as wide as their widest cell; an empty result says so."""
    if not rows:
        click.echo("(none)")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        click.echo("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def echo_workflows(workflows: list[Any], as_json: bool) -> None:
    if as_json:
        echo_json([as_dict(w) for w in workflows])
        return
    echo_table(["WORKFLOW ID", "STATUS", "NAME", "QUEUE", "CREATED (UTC)", "ERROR"],
               [[w.workflow_id, w.status, w.name, cell(w.queue_name), when(w.created_at), cell(w.error)]
                for w in workflows])


def echo_workflow(workflow: Any, as_json: bool) -> None:
    if as_json:
        echo_json(as_dict(workflow))
        return
    shown = as_dict(workflow)
    for key in ("created_at", "updated_at", "completed_at", "workflow_deadline_epoch_ms"):
        if shown.get(key) is not None:
            shown[key] = f"{when(shown[key])} UTC ({shown[key]})"
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        if value is None or value == "" or key == "request":
            continue
        text = value if isinstance(value, str) else plain(value) if isinstance(value, BaseException) else \
            json.dumps(value, default=plain)
        click.echo(f"{key.ljust(width)}  {text}")


def echo_steps(steps: list[Any], as_json: bool) -> None:
    if as_json:
        echo_json([as_dict(s) for s in steps])
        return
    echo_table(["STEP", "NAME", "OUTCOME", "OUTPUT OR ERROR", "CHILD WORKFLOW"],
               [[str(s["function_id"]), s["function_name"], "error" if s["error"] is not None else "ok",
                 cell(s["error"] if s["error"] is not None else s["output"]), cell(s["child_workflow_id"])]
                for s in steps])
