"""Every combination of the file-changing options bakes into a project that lints, migrates and passes its own tests."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from baking import COMBINATIONS, DEFAULT_COMBINATION, Baked, Bakery, combination_id
from helpers import (
    CACHE_NAMES,
    PG_ADMIN_URL,
    TEMPLATE_DIR,
    free_port,
    output_of,
    project_env,
    relative_tree,
    run,
)

TEMPLATE_PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
TEMPLATE_DURABLE = TEMPLATE_PROJECT / "{{cookiecutter.package_name}}" / "durable"
EXAMPLE_ONLY = [
    "order_service/orders", "migrations/versions/0002_orders.py", "tests/test_orders.py", "tests/test_orders_gunicorn.py",
    "tests/test_orders_hostile.py", "tests/test_orders_properties.py", "migrations/versions/0004_orders_workflow_id.py",
]
OTLP_ONLY = ["compose.otlp.yaml"]
JINJA_MARKERS = ("{{", "{%", "{#")
BINARY_SUFFIXES = frozenset({".png"})  # docs/dashboard.png: its bytes may spell {{ by chance
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # GitHub Actions' own ${{ }}: .github/ is copied unrendered
# What a team keeps from day one (issue 17); uv.lock because every bake here runs set-up with uv.
TEAM_FILES = [
    ".github/workflows/ci.yml", ".github/dependabot.yml", ".pre-commit-config.yaml", "uv.lock", "Makefile",
    "compose.dev.yaml", ".python-version", "order_service/error_tracking.py",
]


@pytest.fixture(scope="session", params=COMBINATIONS, ids=combination_id)
def baked(request: pytest.FixtureRequest, bakery: Bakery) -> Baked:
    return bakery.get(request.param)


def project_files(root: Path) -> list[Path]:
    """The generated files, without the .venv, caches or the SQLite database set-up made."""
    skip = {".venv", "instance", *CACHE_NAMES}
    return [p for p in root.rglob("*") if p.is_file() and not skip.intersection(p.relative_to(root).parts)]


def test_setup_made_a_venv_with_the_project_installed(baked: Baked) -> None:
    done = run([baked.bin("python"), "-c", "import order_service.settings, flask, sqlalchemy, psycopg"], baked.path)
    assert done.returncode == 0, output_of(done)
    otlp = run([baked.bin("python"), "-c", "import opentelemetry.sdk"], baked.path)
    assert (otlp.returncode == 0) is baked.combination["enable_otlp"], output_of(otlp)


def test_no_unrendered_jinja_outside_durable(baked: Baked) -> None:
    def text(path: Path) -> str:
        content = path.read_text(errors="replace")
        return GITHUB_EXPRESSION.sub("", content) if ".github" in path.relative_to(baked.path).parts else content

    leftovers = [
        f"{path.relative_to(baked.path)}: {marker}"
        for path in project_files(baked.path)
        if "durable" not in path.relative_to(baked.path).parts
        and path.suffix not in BINARY_SUFFIXES  # copied as they are (cookiecutter renders no binary file)
        for marker in JINJA_MARKERS
        if marker in text(path)
    ]
    assert leftovers == []
    assert not [p for p in baked.path.rglob("*") if "{{" in p.name or "{%" in p.name]


def test_durable_is_copied_byte_identical(baked: Baked) -> None:
    copied = relative_tree(baked.package / "durable")
    original = relative_tree(TEMPLATE_DURABLE)
    assert sorted(copied) == sorted(original)
    assert [name for name in original if copied[name] != original[name]] == []
    assert filecmp.cmp(TEMPLATE_DURABLE / "schema.py", baked.package / "durable" / "schema.py", shallow=False)


def test_answers_file_records_the_public_answers(baked: Baked) -> None:
    answers: dict[str, Any] = json.loads((baked.path / ".cookiecutter.json").read_text())
    assert not [key for key in answers if key.startswith("_")]
    for key, value in baked.combination.items():
        assert answers[key] == value


def test_files_are_pruned_by_option_leaving_no_empty_folder(baked: Baked) -> None:
    for option, paths in (("include_example", EXAMPLE_ONLY), ("enable_otlp", OTLP_ONLY)):
        for rel in paths:
            in_template = (TEMPLATE_PROJECT / rel.replace("order_service", "{{cookiecutter.package_name}}")).exists()
            assert (baked.path / rel).exists() is (baked.combination[option] and in_template), rel
    skip = {".venv", *CACHE_NAMES}
    empty = [
        p for p in baked.path.rglob("*")
        if p.is_dir() and not skip.intersection(p.relative_to(baked.path).parts) and not any(p.iterdir())
    ]
    assert empty == []


def test_default_database_url_is_the_answer(baked: Baked) -> None:
    settings = (baked.package / "settings.py").read_text()
    if baked.combination["database"] == "postgresql":
        assert f'DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{baked.database_name}"' in settings
    else:
        assert 'DEFAULT_DATABASE_URL = "sqlite:///instance/order_service.db"' in settings


def test_python_compiles(baked: Baked) -> None:
    done = run([sys.executable, "-m", "compileall", "-q", "-x", r"[/\\]\.venv[/\\]", "."], baked.path)
    assert done.returncode == 0, output_of(done)


def test_ruff_finds_nothing(baked: Baked) -> None:
    done = run([baked.bin("ruff"), "check", "--no-cache", "."], baked.path)
    assert done.returncode == 0, output_of(done)


def test_team_files_are_generated(baked: Baked) -> None:
    assert [rel for rel in TEAM_FILES if not (baked.path / rel).is_file()] == []
    assert "[tool.mypy]" in (baked.path / "pyproject.toml").read_text()


def test_github_files_are_the_templates_own(baked: Baked) -> None:
    """Copied unrendered, so what test_team_tooling.py validates once holds for every combination."""
    assert relative_tree(baked.path / ".github") == relative_tree(TEMPLATE_PROJECT / ".github")


def test_lock_matches_pyproject(baked: Baked) -> None:
    uv = shutil.which("uv")
    assert uv, "uv not on PATH"
    done = run([uv, "lock", "--check", "--offline"], baked.path, env=project_env(), timeout=120)
    assert done.returncode == 0, output_of(done)


def test_ruff_format_finds_nothing(baked: Baked) -> None:
    done = run([baked.bin("ruff"), "format", "--check", "--no-cache", "."], baked.path)
    assert done.returncode == 0, output_of(done)


def test_alembic_upgrades_downgrades_and_upgrades_again(baked: Baked) -> None:
    for action in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"]):
        done = run([baked.bin("alembic"), *action], baked.path, env=project_env())
        assert done.returncode == 0, f"alembic {' '.join(action)}: {output_of(done)}"


@pytest.mark.timeout(1800)
def test_generated_suite_passes_in_its_own_venv(baked: Baked) -> None:
    extra = {"TEST_DATABASE_URL": PG_ADMIN_URL} if baked.combination["database"] == "postgresql" else {}
    # About a minute alone; the cap is for a machine running other suites beside it (10 minutes were seen).
    done = run([baked.bin("pytest"), "-q", "-p", "no:cacheprovider"], baked.path, env=project_env(**extra), timeout=1500)
    assert done.returncode == 0, output_of(done)


@pytest.mark.parametrize(("ci", "expected_exit"), [("true", 1), ("", 0)], ids=["ci-fails", "local-skips"])
def test_generated_suite_fails_under_ci_when_its_postgresql_is_down(
    bakery: Bakery, ci: str, expected_exit: int
) -> None:
    baked = bakery.get(DEFAULT_COMBINATION)
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    done = run(
        [baked.bin("pytest"), "-q", "-p", "no:cacheprovider", "tests/test_health.py"],
        baked.path, env=project_env(TEST_DATABASE_URL=down, CI=ci), timeout=120,
    )
    assert done.returncode == expected_exit, output_of(done)
    assert "is unreachable" in done.stdout, output_of(done)


@pytest.mark.parametrize(("ci", "expected_exit"), [("true", 1), ("", 0)], ids=["ci-fails", "local-passes"])
def test_template_suite_treats_a_skip_as_failure_under_ci(tmp_path: Path, ci: str, expected_exit: int) -> None:
    for name in ("conftest.py", "helpers.py", "baking.py"):
        (tmp_path / name).write_bytes((TEMPLATE_DIR / "tests" / name).read_bytes())
    (tmp_path / "test_skips.py").write_text("import pytest\n\ndef test_skipped():\n    pytest.skip('no service')\n")
    done = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", tmp_path,
         tmp_path],
        tmp_path, env={**os.environ, "CI": ci}, timeout=120,
    )
    assert done.returncode == expected_exit, output_of(done)


def test_wheel_ships_the_whole_runtime(bakery: Bakery, tmp_path: Path) -> None:
    """The Docker image installs the wheel, not the folder: durable/store/ and README.md must be in it."""
    baked = bakery.get(DEFAULT_COMBINATION)
    uv = shutil.which("uv")
    assert uv, "uv not on PATH"
    done = run([uv, "build", "--wheel", "--out-dir", tmp_path, "."], baked.path, timeout=300)
    assert done.returncode == 0, output_of(done)
    with zipfile.ZipFile(next(tmp_path.glob("*.whl"))) as wheel:
        shipped = set(wheel.namelist())
    expected = {f"order_service/durable/{name}" for name in relative_tree(TEMPLATE_DURABLE)}
    assert expected - shipped == set()
    assert {"order_service/app.py", "order_service/settings.py", "order_service/orders/__init__.py"} <= shipped
