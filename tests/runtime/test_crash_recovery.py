"""Crash tests: a real process is killed with SIGKILL between two steps, then a new one recovers."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from helpers import wait_until

WORKER = Path(__file__).with_name("crash_worker.py")


def start_worker(database_url: str, scenario: str, workdir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), database_url, scenario, str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def side_effects(database_url: str, name: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM side_effects WHERE name = :n"), {"n": name}).scalar())
    finally:
        engine.dispose()


def run_to_end(database_url: str, scenario: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    proc = start_worker(database_url, scenario, workdir)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_completed_step_is_not_rerun_after_sigkill(database_url: str, tmp_path: Path) -> None:
    worker = start_worker(database_url, "start", tmp_path)
    try:
        wait_until(lambda: (tmp_path / "between-steps").exists(), timeout=30, what="the first step to finish")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    assert side_effects(database_url, "first") == 1
    assert side_effects(database_url, "second") == 0

    done = run_to_end(database_url, "recover", tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["SUCCESS", "{'a': 2, 'b': 20}"]
    assert side_effects(database_url, "first") == 1, "the checkpointed step ran again"
    assert side_effects(database_url, "second") == 1, "the transaction did not run exactly once"


def step_rows(database_url: str, workflow_id: str) -> list[str]:
    engine = sa.create_engine(database_url)
    table = "dbos_operation_outputs" if database_url.startswith("sqlite") else "dbos.operation_outputs"
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(
                f"SELECT function_name FROM {table} WHERE workflow_uuid = :w ORDER BY function_id"), {"w": workflow_id})]
    finally:
        engine.dispose()


def test_step_killed_before_its_held_checkpoint_commits_reruns_once_and_nothing_is_lost(
    database_url: str, tmp_path: Path
) -> None:
    """A plain step's checkpoint waits for the workflow's next commit; SIGKILL in between re-runs the step once."""
    worker = start_worker(database_url, "held", tmp_path)
    try:
        wait_until(lambda: (tmp_path / "held").exists(), timeout=30, what="the step after the held one to start")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    assert side_effects(database_url, "first") == 1
    assert step_rows(database_url, "wf-held") == [], "the kill came after the step's checkpoint had committed"

    done = run_to_end(database_url, "recover-held", tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["SUCCESS", "{'a': 2, 'b': 20}"]
    assert side_effects(database_url, "first") == 2, "the step whose checkpoint was held ran once more, not more"
    assert side_effects(database_url, "second") == 1, "the transaction did not run exactly once"
    assert step_rows(database_url, "wf-held") == ["first_step", "blocks_when_held", "second_step"]


def test_workflow_that_keeps_crashing_is_dead_lettered(database_url: str, tmp_path: Path) -> None:
    first = run_to_end(database_url, "suicide", tmp_path)
    assert first.returncode == -signal.SIGKILL
    outcomes = []
    for _ in range(5):  # each recovery crashes again until the limit (2) is passed
        done = run_to_end(database_url, "adopt", tmp_path)
        outcomes.append(done.returncode)
        if done.returncode == 0:
            assert done.stdout.strip() == "MAX_RECOVERY_ATTEMPTS_EXCEEDED", done.stdout + done.stderr
            break
    assert outcomes == [-signal.SIGKILL, -signal.SIGKILL, 0]
    assert side_effects(database_url, "suicide") == 3  # the first run and two recoveries, then no more

