"""The idempotency-key table: claim a key, finish it with a response, read it back, expire it.

The claim and the stored response commit without waiting for a flush (``unflushed``; see
``Dialect.create_unflushed_engine``). What they need is to be seen at once by every other request, which
an unflushed commit gives; durable they become with the request's next flushed commit (its workflow's
row, a step, a transaction). If the machine dies before that, the request has left nothing durable and
a retry runs it afresh; if it dies after the workflow ended but before the response was flushed, the
key is left ``running`` under a dead owner and a retry takes it over, its workflow replaying the outcome:
what already happens when the process dies between the workflow's end and the stored response.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import now_ms
from .database import Database

# Returns, for a new claim only, whether a workflow already has the key as its ID and which request
# started it: read in the claim's statement, not in a round trip of its own.
_CLAIM = """
INSERT INTO {idempotency_keys} (idempotency_key, fingerprint, method, path, state, executor_id, created_at, expires_at)
VALUES (?, ?, ?, ?, 'running', ?, ?, ?)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING (SELECT COUNT(*) FROM {workflow_status} WHERE workflow_uuid = ?),
          (SELECT request FROM {workflow_status} WHERE workflow_uuid = ?)"""
# alive: the owner's heartbeat is recent enough (NULL when the owner is gone from the table).
_GET = """
SELECT k.fingerprint, k.method, k.path, k.state, k.executor_id, k.response_status, k.response_headers,
       k.response_body, k.expires_at, k.created_at, CASE WHEN e.heartbeat_at >= ? THEN 1 ELSE 0 END
FROM {idempotency_keys} k LEFT JOIN {executors} e ON e.executor_id = k.executor_id
WHERE k.idempotency_key = ?"""
# created_at is when the key's current owner took it: a takeover starts the staleness clock again.
_ADOPT = """
UPDATE {idempotency_keys} SET executor_id = ?, created_at = ?
WHERE idempotency_key = ? AND state = 'running' AND executor_id = ?"""
_FINISH = """
UPDATE {idempotency_keys} SET state = 'done', response_status = ?, response_headers = ?, response_body = ?
WHERE idempotency_key = ? AND executor_id = ?"""
_RELEASE = "DELETE FROM {idempotency_keys} WHERE idempotency_key = ? AND executor_id = ? AND state = 'running'"
_DELETE_EXPIRED_ONE = "DELETE FROM {idempotency_keys} WHERE idempotency_key = ? AND expires_at < ?"
_DELETE_EXPIRED = """
DELETE FROM {idempotency_keys} WHERE idempotency_key IN (
    SELECT idempotency_key FROM {idempotency_keys} WHERE expires_at < ? LIMIT ?)"""


@dataclass(frozen=True)
class Claimed:
    """A key this executor has just claimed, and the workflow row that already has it as ID, if any."""

    workflow_exists: bool
    workflow_request: str | None  # that workflow's stored request (encoded), when it has one


@dataclass(frozen=True)
class KeyRecord:
    """A stored idempotency key and, when done, its response."""

    fingerprint: str
    method: str
    path: str
    state: str
    executor_id: str | None
    response_status: str | None
    response_headers: str | None
    response_body: str | None
    expires_at: int
    created_at: int
    owner_alive: bool


class IdempotencyStore:
    """SQL for ``idempotency.py``, on the system database's connections and retries.

    ``unflushed`` is the same database through connections whose commits skip the flush (the claim
    and the response: see the module docstring); the rare writes (takeover, release) use ``db``.
    """

    def __init__(self, db: Database, unflushed: Database | None = None) -> None:
        self.db = db
        self.unflushed = unflushed or db
        sql = db.dialect.sql
        self._claim, self._get, self._adopt = sql(_CLAIM), sql(_GET), sql(_ADOPT)
        self._finish, self._release = sql(_FINISH), sql(_RELEASE)
        self._delete_expired_one, self._delete_expired = sql(_DELETE_EXPIRED_ONE), sql(_DELETE_EXPIRED)

    def claim(self, key: str, fingerprint: str, method: str, path: str, executor_id: str,
              ttl_ms: int) -> Claimed | None:
        """Take a new key for this executor; None when the key exists already."""
        now = now_ms()
        params = (key, fingerprint, method, path, executor_id, now, now + ttl_ms, key, key)
        rows = self.unflushed.fetch(self._claim, params)
        return Claimed(bool(rows[0][0]), rows[0][1]) if rows else None

    def get(self, key: str, alive_since_ms: int) -> KeyRecord | None:
        rows = self.db.fetch(self._get, (alive_since_ms, key))
        if not rows:
            return None
        (fingerprint, method, path, state, owner, status, headers, body, expires_at, created_at, alive) = rows[0]
        return KeyRecord(fingerprint, method, path, state, owner, status, headers, body, int(expires_at),
                         int(created_at), bool(alive))

    def adopt(self, key: str, dead_owner: str | None, executor_id: str) -> bool:
        """Take over a running key whose owner died; False if someone else got there first."""
        return bool(self.db.execute(self._adopt, (executor_id, now_ms(), key, dead_owner)))

    def finish(self, key: str, executor_id: str, status: str, headers: str, body: str) -> None:
        self.unflushed.execute(self._finish, (status, headers, body, key, executor_id))

    def release(self, key: str, executor_id: str) -> None:
        """Forget a key whose request failed, so that a retry runs it again."""
        self.db.execute(self._release, (key, executor_id))

    def delete_if_expired(self, key: str) -> bool:
        return bool(self.db.execute(self._delete_expired_one, (key, now_ms())))

    def delete_expired(self, limit: int = 1000) -> int:
        """Remove up to ``limit`` expired keys: a bounded clean-up the recovery sweep runs."""
        return self.db.execute(self._delete_expired, (now_ms(), limit))
