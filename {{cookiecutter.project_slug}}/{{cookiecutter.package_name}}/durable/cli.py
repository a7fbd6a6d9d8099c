"""``flask workflow ...`` and ``flask queue ...``: operate the service's workflows from a terminal.

DBOS's CLI verbs (``list``, ``get``, ``steps``, ``cancel``, ``resume``, ``fork``, ``queue list``), and
``delete``, ``recover``, ``gc`` and ``timeout`` for the admin API's jobs, on
Flask's CLI, so the command reads the app's own settings (``flask --app <package> workflow list``) and
works while the web service is down. It opens the runtime for an operator
(``lifecycle.open_for_operator``): no heartbeat, no recovery, no dequeuing, so an operator's shell
never adopts work; what it resumes, forks or recovers is handed to the service's queues and runs
there. Every command calls the module that implements its job for ``DBOS`` too. Output is a table,
or JSON with ``--json``; exit codes are listed in ``cli_output.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup

from . import lifecycle, listing, management, operations
from .cli_output import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_WAIT_TIMEOUT,
    EXIT_WORKFLOW_FAILED,
    CommandError,
    echo_json,
    echo_steps,
    echo_workflow,
    echo_workflows,
)
from .context import SetWorkflowID
from .error import (
    DBOSConflictingWorkflowError,
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
    DBOSNotLaunchedError,
)
from .runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

STATUSES = ("PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
FINISHED_BADLY = ("ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
IN_FLIGHT = ("PENDING", "ENQUEUED", "DELAYED")
EXIT_CODES = """Exit codes: 0 done, 1 unexpected error, 2 bad usage or filter, 3 no such workflow,
4 conflict (live executor without --force, fork ID taken), 5 database unreachable, 6 --wait timed out,
7 --wait saw the workflow fail."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SEC = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

workflow_group = AppGroup("workflow", help=f"Operate the service's durable workflows.\n\n{EXIT_CODES}")
queue_group = AppGroup("queue", help=f"The service's queued workflows.\n\n{EXIT_CODES}")


def install_commands(app: Flask) -> None:
    """Add ``flask workflow`` and ``flask queue`` (also as ``flask workflow queue``, DBOS's spelling)."""
    for group in (workflow_group, queue_group):
        if group.name not in app.cli.commands:
            app.cli.add_command(group)


def iso_time(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check an ISO-8601 time option (a callback, not a ParamType: those are generic only in newer click)."""
    if value is not None:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an ISO-8601 time, e.g. 2026-01-31T12:00:00Z",
                                     param=param) from None
    return value


def cutoff_ms(_ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``30d``, ``12h``, ``90m``, ``1w 2d`` (ago), or an ISO-8601 time, as epoch milliseconds."""
    if value is None:
        return None
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if parts and _DURATION.sub("", text).strip() == "":
        seconds = sum(float(n) * _UNIT_SEC[unit] for n, unit in parts)
        return int((datetime.now().astimezone() - timedelta(seconds=seconds)).timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an age (30d, 12h, 90m, 45s, 1w) nor an ISO-8601 time",
                                 param=param) from None
    return int(moment.timestamp() * 1000)


@contextmanager
def operator_runtime() -> Iterator[Runtime]:
    """The app's runtime, opened without background threads; closed after the command if opened here.

    DBOS's errors become exit codes: unknown workflow 3, conflict 4, database unreachable 5.
    """
    configured = lifecycle.configured()
    opened_here = configured is not None and configured.runtime is None
    try:
        try:
            yield lifecycle.open_for_operator()
        except DBOSNonExistentWorkflowError as exc:
            raise CommandError(str(exc), EXIT_NOT_FOUND) from None
        except (DBOSConflictingWorkflowError, operations.ExecutorsAliveError) as exc:
            raise CommandError(str(exc), EXIT_CONFLICT) from None
        except (DBOSInitializationError, DBOSDatabaseUnavailableError, DBOSNotLaunchedError) as exc:
            raise CommandError(str(exc), EXIT_UNAVAILABLE) from None
        except DBOSException as exc:
            raise CommandError(str(exc), EXIT_ERROR) from None
    finally:
        if opened_here:
            lifecycle.destroy()


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)


def filter_options(func: F) -> F:
    """DBOS CLI's list filters (same short flags), plus a few of the Python API's."""
    options = [
        click.option("--limit", "-l", type=click.IntRange(0), default=10, show_default=True,
                     help="At most this many."),
        click.option("--offset", "-o", type=click.IntRange(0), help="Skip this many first."),
        click.option("--status", "-S", "statuses", multiple=True, type=click.Choice(STATUSES, case_sensitive=False),
                     help="Only these statuses (repeat for several)."),
        click.option("--name", "-n", "names", multiple=True, help="Only workflows of this function name."),
        click.option("--queue-name", "-q", "queues", multiple=True, help="Only workflows of this queue."),
        click.option("--start-time", "-t", callback=iso_time, help="Created at or after this time."),
        click.option("--end-time", "-e", callback=iso_time, help="Created at or before this time."),
        click.option("--application-version", "-v", "versions", multiple=True,
                     help="Only this application version."),
        click.option("--executor-id", "executors", multiple=True, help="Only workflows owned by this executor."),
        click.option("--user", "-u", "users", multiple=True, help="Only workflows started by this user."),
        click.option("--prefix", "workflow_id_prefix", help="Only IDs starting with this."),
        click.option("--sort-desc", "-d", is_flag=True, help="Newest first."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _filters(limit: int, offset: int | None, statuses: tuple[str, ...], names: tuple[str, ...],
             queues: tuple[str, ...], start_time: str | None, end_time: str | None, versions: tuple[str, ...],
             executors: tuple[str, ...], users: tuple[str, ...], workflow_id_prefix: str | None,
             sort_desc: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "limit": limit, "offset": offset, "status": [s.upper() for s in statuses] or None,
        "name": list(names) or None, "queue_name": list(queues) or None, "start_time": start_time,
        "end_time": end_time, "app_version": list(versions) or None, "executor_id": list(executors) or None,
        "user": list(users) or None,
        "workflow_id_prefix": workflow_id_prefix, "sort_desc": sort_desc,
    }
    return {key: value for key, value in found.items() if value is not None}


def _existing(rt: Runtime, workflow_id: str) -> Any:
    found = listing.workflow_status(rt, workflow_id)
    if found is None:
        raise DBOSNonExistentWorkflowError("workflow", workflow_id)
    return found


def _wait(rt: Runtime, workflow_id: str, seconds: float, as_json: bool) -> None:
    """Poll until the workflow finishes or ``seconds`` pass; print its status; exit 0, 6 or 7."""
    deadline = time.monotonic() + seconds
    while True:
        found = _existing(rt, workflow_id)
        if found.status in ("SUCCESS", *FINISHED_BADLY) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    echo_workflow(found, as_json)
    if found.status == "SUCCESS":
        return
    if found.status in FINISHED_BADLY:
        raise CommandError(f"workflow {workflow_id} ended {found.status}", EXIT_WORKFLOW_FAILED)
    raise CommandError(f"workflow {workflow_id} is still {found.status} after {seconds:g}s", EXIT_WAIT_TIMEOUT)


def _started(rt: Runtime, workflow_id: str, wait: float | None, as_json: bool, what: str) -> None:
    if wait is not None:
        _wait(rt, workflow_id, wait, as_json)
    elif as_json:
        echo_json({"workflow_id": workflow_id})
    else:
        click.echo(f"{what} {workflow_id}")


_WAIT = click.option("--wait", type=click.FloatRange(0), metavar="SECONDS",
                     help="Wait up to SECONDS for the workflow to finish and print its status.")


@workflow_group.command("list")
@filter_options
@json_option
def list_command(as_json: bool, **filters: Any) -> None:
    """List workflows, oldest first (--sort-desc: newest first)."""
    with operator_runtime() as rt:
        echo_workflows(listing.list_workflows(rt, **_filters(**filters), load_input=False), as_json)


@workflow_group.command("get")
@click.argument("workflow_id")
@json_option
def get_command(workflow_id: str, as_json: bool) -> None:
    """Show one workflow: status, inputs, output or error."""
    with operator_runtime() as rt:
        echo_workflow(_existing(rt, workflow_id), as_json)


@workflow_group.command("steps")
@click.argument("workflow_id")
@json_option
def steps_command(workflow_id: str, as_json: bool) -> None:
    """List a workflow's checkpointed steps, with each output or error."""
    with operator_runtime() as rt:
        _existing(rt, workflow_id)
        echo_steps(listing.list_steps(rt, workflow_id), as_json)


@workflow_group.command("cancel")
@click.argument("workflow_id")
@click.option("--children", is_flag=True, help="Cancel its child workflows too.")
@json_option
def cancel_command(workflow_id: str, children: bool, as_json: bool) -> None:
    """Cancel a workflow that has not finished: it stops at its next step and is not recovered."""
    with operator_runtime() as rt:
        _existing(rt, workflow_id)
        management.cancel_workflows(rt, [workflow_id], cancel_children=children)
        echo_workflow(_existing(rt, workflow_id), as_json) if as_json else click.echo(f"cancelled {workflow_id}")


@workflow_group.command("resume")
@click.argument("workflow_id")
@_WAIT
@json_option
def resume_command(workflow_id: str, wait: float | None, as_json: bool) -> None:
    """Run a cancelled or failed workflow again from its checkpoints (the service runs it)."""
    with operator_runtime() as rt:
        handle = management.resume_workflow(rt, workflow_id)
        _started(rt, handle.workflow_id, wait, as_json, "resumed")


@workflow_group.command("fork")
@click.argument("workflow_id")
@click.option("--step", "-S", type=click.IntRange(1), default=1, show_default=True,
              help="Run again from this step; the checkpoints of the steps before it are kept.")
@click.option("--forked-workflow-id", "-f", help="The new workflow's ID (default: a new UUID).")
@click.option("--application-version", "-v", help="Run the fork on the executors of this version.")
@_WAIT
@json_option
def fork_command(workflow_id: str, step: int, forked_workflow_id: str | None, application_version: str | None,
                 wait: float | None, as_json: bool) -> None:
    """Start a copy of a workflow under a new ID from one of its steps (the service runs it)."""
    with operator_runtime() as rt:
        if forked_workflow_id is None:
            handle = management.fork_workflow(rt, workflow_id, step, application_version=application_version)
        else:
            with SetWorkflowID(forked_workflow_id):
                handle = management.fork_workflow(rt, workflow_id, step, application_version=application_version)
        _started(rt, handle.workflow_id, wait, as_json, "forked as")


@workflow_group.command("recover")
@click.argument("executor_ids", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also executors whose heartbeat is fresh (known to be gone).")
@json_option
def recover_command(executor_ids: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Hand the PENDING workflows of dead executors to the service now, instead of at its next sweep."""
    with operator_runtime() as rt:
        adopted = operations.recover(rt, list(executor_ids), force=force)
        echo_json(adopted) if as_json else click.echo(f"recovered {len(adopted)} workflow(s)")


@workflow_group.command("delete")
@click.argument("workflow_ids", nargs=-1, required=True)
@click.option("--children", is_flag=True, help="Delete its child workflows too.")
@click.option("--force", is_flag=True, help="Also a workflow that has not finished (PENDING, ENQUEUED).")
@json_option
def delete_command(workflow_ids: tuple[str, ...], children: bool, force: bool, as_json: bool) -> None:
    """Delete workflows and everything recorded for them (steps, messages, events)."""
    with operator_runtime() as rt:
        found = [_existing(rt, w) for w in workflow_ids]
        running = [w.workflow_id for w in found if w.status in IN_FLIGHT]
        if running and not force:
            raise CommandError(f"{', '.join(running)} has not finished; cancel it first, or pass --force",
                               EXIT_CONFLICT)
        management.delete_workflows(rt, list(workflow_ids), delete_children=children)
        echo_json(list(workflow_ids)) if as_json else click.echo(f"deleted {len(workflow_ids)} workflow(s)")


@workflow_group.command("gc")
@click.option("--older-than", "cutoff", callback=cutoff_ms,
              help="Delete finished workflows created before this (30d, 12h, or an ISO-8601 time).")
@click.option("--keep", type=click.IntRange(1), help="Keep at least the newest N workflows.")
@click.option("--batch-size", type=click.IntRange(1), default=operations.GC_BATCH, show_default=True,
              help="Rows deleted per transaction.")
@json_option
def gc_command(cutoff: int | None, keep: int | None, batch_size: int, as_json: bool) -> None:
    """Prune finished workflows in bounded batches; PENDING, ENQUEUED and DELAYED ones are kept."""
    if cutoff is None and keep is None:
        raise click.UsageError("give --older-than, --keep, or both")
    with operator_runtime() as rt:
        deleted = operations.garbage_collect(rt, cutoff_epoch_ms=cutoff, rows_threshold=keep, batch_size=batch_size)
        echo_json({"deleted": deleted}) if as_json else click.echo(f"deleted {deleted} workflow(s)")


@workflow_group.command("timeout")
@click.option("--older-than", "cutoff", callback=cutoff_ms, required=True,
              help="Cancel unfinished workflows created before this (30d, 12h, 90m, or an ISO-8601 time).")
@json_option
def timeout_command(cutoff: int, as_json: bool) -> None:
    """Cancel every unfinished workflow created before a cutoff (DBOS's global timeout)."""
    with operator_runtime() as rt:
        cancelled = operations.global_timeout(rt, cutoff)
        echo_json(cancelled) if as_json else click.echo(f"cancelled {len(cancelled)} workflow(s)")


@queue_group.command("list")
@filter_options
@json_option
def queue_list_command(as_json: bool, **filters: Any) -> None:
    """List queued workflows: ENQUEUED or PENDING unless --status says otherwise."""
    with operator_runtime() as rt:
        echo_workflows(listing.list_workflows(rt, **_filters(**filters), load_input=False, queues_only=True),
                       as_json)


workflow_group.add_command(queue_group)  # `flask workflow queue list`, as `dbos workflow queue list`

__all__ = ["EXIT_OK", "install_commands", "queue_group", "workflow_group"]
