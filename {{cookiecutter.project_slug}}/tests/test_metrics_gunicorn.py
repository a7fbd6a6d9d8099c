"""/metrics under 4 real gunicorn workers: the counts are the service's, whichever worker answers."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from gunicorn_server import call, free_port, running_gunicorn, until
from prometheus_client.parser import text_string_to_metric_families

RUNS = 40
WORKERS = 4
FAILS = sum(1 for n in range(RUNS) if n % 4 == 3)
PASSWORD = "metrics-test-password"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}


def scrape(url: str, headers: dict[str, str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def served(tmp_path: Path, alembic_config: Config, database_url: str) -> Iterator[tuple[str, str, Path]]:
    command.upgrade(alembic_config, "head")
    admin_port = free_port()
    hold = tmp_path / "hold"
    with running_gunicorn(
        database_url,
        tmp_path / "gunicorn.log",
        "--pythonpath",
        "tests",
        "metrics_app:app",
        WEB_CONCURRENCY=str(WORKERS),
        RUN_ADMIN_SERVER="true",
        ADMIN_PORT=str(admin_port),
        ADMIN_TOKEN="t" * 32,
        DASHBOARD_PASSWORD=PASSWORD,
        METRICS_PATH="/metrics",
        FLASK_HOLD_FILE=str(hold),
    ) as (base, _master):
        admin = f"http://127.0.0.1:{admin_port}"
        until(lambda: call_status(admin + "/dbos-healthz", {}) == 200, 30, "the admin server")
        # gunicorn serves once one worker has loaded the app; on a loaded machine the others can take
        # half a minute more, and a test that needs several workers would then see one.
        seen: set[int] = set()

        def every_worker_answers() -> bool:
            with ThreadPoolExecutor(WORKERS * 2) as pool:
                answers = pool.map(lambda _: call("GET", f"{base}/pid"), range(WORKERS * 2))
                seen.update(body["pid"] for _, body in answers)
            return len(seen) >= WORKERS  # a replaced worker adds a pid

        until(every_worker_answers, 120, f"all {WORKERS} workers to serve")
        yield base, admin, hold
        hold.unlink(missing_ok=True)


def test_counts_match_the_workflows_run_across_four_workers(served: tuple[str, str, Path]) -> None:
    base, admin, hold = served
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: call("POST", f"{base}/work/{n}"), range(RUNS)))
    assert sorted(status for status, _ in answers) == [200] * (RUNS - FAILS) + [422] * FAILS
    assert len({body["pid"] for _, body in answers}) > 1, "one worker served everything"

    name = (("name", "metered"),)
    scrapes = [scrape(f"{base}/metrics", AUTH) for _ in range(6)]  # several workers answer
    scrapes.append(scrape(f"{admin}/metrics", {"Authorization": "Bearer " + "t" * 32}))
    for samples in scrapes:
        assert samples[("durable_workflows_started_total", name)] == RUNS
        assert samples[("durable_workflows_completed_total", name)] == RUNS - FAILS
        assert samples[("durable_workflows_failed_total", name)] == FAILS
        steps = (("name", "measure"), ("outcome", "ok"))
        assert samples[("durable_step_duration_seconds_count", steps)] == RUNS
        assert samples[("durable_step_duration_seconds_sum", steps)] >= RUNS * 0.05
        assert samples[("durable_checkpoint_bytes_total", (("kind", "step"),))] > 0
        assert samples[("durable_workflows_in_flight", ())] == 0
        assert samples[("durable_workflows_pending", ())] == 0

    # Queue depth comes from the database: any worker sees the queue that another one filled.
    hold.touch()
    assert call("POST", f"{base}/hold/3")[0] == 200

    def held() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = scrape(f"{base}/metrics", AUTH)
        queue = (("queue", "metrics-held"),)
        # The gauges are separate queries: a scrape between the dequeue and the first one's start can see
        # the queue's row running before the PENDING count does. Wait for a scrape that agrees.
        wanted = {
            ("durable_queue_running", queue): 1,
            ("durable_queue_depth", queue): 2,
            ("durable_workflows_pending", ()): 1,
        }
        return samples if all(samples.get(key) == value for key, value in wanted.items()) else None

    until(held, 30, "one held workflow running (the only PENDING one) and two waiting")
    hold.unlink()
    until(
        lambda: (
            scrape(f"{base}/metrics", AUTH).get(("durable_queue_depth", (("queue", "metrics-held"),))) == 0
        ),
        30,
        "the queue to drain",
    )


def test_metrics_on_the_app_and_the_admin_server_need_their_auth(served: tuple[str, str, Path]) -> None:
    base, admin, _hold = served
    assert call_status(f"{base}/metrics", {}) == 401
    assert call_status(f"{admin}/metrics", {}) == 401
    assert call_status(f"{base}/metrics", AUTH) == 200


def call_status(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
