"""The generated Dockerfile passes hadolint and installs from uv.lock; the compose files wire the app to PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from baking import DEFAULT_COMBINATION, Bakery, bake
from helpers import dev_tool, output_of, project_env, run


@pytest.mark.parametrize("enable_otlp", [False, True], ids=["otlp-off", "otlp-on"])
def test_hadolint_accepts_the_dockerfile(tmp_path: Path, enable_otlp: bool) -> None:
    project = bake(tmp_path, run_setup=False, enable_otlp=enable_otlp)
    done = run([dev_tool("hadolint"), "--failure-threshold", "info", "Dockerfile"], project, timeout=60)
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


def test_dev_compose_serves_the_mounted_source_with_reload(tmp_path: Path) -> None:
    project = bake(tmp_path, run_setup=False)
    dev = yaml.safe_load((project / "compose.dev.yaml").read_text())["services"]
    assert set(dev) == {"app"}  # an override of compose.yaml's app, so it runs against its PostgreSQL
    command = " ".join(dev["app"]["command"])
    assert "alembic upgrade head && exec flask --app order_service run --debug --host 0.0.0.0" in command
    assert "./order_service:/app/order_service:ro" in dev["app"]["volumes"]
    # The debugger runs code for whoever reaches it: compose.yaml publishes the port on loopback only.
    assert yaml.safe_load((project / "compose.yaml").read_text())["services"]["app"]["ports"] == ["127.0.0.1:8000:8000"]


# --- the build stage installs from uv.lock -----------------------------------------------------------
# No Docker daemon here: the build stage's own instructions run in a scratch folder instead, with its
# absolute paths (/src, /opt/venv) moved under it and uv from PATH standing in for the uv image.


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def build_stage(dockerfile: str, stage: str) -> list[tuple[str, str]]:
    """The instructions of one ``FROM ... AS stage`` section."""
    section: list[tuple[str, str]] | None = None
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            if section is not None:
                break
            section = [] if rest.split()[-1] == stage else None
        elif section is not None:
            section.append((keyword, rest))
    assert section, f"no stage {stage!r}"
    return section


def run_build_stage(project: Path, scratch: Path, build_args: dict[str, str] | None = None) -> Path:
    """Run the Dockerfile's ``build`` stage against ``project``; return the virtualenv it installed."""
    env = project_env()  # this machine's network settings (certificates, proxies) and uv cache come along
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uv, as in the uv image
    workdir = scratch
    for keyword, rest in build_stage((project / "Dockerfile").read_text(), "build"):
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            env[name] = (build_args or {}).get(name, shlex.split(default)[0] if default else "")
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = str(scratch / value.lstrip("/")) if value.startswith("/") else value
        elif keyword == "WORKDIR":
            workdir = scratch / rest.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY" and rest.startswith("--from=uv "):
            assert shutil.which("uv", path=env["PATH"]), "uv not found"
        elif keyword == "COPY":
            *sources, dest = shlex.split(rest)
            for source in sources:
                matches = sorted(project.glob(source.rstrip("/")))
                assert matches or "*" in source, f"COPY {source}: no such file"  # a wildcard may match nothing
                for match in matches:
                    target = workdir / dest / match.name if dest.endswith("/") and match.is_file() else workdir / dest
                    if match.is_dir():
                        shutil.copytree(match, target, ignore=shutil.ignore_patterns("__pycache__"))
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(match, target)
        elif keyword == "RUN":
            command = re.sub(r"^(--mount=\S+\s+)+", "", rest)  # the cache mount: uv's cache is UV_CACHE_DIR here
            done = subprocess.run(
                ["/bin/sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
                check=False,
            )
            if done.returncode:
                raise BuildFailed(done.stdout + done.stderr)
        else:
            raise AssertionError(f"the test does not know how to run {keyword} {rest}")
    return Path(env["UV_PROJECT_ENVIRONMENT"])


class BuildFailed(Exception):
    """A RUN instruction of the build stage exited non-zero; the message is its output."""


def installed(venv: Path) -> dict[str, str]:
    """Distribution name -> version, as the virtualenv's own Python reports them."""
    script = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    done = run([venv / "bin" / "python", "-c", script], venv)
    assert done.returncode == 0, output_of(done)
    return {canonical(name): version for name, version in json.loads(done.stdout).items()}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(project: Path) -> dict[str, str]:
    return {canonical(p["name"]): p["version"] for p in tomllib.loads((project / "uv.lock").read_text())["package"]}


def test_build_stage_installs_exactly_the_lock(bakery: Bakery, tmp_path: Path) -> None:
    """A lock resolved as of an older date (still matching pyproject.toml) is what the build installs,
    not the newest releases the ranges allow: so the lock, not the ranges, decided."""
    baked = bakery.get(DEFAULT_COMBINATION)  # the Dockerfile is the same in every bake
    source = tmp_path / "project"
    shutil.copytree(baked.path, source, ignore=shutil.ignore_patterns(".venv", "instance"))
    done = run(["uv", "lock", "--quiet", "--exclude-newer", "2025-03-01"], source, env=project_env(), timeout=300)
    assert done.returncode == 0, output_of(done)
    lock_file = source / "uv.lock"  # keep the versions, drop the date: the lock then stands on its own
    lock_file.write_text(re.sub(r'\n\[options\]\nexclude-newer = "[^"]*"\n', "\n", lock_file.read_text()))

    venv = run_build_stage(source, tmp_path / "scratch", {"INSTALL_EXTRAS": "otlp,sentry"})
    versions, lock, today = installed(venv), locked(source), locked(baked.path)
    assert {name: version for name, version in versions.items() if lock.get(name) != version} == {}
    assert [name for name in versions if name in today and today[name] != versions[name]], "nothing older got in"
    assert {"flask", "sqlalchemy", "opentelemetry-sdk", "sentry-sdk", "order-service"} <= set(versions)
    assert not {"pytest", "mypy", "ruff", "python-dotenv", "pre-commit"} & set(versions)  # no dev extra
    # A wheel, not an editable link back to the source: the runtime stage copies only /opt/venv.
    done = run([venv / "bin" / "python", "-c", "import order_service.durable as d; print(d.__file__)"], tmp_path)
    assert done.returncode == 0 and str(venv) in done.stdout, output_of(done)


def test_build_stage_refuses_a_lock_that_no_longer_matches(bakery: Bakery, tmp_path: Path) -> None:
    source = tmp_path / "project"
    shutil.copytree(bakery.get(DEFAULT_COMBINATION).path, source, ignore=shutil.ignore_patterns(".venv", "instance"))
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"croniter>=6",', '"croniter>=6",\n    "itsdangerous>=2",'))
    with pytest.raises(BuildFailed, match="needs to be updated"):
        run_build_stage(source, tmp_path / "scratch")


def test_build_stage_without_a_lock_installs_the_ranges(tmp_path: Path) -> None:
    """A project generated without uv (or with run_setup off) has no uv.lock and still builds."""
    project = bake(tmp_path / "bake", run_setup=False)
    assert not (project / "uv.lock").exists()
    venv = run_build_stage(project, tmp_path / "scratch")
    assert {"flask", "sqlalchemy", "psycopg", "alembic", "gunicorn", "order-service"} <= set(installed(venv))
