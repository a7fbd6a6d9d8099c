"""What a team gets from day one: CI and Dependabot pass actionlint and GitHub's schemas; pre-commit passes.

These checks run on the fewest bakes that cover what can differ between combinations:
- ``.github/`` is copied without rendering, so it is byte-identical in every combination
  (test_bake.py checks that per combination): one bake validates them all.
- pre-commit (ruff, ruff format, mypy) runs once per value pair of the two options that change what
  it checks: ``include_example`` adds files (orders/), ``enable_otlp`` changes what is installed,
  which mypy sees in durable/tracing.py. ``database`` changes only string literals (settings.py,
  README, .env.example), so it takes each value twice here rather than doubling the runs. Every
  combination also gets ruff and ruff format in test_bake.py, which cost little.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from baking import DEFAULT_COMBINATION, Bakery, bake, combination_id
from helpers import CACHE_NAMES, dev_tool, output_of, project_env, run

PRE_COMMIT_COMBINATIONS = [
    DEFAULT_COMBINATION,  # sqlite, example on, OTLP off
    {"database": "postgresql", "include_example": False, "enable_otlp": True},
    {"database": "postgresql", "include_example": True, "enable_otlp": True},
    {"database": "sqlite", "include_example": False, "enable_otlp": False},
]


@pytest.fixture(scope="module")
def github_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("github"), run_setup=False)


def test_ci_workflow_passes_actionlint_with_shellcheck(github_project: Path) -> None:
    done = run(
        [dev_tool("actionlint"), "-verbose", "-color=false", "-shellcheck", dev_tool("shellcheck"), ".github/workflows/ci.yml"],
        github_project, timeout=120,
    )
    assert done.returncode == 0, output_of(done)
    assert 'Rule "shellcheck" was disabled' not in done.stdout + done.stderr, output_of(done)  # run: scripts checked


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", ".github/workflows/ci.yml"), ("vendor.dependabot", ".github/dependabot.yml")],
)
def test_github_files_match_githubs_schemas(github_project: Path, schema: str, path: str) -> None:
    done = run([dev_tool("check-jsonschema"), "--builtin-schema", schema, path], github_project, timeout=120)
    assert done.returncode == 0, output_of(done)


def test_ci_lints_types_tests_both_databases_and_builds_the_image(github_project: Path) -> None:
    ci: dict[str, Any] = yaml.safe_load((github_project / ".github/workflows/ci.yml").read_text())
    jobs = ci["jobs"]

    def commands(job: str) -> str:
        return "\n".join(step.get("run", "") for step in jobs[job]["steps"])

    assert "uv sync --locked --all-extras" in commands("lint") and "uv sync --locked" in commands("test")
    for check in ("ruff check", "ruff format --check", "mypy"):
        assert check in commands("lint"), check
    assert jobs["test"]["strategy"]["matrix"]["database"] == ["sqlite", "postgresql"]
    assert jobs["test"]["services"]["postgres"]["image"] == "postgres:16"
    assert "postgresql+psycopg://" in jobs["test"]["env"]["TEST_DATABASE_URL"]
    assert any(step.get("uses", "").startswith("docker/build-push-action@") for step in jobs["docker"]["steps"])
    assert "/readyz" in commands("docker")

    dependabot = yaml.safe_load((github_project / ".github/dependabot.yml").read_text())
    assert {update["package-ecosystem"] for update in dependabot["updates"]} == {"uv", "github-actions", "docker"}


@pytest.mark.parametrize("combination", PRE_COMMIT_COMBINATIONS, ids=combination_id)
def test_pre_commit_passes_on_the_fresh_project(bakery: Bakery, combination: dict[str, Any], tmp_path: Path) -> None:
    """`pre-commit run --all-files` in a new git repository of the project, offline: its hooks are local."""
    baked = bakery.get(combination)
    repo = tmp_path / "repo"
    shutil.copytree(baked.path, repo, ignore=shutil.ignore_patterns(".venv", "instance", *CACHE_NAMES))
    (repo / ".venv").symlink_to(baked.path / ".venv")  # the hooks call .venv/bin/...; set-up made it
    env = project_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), GIT_CONFIG_NOSYSTEM="1")
    done = run(["git", "init", "--quiet"], repo, env=env)
    assert done.returncode == 0, output_of(done)
    (repo / ".git" / "info" / "exclude").write_text(".venv\n")  # the symlink: .gitignore's .venv/ matches folders
    done = run(["git", "add", "--all"], repo, env=env)
    assert done.returncode == 0, output_of(done)

    done = run([baked.bin("pre-commit"), "run", "--all-files", "--color=never"], repo, env=env, timeout=600)
    assert done.returncode == 0, output_of(done)
    passed = [line for line in done.stdout.splitlines() if line.endswith("Passed")]
    assert [line.split(".")[0] for line in passed] == ["ruff check", "ruff format", "mypy"], done.stdout
    for argv in (["git", "diff", "--name-only"], ["git", "ls-files", "--others", "--exclude-standard"]):
        left = run(argv, repo, env=env)  # nothing the hooks changed or left behind
        assert left.returncode == 0 and left.stdout == "", output_of(left)


def test_a_long_package_name_keeps_the_code_formatted(tmp_path: Path) -> None:
    """Lines naming the package are the ones a longer name can push past the line length."""
    project = bake(tmp_path, project_name="Inventory Management Platform Service", run_setup=False)
    assert (project / "inventory_management_platform_service").is_dir()
    done = run([dev_tool("ruff"), "format", "--check", "--no-cache", "."], project)
    assert done.returncode == 0, output_of(done)
