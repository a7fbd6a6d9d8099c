"""PostgreSQL ``LISTEN``: one connection per process that hears every wake-up the runtime sends.

Writers call ``pg_notify`` in the same transaction as their write (a message, an event, a status
change), so the notification arrives exactly when the write is visible. This thread only passes the
payloads on; the waiters re-read the database, so a lost notification (the connection dropped and
was re-opened) costs a delay, never a wrong answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

#: The channel every wake-up goes to; the payload says which waiters it concerns.
CHANNEL = "dbos_durable_wakeup"
NOTIFY_SQL = "SELECT pg_notify('" + CHANNEL + "', ?)"
# How often the thread looks up from the socket to notice that it should stop.
_POLL_SEC = 1.0
_RECONNECT_MAX_SEC = 5.0


class PostgresListener:
    """A daemon thread holding one ``LISTEN`` connection; calls ``on_payload`` for each notification."""

    def __init__(self, url: str, on_payload: Callable[[str], None], on_reconnect: Callable[[], None]) -> None:
        # A plain libpq URL: the listener talks to psycopg directly, outside SQLAlchemy's pool.
        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_payload = on_payload
        self._on_reconnect = on_reconnect
        self._stopping = threading.Event()
        self.listening = threading.Event()  # set once LISTEN has run (waiters check the database after)
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, name="durable-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def connection(self) -> Any:
        return self._conn

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=_POLL_SEC * 3)

    def forget_after_fork(self) -> None:
        """In a forked child: the connection's socket is the parent's; drop it without a goodbye."""
        self._conn = None
        self._stopping.set()

    def _run(self) -> None:
        import psycopg

        delay = 0.1
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    self._conn = conn
                    conn.execute("LISTEN " + CHANNEL)
                    self.listening.set()
                    delay = 0.1
                    self._on_reconnect()  # notifications may have been missed while disconnected
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=_POLL_SEC):
                            self._on_payload(notify.payload)
            except Exception:
                if self._stopping.is_set():
                    break
                logger.warning("notification listener lost its connection; reconnecting", exc_info=True)
                self._stopping.wait(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SEC)
            finally:
                self._conn = None
