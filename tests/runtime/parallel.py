"""Run the same work on several threads or in several processes at once, and collect what went wrong."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path


def in_threads(work: Callable[[int], None], count: int, timeout: float = 120) -> list[BaseException]:
    """Call ``work(n)`` for n in range(count), each on its own thread; return the errors raised."""
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # noqa: BLE001 - the caller asserts on the list
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors


def in_processes(script: Path, args: list[str], count: int, timeout: float = 120) -> list[subprocess.CompletedProcess[str]]:
    """Start ``count`` copies of a Python script together and wait (bounded) for all of them."""
    procs = [subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(count)]
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            proc.kill()
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done
