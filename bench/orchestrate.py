"""Run every benchmark in one go and write ``results/<date>.md`` and a PNG of the ratios.

Bakes the default project (SQLite) and a PostgreSQL variant, gives each runtime its own database on
the same server (or its own file on the same disk), runs each workload in the right venv, one at a
time (2 cores: parallel runs would measure each other), and prints ratios side by side.
Called by ``bench/run``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import report

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@dataclass
class Plan:
    """Counts for a full run and for --quick (which only proves the scripts still run)."""

    reps: int = 3
    limit_seconds: float = 1.0
    seq: int = 1500
    threaded: int = 2000
    fanout: int = 1000
    cost_count: int = 200
    seconds: float = 1.5
    queue_ours: int = 300
    queue_dbos: int = 20  # DBOS polls each queue once a second: 20 samples cost ~20 s
    messages_ours: int = 200
    messages_dbos: int = 10  # DBOS on SQLite polls once a second: 10 round trips cost ~10 s
    recovery_ours: int = 10_000
    recovery_dbos: int = 500
    recovery_timeout: float = 40.0
    growth_sizes: str = "100000,1000000"
    growth_calls: int = 300
    http_seconds: float = 2.0
    rss_orders: int = 10_000
    http_modes: str = "sync-2,gthread-2x8"
    dbos_phases: tuple[str, ...] = ("workflows", "messages", "recovery", "growth")
    dbos_databases: tuple[str, ...] = ("sqlite", "postgresql")
    dbos_growth_databases: tuple[str, ...] = ("postgresql",)  # 1M rows per DBOS version: PG only, for time
    dbos_growth_versions: tuple[str, ...] = ("dbos-2.31.1",)
    dbos_fanout_reps: int = 1  # DBOS starts ~40-120 workflows/s: 3 x 1,000 would cost minutes
    dbos_versions_max: int = 2
    http_databases: tuple[str, ...] = ("sqlite", "postgresql")

    @classmethod
    def quick(cls) -> Plan:
        return cls(reps=1, limit_seconds=0.3, seq=30, threaded=40, fanout=30, cost_count=10, seconds=0.5, queue_ours=20, queue_dbos=3, messages_ours=20, messages_dbos=3,
                   recovery_ours=100, recovery_dbos=50, recovery_timeout=20, growth_sizes="500,1000",
                   growth_calls=10, http_seconds=0.5, rss_orders=50, http_modes="sync-2",
                   # Under a minute: each script runs once; DBOS only through workflows.py, on SQLite.
                   dbos_phases=("workflows", "messages"), dbos_databases=("sqlite",), http_databases=("sqlite",),
                   dbos_versions_max=1, dbos_fanout_reps=1)


@dataclass
class Run:
    """What this run did: results by key, the exact commands, and how long each took."""

    results: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def call(self, key: str, argv: list[str], cwd: Path = BENCH, timeout: float = 400) -> Any:
        """Run one benchmark process; keep its BENCH-RESULT, or note its failure and go on."""
        self.commands.append(f"(cd {cwd} && {' '.join(_quote(a) for a in argv)})")
        print(f"[bench] {key}: {' '.join(argv[1:3])} ...", flush=True)
        began = time.monotonic()
        try:
            done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
            line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("BENCH-RESULT ")), None)
            if done.returncode != 0 or line is None:
                raise RuntimeError(f"exit {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")
            self.results[key] = json.loads(line[len("BENCH-RESULT "):])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            self.notes.append(f"{key} failed: {exc}")
            print(f"[bench] {key} FAILED: {str(exc)[-600:]}", flush=True)
        self.timings.append((key, time.monotonic() - began))
        print(f"[bench] {key}: {self.timings[-1][1]:.0f}s", flush=True)
        return self.results.get(key)


def _quote(arg: str) -> str:
    return arg if all(c.isalnum() or c in "/._-=:,+@" for c in arg) else "'" + arg.replace("'", "'\\''") + "'"


def psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def snapshot_template(work: Path) -> tuple[Path, str]:
    """The committed template (HEAD), exported: the work tree may hold someone's edits and caches."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    target = work / "template"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target, commit


def bake(template: Path, work: Path, database: str, pg_db: str) -> Path:
    """Bake the template as a user would; its post-gen hook makes .venv and migrates."""
    out = work / f"bake-{database}"
    argv = [str(BENCH / ".venvs/tools/bin/cookiecutter"), "--no-input", "-o", str(out), str(template)]
    if database == "postgresql":
        argv += ["database=postgresql", f"postgresql_url=postgresql+psycopg://postgres@127.0.0.1:5432/{pg_db}"]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL", "SYSTEM_DATABASE_URL")}
    env["PATH"] = f"{BENCH / '.venvs/tools/bin'}:{env.get('PATH', '/usr/bin:/bin')}"  # the hook wants uv
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    project = out / "order-service"
    if not (project / ".venv/bin/gunicorn").exists() or "Set-up stopped" in done.stdout:
        raise SystemExit(f"bake of {database} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny counts: check the scripts run (CI)")
    parser.add_argument("--dbos", default="2.31.1,3.4.0", help="DBOS versions whose venvs exist to compare with")
    parser.add_argument("--only", default="", help="comma list of phases: limit,workflows,messages,recovery,growth,http")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan()
    phases = set(args.only.split(",")) if args.only else {"limit", "workflows", "messages", "recovery", "growth",
                                                          "http"}
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M")
    tag = f"bench_{uuid.uuid4().hex[:8]}"
    work = BENCH / ".work" / stamp
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run = Run()
    started = time.monotonic()
    run.notes.append("load average at start (1/5/15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    runtimes: list[tuple[str, str]] = [("ours", "")]  # (label, venv python or "" for the bake's own)
    for version in filter(None, args.dbos.split(",")):
        py = BENCH / f".venvs/dbos-{version}/bin/python"
        if py.exists():
            runtimes.append((f"dbos-{version}", str(py)))
        else:
            run.notes.append(f"DBOS {version} skipped: its venv was not installed (not in the uv cache)")
    if len(runtimes) - 1 > plan.dbos_versions_max:
        run.notes.append(f"--quick: compared with {runtimes[1][0]} only")
        runtimes = runtimes[: plan.dbos_versions_max + 1]
    databases = ["sqlite", "postgresql"]
    pg_names = {name: f"{tag}_{name.replace('-', '_').replace('.', '_')}" for name in
                ["app", "limit"] + [label for label, _ in runtimes]}
    for name in pg_names.values():
        psql(f'CREATE DATABASE "{name}"')
    try:
        template, commit = snapshot_template(work)
        run.notes.append(f"baked the template at commit {commit} (git archive HEAD)")
        projects = {"sqlite": bake(template, work, "sqlite", pg_names["app"]),
                    "postgresql": bake(template, work, "postgresql", pg_names["app"])}
        run.commands.append(f"git -C {REPO} archive HEAD | tar -x -C {template}")
        run.commands.append(f"cookiecutter --no-input -o {work}/bake-sqlite {template}")
        run.commands.append(f"cookiecutter --no-input -o {work}/bake-postgresql {template} database=postgresql "
                            f"postgresql_url=postgresql+psycopg://postgres@127.0.0.1:5432/{pg_names['app']}")
        tools = str(BENCH / ".venvs/tools/bin/python")

        def url(database: str, label: str) -> str:
            if database == "postgresql":
                return f"{PG_SERVER}/{pg_names[label]}"
            return f"sqlite:///{work / f'{label}.sqlite'}"

        def runtime_argv(database: str, label: str, py: str, script: str) -> list[str]:
            python = py or str(projects[database] / ".venv/bin/python")
            kind = ["--runtime", "ours", "--package", "order_service"] if label == "ours" else ["--runtime", "dbos"]
            return [python, script, *kind, "--url", url(database, label)]

        if "limit" in phases:
            run.call("limit", [tools, "limit.py", "--pg-url", f"{PG_SERVER}/{pg_names['limit']}",
                               "--sqlite-path", str(work / "limit.sqlite"), "--seconds", str(plan.limit_seconds),
                               "--reps", str(plan.reps)])
        for database in databases:
            for label, py in runtimes:
                todo = phases if label == "ours" else (
                    phases & set(plan.dbos_phases) if database in plan.dbos_databases else set())
                if "workflows" in todo:
                    run.call(f"workflows/{database}/{label}", runtime_argv(database, label, py, "workflows.py") + [
                        "--reps", str(plan.reps), "--seq", str(plan.seq), "--threaded", str(plan.threaded),
                        "--fanout", str(plan.fanout), "--count", str(plan.cost_count),
                        "--seconds", str(plan.seconds),
                        "--queue-count", str(plan.queue_ours if label == "ours" else plan.queue_dbos)] + (
                        [] if label == "ours" else ["--fanout-reps", str(plan.dbos_fanout_reps)]))
                if "messages" in todo:
                    count = plan.messages_ours if label == "ours" else plan.messages_dbos
                    run.call(f"messages/{database}/{label}", runtime_argv(database, label, py, "messages.py") + [
                        "--count", str(count)])
                if "recovery" in todo:
                    count = plan.recovery_ours if label == "ours" else plan.recovery_dbos
                    reps = plan.reps if label == "ours" else 1  # DBOS recovers ~80/s: one round is all we can afford
                    run.call(f"recovery/{database}/{label}", runtime_argv(database, label, py, "recovery.py") + [
                        "--count", str(count), "--reps", str(reps), "--timeout", str(plan.recovery_timeout)])
                if "growth" in todo and (label == "ours" or (database in plan.dbos_growth_databases
                                                             and label in plan.dbos_growth_versions)):
                    run.call(f"growth/{database}/{label}", runtime_argv(database, label, py, "growth.py") + [
                        "--sizes", plan.growth_sizes, "--calls", str(plan.growth_calls)])
            if "http" in phases and database in plan.http_databases:
                rss = plan.rss_orders if database == "sqlite" else 0
                run.call(f"http/{database}", [tools, "http_bench.py", "--project", str(projects[database]),
                                              "--package", "order_service", "--seconds", str(plan.http_seconds),
                                              "--reps", str(plan.reps), "--rss-orders", str(rss),
                                              "--modes", plan.http_modes])
    finally:
        for name in pg_names.values():
            try:
                psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001 - report and go on; a leftover database is harmless
                run.notes.append(f"could not drop database {name}: {exc}")
    elapsed = time.monotonic() - started
    run.notes.append("load average at end (1/5/15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    out_dir = BENCH / "results" if not args.quick else work
    out_dir.mkdir(exist_ok=True)
    name = stamp + ("-quick" if args.quick else "")
    md = report.write(out_dir / f"{name}.md", out_dir / f"{name}.png", run, plan, elapsed, quick=args.quick)
    print(md)
    print(f"[bench] wrote {out_dir / (name + '.md')} and .png in {elapsed:.0f}s")
    if not args.quick:
        shutil.rmtree(work, ignore_errors=True)  # SQLite files and bakes: hundreds of MB after growth


if __name__ == "__main__":
    main()
