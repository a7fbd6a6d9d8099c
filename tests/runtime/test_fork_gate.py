"""A fork waits for the runtime's threads to leave the database driver, so the child inherits no held lock.

The driver's lock is played by a plain ``threading.Lock`` taken inside the gate: a child forked while a
thread held it would get it held by nobody and block on it for good, as children did on SQLite's
allocator mutex. Each case forks in a fresh interpreter, since pytest's own process has threads.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import RUNTIME_PARENT

SCRIPT = f"""
import os, sys, threading, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable.store import fork_gate

fork_gate.FORK_WAIT_SEC = float(sys.argv[1])
fork_gate.guard_forks()
driver_lock = threading.Lock()  # stands for a mutex inside the driver
entered = threading.Event()

def query():
    with fork_gate.GATE.inside(), driver_lock:
        entered.set()
        time.sleep(0.5)

thread = threading.Thread(target=query)
thread.start()
entered.wait()
pid = os.fork()
if pid == 0:
    os._exit(0 if driver_lock.acquire(timeout=2) else 1)
_, status = os.waitpid(pid, 0)
thread.join()
print("child got the lock" if os.waitstatus_to_exitcode(status) == 0 else "child blocked")
"""


def fork_while_a_thread_is_inside(wait_sec: float) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(wait_sec)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_fork_waits_for_the_call_inside_the_driver_to_leave() -> None:
    assert fork_while_a_thread_is_inside(10.0) == "child got the lock"


def test_without_the_wait_the_child_inherits_the_held_lock() -> None:
    """The hazard is real: a fork that does not wait (the gate gives up at once) hands the child a held lock."""
    assert fork_while_a_thread_is_inside(0.0) == "child blocked"
