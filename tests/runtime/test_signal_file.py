"""The SQLite wake-up file: a bump in one process wakes the watchers of the others, not its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import RUNTIME_PARENT
from durable import signal_file
from durable.runtime import sqlite_signal_path
from durable.signal_file import SignalFile


def _has_inotify() -> bool:
    fd = signal_file._inotify_fd(__file__)
    if fd is None:
        return False
    os.close(fd)
    return True


# Linux watches with inotify; elsewhere only the polling fallback exists, and both are tested where they are.
WATCH_MODES = ["inotify", "polling"] if _has_inotify() else ["polling"]


@pytest.fixture(params=WATCH_MODES)
def watch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "polling":
        monkeypatch.setattr(signal_file, "_inotify_fd", lambda path: None)
    return str(request.param)


def test_a_bump_wakes_every_watcher(tmp_path: Path, watch_mode: str) -> None:
    path = str(tmp_path / "app.db-wake")
    heard_here, heard_there = threading.Event(), threading.Event()
    here = SignalFile(path, heard_here.set)
    there = SignalFile(path, heard_there.set)
    here.watch()
    there.watch()
    try:
        time.sleep(0.05)
        here.bump()  # creates the file on first use
        assert heard_there.wait(2), "the other watcher never heard the bump"
        assert heard_here.wait(2), "the bumper's own waiters were not woken"
        heard_there.clear()
        here.bump()
        there.bump()  # two bumps close together: the other's must not be lost behind ours
        assert heard_there.wait(2), "a second bump was not heard"
    finally:
        here.stop()
        there.stop()


def test_a_forked_child_stopping_its_copy_leaves_the_parent_watching(tmp_path: Path, watch_mode: str) -> None:
    """A gunicorn worker that calls destroy() without after_fork() must not wake its parent's thread."""
    path = str(tmp_path / "app.db-wake")
    heard = threading.Event()
    watcher = SignalFile(path, heard.set)
    watcher.watch()
    try:
        pid = os.fork()
        if pid == 0:  # the child: stop the inherited watcher, as destroy() would, and leave
            watcher.stop()
            os._exit(0)
        os.waitpid(pid, 0)
        before = time.process_time()
        time.sleep(1.0)
        assert time.process_time() - before < 0.3, "the parent's watcher spins after the child's stop"
        SignalFile(path, lambda: None).bump()
        assert heard.wait(2), "the parent stopped hearing bumps"
    finally:
        watcher.stop()


def test_a_bump_from_another_process_is_heard(tmp_path: Path, watch_mode: str) -> None:
    path = str(tmp_path / "app.db-wake")
    heard = threading.Event()
    watcher = SignalFile(path, heard.set)
    watcher.watch()
    try:
        time.sleep(0.05)
        code = (f"import sys; sys.path.insert(0, {str(RUNTIME_PARENT)!r}); "
                f"from durable.signal_file import SignalFile; SignalFile({path!r}, lambda: None).bump()")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
        assert heard.wait(2)
    finally:
        watcher.stop()


def test_an_unwritable_folder_only_loses_the_shortcut(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "app.db-wake"
    heard = threading.Event()
    watcher = SignalFile(str(path), heard.set)
    watcher.bump()  # no exception, and nothing written
    assert not path.exists()
    watcher.watch()  # no file to watch: it compares the timestamp instead
    try:
        assert not heard.wait(0.2)
        path.parent.mkdir()
        SignalFile(str(path), lambda: None).bump()
        assert heard.wait(5), "the watcher never heard the bump once the folder existed"
    finally:
        watcher.stop()
    assert watcher._thread is not None and not watcher._thread.is_alive()


def test_stop_returns_at_once(tmp_path: Path, watch_mode: str) -> None:
    watcher = SignalFile(str(tmp_path / "app.db-wake"), lambda: None)
    watcher.watch()
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 0.5, "stop waited for the watcher's re-check interval"


def test_only_sqlite_files_get_a_signal_file() -> None:
    assert sqlite_signal_path("sqlite:////srv/app/instance/app.db") == "/srv/app/instance/app.db-wake"
    assert sqlite_signal_path("sqlite://") is None
    assert sqlite_signal_path("sqlite:///:memory:") is None
    assert sqlite_signal_path("postgresql+psycopg://postgres@127.0.0.1:5432/app") is None
