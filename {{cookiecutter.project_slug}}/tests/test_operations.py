"""The dashboard and the metrics as the app mounts them (operations.py): behind the auth hook, or not at all."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.durable import DBOS, SetWorkflowID
from {{ cookiecutter.package_name }}.settings import Settings, SettingsError

PASSWORD = "operator-test-password"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}


@DBOS.step()
def add_one(n: int) -> int:
    return n + 1


@DBOS.workflow()
def counted(n: int) -> int:
    return add_one(n)


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, log_level="WARNING", dashboard_password=PASSWORD, metrics_path="/metrics"
    )


def sample(series: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(series, labels) or 0.0


def test_the_dashboard_shows_a_workflow_to_the_operator_only(client: FlaskClient) -> None:
    with SetWorkflowID("ops-1"):
        assert counted(1) == 2
    assert client.get("/durable/").status_code == 401
    listing = client.get("/durable/?name=counted", headers=AUTH)
    assert listing.status_code == 200 and "ops-1" in listing.text
    page = client.get("/durable/workflows/ops-1", headers=AUTH)
    assert "add_one" in page.text and 'class="badge SUCCESS"' in page.text
    assert re.search(r'name="csrf_token" value="[^"]+"', page.text)
    assert client.get("/durable/queues", headers=AUTH).status_code == 200


def test_metrics_count_workflows_and_read_the_database(client: FlaskClient) -> None:
    before = sample("durable_workflows_completed_total", name="counted")
    steps_before = sample("durable_step_duration_seconds_count", name="add_one", outcome="ok")
    for n in range(3):
        counted(n)
    assert sample("durable_workflows_completed_total", name="counted") == before + 3
    assert sample("durable_step_duration_seconds_count", name="add_one", outcome="ok") == steps_before + 3
    assert client.get("/metrics").status_code == 401
    scraped = client.get("/metrics", headers=AUTH)
    assert scraped.status_code == 200 and scraped.content_type.startswith("text/plain")
    assert "durable_workflows_pending 0.0" in scraped.text  # read from the database at scrape time
    assert 'durable_workflows_completed_total{name="counted"}' in scraped.text


def test_without_a_password_neither_is_served(
    tmp_path: Path, alembic_config: Config, database_url: str
) -> None:
    command.upgrade(alembic_config, "head")
    app = create_app(Settings(database_url=database_url, log_level="WARNING"))
    try:
        client = app.test_client()
        assert client.get("/durable/", headers=AUTH).status_code == 404
        assert client.get("/metrics", headers=AUTH).status_code == 404
    finally:
        DBOS.destroy()


def test_metrics_path_without_the_dashboards_auth_is_refused() -> None:
    with pytest.raises(SettingsError, match="METRICS_PATH='/metrics' needs DASHBOARD_PASSWORD"):
        Settings.from_env({"METRICS_PATH": "/metrics"})
    with pytest.raises(SettingsError, match="DASHBOARD_PREFIX='durable' is not a URL path"):
        Settings.from_env({"DASHBOARD_PREFIX": "durable"})
    settings = Settings.from_env({"DASHBOARD_PASSWORD": "pw", "METRICS_PATH": "/metrics"})
    assert settings.metrics_path == "/metrics" and settings.dashboard_prefix == "/durable"
    assert "pw" not in repr(settings)


def test_building_the_app_connects_nowhere(tmp_path: Path) -> None:
    """Metrics register their database gauges by name only: the runtime launches later, after any fork."""
    code = (
        "from {{ cookiecutter.package_name }} import create_app\n"
        "from {{ cookiecutter.package_name }}.durable import current\n"
        "create_app()\n"
        "assert current.launched_runtime() is None, 'create_app launched the runtime'\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}",
        "DASHBOARD_PASSWORD": PASSWORD,
        "METRICS_PATH": "/metrics",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "none.db").exists()
