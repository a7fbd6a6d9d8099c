"""Chaos: real gunicorn workers killed with SIGKILL under load, a lost host, a database restart,
a rolling restart. Every accepted request's workflow must end SUCCESS, with no duplicate effect
and nothing left PENDING. Figures are printed (run with -s to see them)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from chaos import Cluster, Killer, Load, count, pending_of, pg_ctl, prepare, private_postgres, settle_and_measure
from helpers import PG_SERVER_URL, create_database, drop_database, require_postgres, wait_until

pytestmark = pytest.mark.chaos


def check(figures, name: str) -> None:  # type: ignore[no-untyped-def]
    print(figures.report(name))
    assert figures.failed == 0, "some requests were never accepted"
    assert figures.completed == figures.accepted
    assert figures.duplicates == 0
    assert figures.stranded == 0


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-import", "preload"])
def test_workers_killed_repeatedly_under_load(database_url: str, tmp_path: Path, preload: bool) -> None:
    prepare(database_url, tmp_path)
    cluster = Cluster(database_url, tmp_path, workers=4, preload=preload)
    try:
        load = Load([cluster.base], total=240, threads=8)
        killer = Killer(cluster, database_url, kills=5, every=1.2)
        killer.start()
        load.run()
        killer.done.set()
        killer.join(timeout=60)
        figures = settle_and_measure(database_url, load, killer.delays, kills=len(killer.delays))
    finally:
        cluster.stop()
    check(figures, f"kill-workers/{database_url.split(':')[0]}/{'preload' if preload else 'no-preload'}")
    assert figures.kills >= 3


def test_lost_host_is_adopted_by_the_other(tmp_path: Path) -> None:
    require_postgres()
    name = f"t_{uuid.uuid4().hex[:12]}"
    create_database(name)
    database_url = f"{PG_SERVER_URL}/{name}"
    try:
        prepare(database_url, tmp_path)
        host_a = Cluster(database_url, tmp_path, workers=2, name="a")
        host_b = Cluster(database_url, tmp_path, workers=2, name="b")
        try:
            load = Load([host_a.base], total=400, threads=8, deadline_sec=90)
            runner = threading.Thread(target=load.run)
            runner.start()
            time.sleep(2)
            in_flight = count(database_url, "SELECT COUNT(*) FROM {ws} WHERE status = 'PENDING'")
            killed_at = time.monotonic()
            dead_workers = host_a.kill_everything()
            load.bases = [host_b.base]  # clients fail over, as a load balancer would
            node = os.uname().nodename
            wait_until(lambda: sum(pending_of(database_url, f"{node}:{pid}:") for pid in dead_workers) == 0,
                       timeout=30, what="host b to adopt host a's workflows", interval=0.05)
            adopted_in = time.monotonic() - killed_at
            runner.join(timeout=150)
            figures = settle_and_measure(database_url, load, [adopted_in], kills=1)
        finally:
            host_b.stop()
            host_a.stop()
    finally:
        drop_database(name)
    check(figures, f"lost-host in_flight_at_kill={in_flight}")
    assert figures.recovery_max is not None and figures.recovery_max < 30  # lease timeout 3 s + margin


def test_database_restart_in_the_middle_of_the_load(tmp_path: Path) -> None:
    bin_dir, data, port = private_postgres(tmp_path)
    database_url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        prepare(database_url, tmp_path)
        cluster = Cluster(database_url, tmp_path, workers=2)
        try:
            load = Load([cluster.base], total=200, threads=6, deadline_sec=120)
            runner = threading.Thread(target=load.run)
            runner.start()
            time.sleep(1.5)
            pg_ctl(bin_dir, data, port, "restart")
            runner.join(timeout=180)
            figures = settle_and_measure(database_url, load, [], kills=0)
        finally:
            cluster.stop()
    finally:
        pg_ctl(bin_dir, data, port, "stop")
        shutil.rmtree(data.parent, ignore_errors=True)
    check(figures, "postgres-restart")


def test_rolling_restart_under_load(database_url: str, tmp_path: Path) -> None:
    prepare(database_url, tmp_path)
    cluster = Cluster(database_url, tmp_path, workers=3)
    try:
        load = Load([cluster.base], total=200, threads=6)
        runner = threading.Thread(target=load.run)
        runner.start()
        for _ in range(2):
            time.sleep(1.5)
            cluster.process.send_signal(signal.SIGHUP)  # gunicorn replaces every worker gracefully
        runner.join(timeout=180)
        figures = settle_and_measure(database_url, load, [], kills=0)
    finally:
        cluster.stop()
    check(figures, f"rolling-restart/{database_url.split(':')[0]}")
