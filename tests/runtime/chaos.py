"""Harness for the chaos tests: a durable service under gunicorn, a bounded HTTP load, a killer,
and the figures (completed, kills, duplicates, stranded, recovery delay) read from the database."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from conftest import RUNTIME_PARENT
from helpers import free_port, http_status, wait_until

SERVICE = f"""
import os, sys, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
import sqlalchemy as sa
from flask import Flask, jsonify, request
from durable import DBOS, DBOSConfig

app = Flask(__name__)
DBOS(flask=app, config=DBOSConfig(name="chaos", application_database_url=os.environ["DATABASE_URL"],
                                  executor_heartbeat_sec=0.25, executor_timeout_sec=3, idempotency_wait_sec=0))
_counter = sa.create_engine(os.environ["DATABASE_URL"], pool_size=2, pool_pre_ping=True)

@DBOS.step(retries_allowed=True, max_attempts=20, interval_seconds=0.2, backoff_rate=1.5)  # its own DB use may fail
def think(n):
    with _counter.begin() as conn:  # counts executions, not checkpoints: may exceed 1 after a crash
        conn.execute(sa.text("INSERT INTO step_runs (workflow_id) VALUES (:w)"), {{"w": DBOS.workflow_id}})
    time.sleep(0.02 + (n % 5) * 0.02)
    return n

@DBOS.transaction()
def effect(step):
    DBOS.sql_session.execute(sa.text("INSERT INTO side_effects (workflow_id, step) VALUES (:w, :s)"),
                             {{"w": DBOS.workflow_id, "s": step}})
    return step

@DBOS.workflow()
def work(n):
    think(n)
    effect("b")
    think(n + 1)
    effect("d")
    return n

@app.post("/work")
def handle():
    return jsonify({{"result": work(request.get_json()["n"]), "workflow_id": DBOS.workflow_id}}), 201
"""

HOOKS = """
def post_fork(server, worker):
    import sys
    if "durable" in sys.modules:
        from durable import DBOS
        DBOS.after_fork()

def post_worker_init(worker):
    from durable import DBOS
    from durable.error import DBOSException
    try:
        DBOS.launch()
    except DBOSException as exc:
        worker.log.warning("not launched yet: %s", exc)

def worker_exit(server, worker):
    from durable import DBOS
    DBOS.destroy(workflow_completion_timeout_sec=5)
"""

TABLES = ("CREATE TABLE side_effects (workflow_id VARCHAR(64) NOT NULL, step VARCHAR(8) NOT NULL)",
          "CREATE TABLE step_runs (workflow_id VARCHAR(64) NOT NULL)")


def prepare(database_url: str, workdir: Path) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for ddl in TABLES:
            conn.exec_driver_sql(ddl)
    engine.dispose()
    (workdir / "svc.py").write_text(SERVICE)
    (workdir / "hooks.py").write_text(HOOKS)


class Cluster:
    """One gunicorn master (a "host") serving the chaos service on its own port."""

    def __init__(self, database_url: str, workdir: Path, workers: int = 4, name: str = "a",
                 preload: bool = False) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=f"{RUNTIME_PARENT}{os.pathsep}{workdir}")
        self.log = open(workdir / f"gunicorn-{name}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--config", str(workdir / "hooks.py"), "--graceful-timeout", "10", "--timeout", "30",
             *(["--preload"] if preload else []), "svc:app"],
            cwd=workdir, env=env, stdout=self.log, stderr=self.log, start_new_session=True,
        )
        wait_until(lambda: http_status(self.base + "/nowhere") == 404, timeout=30, what=f"gunicorn {name} to serve")

    def workers(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True,
                             check=False)
        return [int(pid) for pid in out.stdout.split()]

    def kill_everything(self) -> list[int]:
        """SIGKILL the master and all its workers at once, as a lost host."""
        pids = self.workers()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def post_work(base: str, n: int, key: str) -> int:
    request = urllib.request.Request(base + "/work", data=json.dumps({"n": n}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "dbos-idempotency-key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return 0  # connection refused or reset: the worker died


@dataclass
class Load:
    """A bounded load: ``total`` keyed requests from ``threads`` clients, each retried until accepted."""

    bases: list[str]
    total: int
    threads: int = 8
    deadline_sec: float = 120
    accepted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retries: int = 0

    def run(self) -> None:
        lock = threading.Lock()
        counter = iter(range(self.total))
        deadline = time.monotonic() + self.deadline_sec

        def client() -> None:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                key = f"req-{n}"
                while True:
                    status = post_work(random.choice(self.bases), n, key)
                    if status == 201:
                        with lock:
                            self.accepted.append(key)
                        break
                    if time.monotonic() > deadline:
                        with lock:
                            self.failed.append(f"{key}: last status {status}")
                        break
                    with lock:
                        self.retries += 1
                    time.sleep(0.2)  # 0 (worker died), 409 (still running elsewhere), 503 (database away)

        workers = [threading.Thread(target=client) for _ in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=self.deadline_sec + 60)


def pending_of(database_url: str, executor_prefix: str) -> int:
    return count(database_url, "SELECT COUNT(*) FROM {ws} WHERE status = 'PENDING' AND executor_id LIKE :p",
                 p=executor_prefix + "%")


def count(database_url: str, sql: str, **params: object) -> int:
    engine = sa.create_engine(database_url)
    ws = "dbos.workflow_status" if engine.dialect.name == "postgresql" else "dbos_workflow_status"
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql.format(ws=ws)), params).scalar() or 0)
    finally:
        engine.dispose()


class Killer(threading.Thread):
    """SIGKILLs a random worker every ``every`` seconds while the load runs; measures recovery delay."""

    def __init__(self, cluster: Cluster, database_url: str, kills: int, every: float = 1.5) -> None:
        super().__init__(daemon=True)
        self.cluster, self.database_url, self.kills, self.every = cluster, database_url, kills, every
        self.delays: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        host = socket.gethostname()
        for _ in range(self.kills):
            if self.done.wait(self.every):
                return
            workers = self.cluster.workers()
            if not workers:
                continue
            victim = random.choice(workers)
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            prefix = f"{os.uname().nodename or host}:{victim}:"
            try:
                wait_until(lambda prefix=prefix: pending_of(self.database_url, prefix) == 0, timeout=30,
                           what=f"workflows of killed worker {victim} to be adopted", interval=0.05)
            except AssertionError:
                self.delays.append(float("inf"))
                continue
            self.delays.append(time.monotonic() - killed_at)


@dataclass
class Figures:
    completed: int
    accepted: int
    failed: int
    kills: int
    duplicates: int
    stranded: int
    reruns: int
    recovery_p50: float | None
    recovery_max: float | None

    def report(self, name: str) -> str:
        def sec(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f}s"

        return (f"[chaos {name}] completed={self.completed} accepted={self.accepted} failed={self.failed} "
                f"kills={self.kills} duplicates={self.duplicates} stranded={self.stranded} "
                f"step_reruns={self.reruns} recovery_p50={sec(self.recovery_p50)} "
                f"recovery_max={sec(self.recovery_max)}")


def settle_and_measure(database_url: str, load: Load, delays: list[float], kills: int) -> Figures:
    """Wait (bounded) for every workflow to leave PENDING, then read the figures."""
    try:
        wait_until(lambda: count(database_url, "SELECT COUNT(*) FROM {ws} WHERE status = 'PENDING'") == 0,
                   timeout=60, what="no workflow left PENDING", interval=0.2)
    except AssertionError:
        pass  # reported as stranded below
    completed = count(database_url, "SELECT COUNT(*) FROM {ws} WHERE status = 'SUCCESS' AND name = 'work'")
    duplicates = count(database_url, "SELECT COUNT(*) - (SELECT COUNT(*) FROM (SELECT DISTINCT workflow_id, step "
                                     "FROM side_effects) d) FROM side_effects")
    stranded = count(database_url, "SELECT COUNT(*) FROM {ws} WHERE status = 'PENDING'")
    runs = count(database_url, "SELECT COUNT(*) FROM step_runs")
    finite = [d for d in delays if d != float("inf")]
    return Figures(
        completed=completed, accepted=len(load.accepted), failed=len(load.failed), kills=kills,
        duplicates=duplicates, stranded=stranded, reruns=runs - 2 * completed,
        recovery_p50=statistics.median(finite) if finite else None,
        recovery_max=max(delays) if delays else None,
    )


def private_postgres(workdir: Path) -> tuple[str, Path, int]:
    """initdb + start a throw-away PostgreSQL on a free port (as the postgres user); returns (bin, data, port)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    bin_dir = candidates[-1].parent
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    data = Path(tempfile.mkdtemp(prefix="chaos-pg-")) / "pgdata"
    data.mkdir()
    os.chmod(data.parent, 0o755)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
    pg_ctl(bin_dir, data, port, "start")
    return str(bin_dir), data, port


def pg_ctl(bin_dir: Path | str, data: Path, port: int, action: str) -> None:
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_postgres, str(Path(bin_dir) / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-m", "fast",
                    "-l", str(data / "server.log"), action], check=True, capture_output=True, timeout=120)
