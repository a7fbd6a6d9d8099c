"""Durable sleep, messages (send/recv) and events (set_event/get_event), each a step of its workflow.

- ``sleep`` records its wake-up time (now + seconds) as a step, so after a crash the workflow wakes
  at the original time, not a full duration later.
- ``send`` inside a workflow commits the message with its step's checkpoint: replay never sends
  again. Outside a workflow, ``idempotency_key`` makes a retried send store one message.
- ``recv`` takes the oldest message of its topic and checkpoints it in one transaction, so a message
  is consumed exactly once and replay returns the same one. Its timeout is a durable sleep of its
  own (the next step ID), so a recovered recv does not restart the clock; on timeout it records None.
- ``set_event`` stores the latest value of a key (and its history, for ``fork_workflow``);
  ``get_event`` waits for it and, inside a workflow, records what it saw.

Waiting is done by ``wakeups.py``: local signals, ``LISTEN/NOTIFY`` on PostgreSQL, a short poll on
SQLite. A waiting workflow also wakes when it is cancelled or its process stops.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .context import WorkflowState, current_context, workflow_body
from .current import current_runtime
from .error import (
    DBOSException,
    DBOSFencedError,
    DBOSNonExistentWorkflowError,
    DBOSShutdownError,
    DBOSWorkflowCancelledError,
)
from .ids import time_ordered_uuid
from .recorded_calls import as_step
from .runtime import Runtime
from .steps import decode_step, replay_step
from .store.base import StepCheckpoint, WorkflowStatusString, now_ms
from .store.messaging_store import NULL_TOPIC, OutgoingMessage, StoredStatus
from .timeouts import expire_if_past_deadline
from .wakeups import event_key, message_key, status_key

logger = logging.getLogger(__name__)

# The step names DBOS records for these operations.
SLEEP = "DBOS.sleep"
SEND = "DBOS.send"
SEND_BULK = "DBOS.send_bulk"
RECV = "DBOS.recv"
SET_EVENT = "DBOS.setEvent"
GET_EVENT = "DBOS.getEvent"
GET_EVENTS = "DBOS.get_events"

PENDING = WorkflowStatusString.PENDING.value
CANCELLED = WorkflowStatusString.CANCELLED.value


def _check_still_ours(rt: Runtime, state: WorkflowState, stored: StoredStatus | None) -> None:
    """Raise when a waiting workflow must stop: stopping process, new owner, cancelled, or timed out."""
    if rt.stopping.is_set():
        raise DBOSShutdownError(state.workflow_id)
    if stored is None or stored.owner_generation != state.generation:
        raise DBOSFencedError(state.workflow_id)
    if stored.status == CANCELLED:
        raise DBOSWorkflowCancelledError(f"Workflow {state.workflow_id} was cancelled")
    if stored.status != PENDING:
        raise DBOSFencedError(state.workflow_id)  # finished by another execution
    if stored.deadline_epoch_ms is not None and expire_if_past_deadline(rt, state.workflow_id, stored.deadline_epoch_ms):
        raise DBOSWorkflowCancelledError(f"Workflow {state.workflow_id} was cancelled: its timeout passed")


def _until_deadline(state: WorkflowState | None) -> float:
    """Seconds until the workflow's timeout, so a wait wakes in time to cancel it (inf without one)."""
    if state is None or state.deadline_epoch_ms is None:
        return float("inf")
    return max(0.0, state.deadline_epoch_ms / 1000 - time.time())


def _wake_time(rt: Runtime, state: WorkflowState, step_id: int, seconds: float, *, projected: bool = False) -> float:
    """The recorded wake-up time (epoch seconds) of a durable sleep; the first execution records it.

    ``projected``: the step's completion time is the wake-up time (``DBOS.sleep``, as DBOS shows it);
    else it is now (the timeout that ``recv``/``get_event`` register, which a delivery may cut short).
    """
    found, value = replay_step(rt, state, step_id, SLEEP)
    if found:
        return float(value)
    now = time.time()
    wake_at = now + seconds
    started_ms = int(now * 1000)
    winner = rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, SLEEP,
                                             rt.codec.encode(wake_at, what="sleep wake-up time"), None, started_ms,
                                             completed_ms=started_ms + math.ceil(seconds * 1000) if projected else None)
    return float(decode_step(rt, winner)) if winner is not None else wake_at


# -- sleep -----------------------------------------------------------------------------------------


def sleep(seconds: float) -> None:
    """``DBOS.sleep``: durable in a workflow body, a plain ``time.sleep`` anywhere else."""
    state = workflow_body(current_context())
    if state is None:
        time.sleep(max(0.0, seconds))
        return
    rt = current_runtime()  # launched: a workflow runs
    if seconds <= 0:
        return  # no step, as in DBOS
    wake_at = _wake_time(rt, state, state.allocate_step_id(), seconds, projected=True)
    if wake_at <= time.time():
        return  # a replayed sleep that is already over costs no read
    with rt.wakeups.watching(status_key(state.workflow_id)) as waiter:
        while True:
            waiter.clear()
            remaining = wake_at - time.time()
            if remaining <= 0:
                return
            waiter.wait(min(remaining, rt.wakeups.status_poll_sec, _until_deadline(state)))
            if wake_at > time.time():  # still asleep: cancelled, fenced, late or stopping?
                _check_still_ours(rt, state, rt.messaging_store.workflow_state(state.workflow_id))


# -- messages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendMessage:
    """One message of ``DBOS.send_bulk``: where it goes, what it says, on which topic, and its idempotency key."""

    destination_id: str
    message: Any
    topic: str | None = None
    idempotency_key: str | None = None


def send(rt: Runtime, destination_id: str, message: Any, topic: str | None, idempotency_key: str | None) -> None:
    """``DBOS.send``: deliver ``message`` to a workflow's ``topic`` exactly once."""
    send_bulk(rt, [SendMessage(destination_id, message, topic, idempotency_key)], SEND)


def send_bulk(rt: Runtime, messages: list[SendMessage], step_name: str = SEND_BULK, *,
              send_to_forks: bool = False) -> None:
    """``DBOS.send_bulk``: deliver every message, all or none, in one transaction (one step in a workflow).

    An idempotency key is scoped to its destination, as in DBOS; a key given twice in one call is refused.
    """
    if send_to_forks:
        raise DBOSException("send_to_forks=True is not supported yet: send to each fork's workflow ID")
    keys = [m.idempotency_key for m in messages if m.idempotency_key]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise DBOSException(f"send_bulk received duplicate idempotency keys: {', '.join(duplicates)}")
    state = workflow_body(current_context())
    step: StepCheckpoint | None = None
    step_id = 0
    if state is not None:
        step_id = state.allocate_step_id()
        found, _ = replay_step(rt, state, step_id, step_name)
        if found:
            return  # sent by an earlier execution
        step = StepCheckpoint(state.workflow_id, state.generation, step_id, step_name, None, None, now_ms())
    outgoing: list[OutgoingMessage] = []
    for index, m in enumerate(messages):
        topic_name = m.topic if m.topic is not None else NULL_TOPIC
        if m.idempotency_key:
            message_uuid = f"{m.idempotency_key}::{m.destination_id}"
        elif state is not None:  # replay of a step that lost its checkpoint must not send twice
            message_uuid = f"{state.workflow_id}::{step_id}" + (f"::{index}" if index else "")
        else:
            message_uuid = time_ordered_uuid()
        text = rt.codec.encode(m.message, what=f"message to workflow {m.destination_id!r}")
        outgoing.append(OutgoingMessage(message_uuid, m.destination_id, topic_name, text,
                                        message_key(m.destination_id, topic_name)))
    if not outgoing and step is None:
        return
    outcome, woken = rt.messaging_store.send_many(outgoing, step)
    if outcome == "no-destination":
        raise DBOSNonExistentWorkflowError("`send` destination", ", ".join(sorted({m.destination_id for m in messages})))
    if outcome == "refused" and state is not None:
        rt.checkpoint_store.step_conflict(state.workflow_id, state.generation, step_id)  # raises, or it was recorded
        return
    for wake in woken:
        rt.wakeups.wake(wake)


def send_through(rt: Runtime, connection: sa.Connection, destination_id: str, message: Any, topic: str | None,
                 idempotency_key: str | None) -> None:
    """``send`` from outside a workflow, through the caller's open transaction (``DBOSClient.send_in_transaction``)."""
    topic_name = topic if topic is not None else NULL_TOPIC
    text = rt.codec.encode(message, what=f"message to workflow {destination_id!r}")
    message_uuid = f"{idempotency_key}::{destination_id}" if idempotency_key else time_ordered_uuid()
    if not rt.messaging_store.send_in(connection, message_uuid, destination_id, topic_name, text,
                                      message_key(destination_id, topic_name)):
        raise DBOSNonExistentWorkflowError("`send` destination", destination_id)


def recv(rt: Runtime, topic: str | None, timeout_seconds: float) -> Any:
    """``DBOS.recv``: the oldest unread message on ``topic``, waiting up to ``timeout_seconds``; else None."""
    state = workflow_body(current_context())
    if state is None:
        raise DBOSException("recv() must be called from within a workflow (its body, not a step): messages are "
                            "addressed to a workflow ID")
    step_id = state.allocate_step_id()
    sleep_id = state.allocate_step_id()  # the durable timeout, as DBOS numbers it
    found, value = replay_step(rt, state, step_id, RECV)
    if found:
        return value
    workflow_id, generation = state.workflow_id, state.generation
    topic_name = topic if topic is not None else NULL_TOPIC
    started = now_ms()
    no_message = rt.codec.encode(None, what="recv timeout")

    def step_of(message: str | None) -> StepCheckpoint:
        output = message if message is not None else no_message
        return StepCheckpoint(workflow_id, generation, step_id, RECV, output, None, started)

    with rt.wakeups.watching(message_key(workflow_id, topic_name), status_key(workflow_id)) as waiter:
        wake_at = _wake_time(rt, state, sleep_id, timeout_seconds)
        while True:
            waiter.clear()
            stored, has_message = rt.messaging_store.recv_state(workflow_id, topic_name)
            _check_still_ours(rt, state, stored)
            final = time.time() >= wake_at
            if has_message or final:
                outcome, text = rt.messaging_store.consume(workflow_id, topic_name, step_of, final=final)
                if outcome == "taken":
                    return rt.codec.decode(text) if text is not None else None
                if outcome == "refused":
                    return decode_step(rt, rt.checkpoint_store.step_conflict(workflow_id, generation, step_id))
                # "empty": another execution took it first; it will be fenced. Wait on.
            waiter.wait(min(max(0.0, wake_at - time.time()), rt.wakeups.poll_sec, _until_deadline(state)))


# -- events ----------------------------------------------------------------------------------------


def set_event(rt: Runtime, key: str, value: Any) -> None:
    """``DBOS.set_event``: publish ``value`` under ``key`` for this workflow (the last value wins)."""
    ctx = current_context()
    if ctx is None or ctx.workflow is None:
        raise DBOSException("DBOS.set_event() must be called from within a workflow: events belong to a workflow ID")
    state = ctx.workflow
    text = rt.codec.encode(value, what=f"event {key!r}")
    wake = event_key(state.workflow_id, key)
    step: StepCheckpoint | None = None
    if ctx.step_kind is None:
        function_id = state.allocate_step_id()
        found, _ = replay_step(rt, state, function_id, SET_EVENT)
        if found:
            return
        step = StepCheckpoint(state.workflow_id, state.generation, function_id, SET_EVENT, None, None, now_ms())
    else:
        function_id = ctx.step_id or 0  # from inside a step: that step's checkpoint covers it
    if not rt.messaging_store.set_event(state.workflow_id, function_id, key, text, wake, step):
        rt.checkpoint_store.step_conflict(state.workflow_id, state.generation, function_id)  # raises, or it was recorded
        return
    rt.wakeups.wake(wake)


def get_event(rt: Runtime, workflow_id: str, key: str, timeout_seconds: float) -> Any:
    """``DBOS.get_event``: the latest value of a workflow's event, waiting up to ``timeout_seconds``; else None."""
    state = workflow_body(current_context())
    step_id = 0
    keys = [event_key(workflow_id, key)]
    if state is not None:
        step_id = state.allocate_step_id()
        sleep_id = state.allocate_step_id()
        found, value = replay_step(rt, state, step_id, GET_EVENT)
        if found:
            return value
        keys.append(status_key(state.workflow_id))
    started = now_ms()
    with rt.wakeups.watching(*keys) as waiter:
        wake_at = _wake_time(rt, state, sleep_id, timeout_seconds) if state else time.time() + timeout_seconds
        first = True
        while True:
            waiter.clear()
            if state is not None and not first:
                _check_still_ours(rt, state, rt.messaging_store.workflow_state(state.workflow_id))
            first = False
            text = rt.messaging_store.get_event(workflow_id, key)
            remaining = wake_at - time.time()
            if text is not None or remaining <= 0:
                break
            if rt.stopping.is_set():
                raise DBOSShutdownError(state.workflow_id if state else workflow_id)
            waiter.wait(min(remaining, rt.wakeups.poll_sec, _until_deadline(state)))
    if state is not None:
        output = text if text is not None else rt.codec.encode(None, what="get_event timeout")
        winner = rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, GET_EVENT, output, None, started)
        if winner is not None:
            return decode_step(rt, winner)
    return rt.codec.decode(text) if text is not None else None


def get_all_events(rt: Runtime, workflow_id: str) -> dict[str, Any]:
    """``DBOS.get_all_events``: the latest value of each of a workflow's events (a ``DBOS.get_events`` step
    when called from a workflow)."""

    def read() -> dict[str, Any]:
        return {key: rt.codec.decode(text) for key, text in rt.messaging_store.all_events(workflow_id).items()}

    return dict(as_step(rt, GET_EVENTS, read))
