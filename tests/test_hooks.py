"""The pre-gen hook refuses bad answers before writing anything; the post-gen hook never loses the project."""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException

from baking import bake
from helpers import PG_SERVER_URL, TEMPLATE_DIR, free_port, load_hook

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")
DEFAULT_ANSWERS: dict[str, Any] = {
    **json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text()),
    "project_slug": "order-service",
    "package_name": "order_service",
    "database": "sqlite",
    "postgresql_url": "postgresql+psycopg://postgres@127.0.0.1:5432/order_service",
}

# (answers changed, the line the hook must print): each is also baked to prove nothing is written.
REFUSALS = [
    pytest.param(
        {"project_slug": "Order Service!", "package_name": "order_service"},  # else derived, and refused too
        "ERROR: project_slug='Order Service!' is not a valid slug; use lowercase letters, digits and single dashes, "
        "starting with a letter, e.g. 'order-service'",
        id="slug-with-spaces",
    ),
    pytest.param(
        {"package_name": "order-service"},
        "ERROR: package_name='order-service' is not a Python package name; use lowercase letters, digits and "
        "underscores, starting with a letter, e.g. 'order_service'",
        id="package-not-identifier",
    ),
    pytest.param(
        {"package_name": "class"},
        "ERROR: package_name='class' is a Python keyword; choose another, e.g. 'class_service'",
        id="package-keyword",
    ),
    pytest.param(
        {"package_name": "flask"},
        "ERROR: package_name='flask' would shadow the flask module this project imports; choose another, "
        "e.g. 'flask_service'",
        id="package-shadows-flask",
    ),
    pytest.param(
        {"package_name": "durable"},
        "ERROR: package_name='durable' would shadow the durable module this project imports; choose another, "
        "e.g. 'durable_service'",
        id="package-shadows-runtime",
    ),
    pytest.param(
        {"package_name": "json"},
        "ERROR: package_name='json' would shadow the standard library's json module; choose another, "
        "e.g. 'json_service'",
        id="package-shadows-stdlib",
    ),
    pytest.param(
        {"database": "mysql"},
        "ERROR: database='mysql' is not supported; choose one of: sqlite, postgresql",
        id="unknown-database",
    ),
    pytest.param(
        {"database": "postgresql", "postgresql_url": "mysql://root@127.0.0.1/app"},
        "ERROR: postgresql_url='mysql://root@127.0.0.1/app' has scheme 'mysql'; allowed: postgresql, "
        "postgresql+psycopg (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/order_service)",
        id="pg-url-scheme",
    ),
    pytest.param(
        {"database": "postgresql", "postgresql_url": "postgresql+psycopg:///app"},
        "ERROR: postgresql_url='postgresql+psycopg:///app' names no host; use the form "
        "postgresql+psycopg://postgres@127.0.0.1:5432/order_service",
        id="pg-url-no-host",
    ),
    pytest.param(
        {"database": "postgresql", "postgresql_url": "postgresql+psycopg://postgres@127.0.0.1:5432"},
        "ERROR: postgresql_url='postgresql+psycopg://postgres@127.0.0.1:5432' names no single database after "
        "the host; use the form postgresql+psycopg://postgres@127.0.0.1:5432/order_service",
        id="pg-url-no-database",
    ),
    pytest.param(
        {"database": "postgresql", "postgresql_url": "postgresql://postgres@127.0.0.1:port/app"},
        "ERROR: postgresql_url='postgresql://postgres@127.0.0.1:port/app' has port 'port'; use a port in 1-65535, "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/order_service",
        id="pg-url-bad-port",
    ),
    *[
        pytest.param(
            {"database": "postgresql", "postgresql_url": f"postgresql+psycopg://postgres@127.0.0.1:5432/{tail}"},
            f"ERROR: postgresql_url={f'postgresql+psycopg://postgres@127.0.0.1:5432/{tail}'!r} contains {bad!r}; "
            f"use only letters, digits and - . _ : / ? = @ % + , [ ] (percent-encode other characters of a "
            f"password), e.g. postgresql+psycopg://postgres@127.0.0.1:5432/order_service",
            id=case_id,
        )
        for tail, bad, case_id in [
            ('db"+str(6*7)+"', '"', "pg-url-python-injection"),  # was evaluated when settings.py was imported
            ("db\\", "\\", "pg-url-trailing-backslash"),  # left settings.py unparseable
            ("db;$(id)", ";", "pg-url-shell-command"),  # went verbatim into .env.example
            ("db'x", "'", "pg-url-single-quote"),
            ("db`id`", "`", "pg-url-backtick"),
            ("my db", " ", "pg-url-space"),
            ("db\nDEBUG=1", "\n", "pg-url-newline"),
            ("db|x", "|", "pg-url-pipe"),
            ("db?sslmode=require&x=1", "&", "pg-url-ampersand"),
        ]
    ],
    pytest.param(
        {"description": "Orders\n# Injected heading"},
        "ERROR: description='Orders\\n# Injected heading' contains '\\n'; use one line of up to 300 printable "
        "characters",
        id="description-newline",
    ),
    pytest.param(
        {"author_name": "Ada\x00"},
        "ERROR: author_name='Ada\\x00' contains '\\x00'; use one line of up to 100 printable characters",
        id="author-nul",
    ),
    pytest.param(
        {"project_name": "Orders \ud800", "project_slug": "orders", "package_name": "orders"},
        "ERROR: project_name='Orders \\ud800' contains '\\ud800'; use one line of up to 100 printable characters",
        id="name-lone-surrogate",  # unencodable: cookiecutter would stop with the project half written
    ),
    pytest.param(
        {"description": "x" * 301},
        f"ERROR: description={'x' * 301!r} has 301 characters; use one line of up to 300 printable characters",
        id="description-too-long",
    ),
    pytest.param(
        {"admin_port": "70000"},
        "ERROR: admin_port='70000' is not a port; use a whole number in 1-65535 without leading zeros, e.g. '3001'",
        id="admin-port-too-big",
    ),
    pytest.param(
        {"admin_port": "http"},
        "ERROR: admin_port='http' is not a port; use a whole number in 1-65535 without leading zeros, e.g. '3001'",
        id="admin-port-not-a-number",
    ),
    pytest.param(
        {"python_version": "3.9"},
        "ERROR: python_version='3.9' is not supported; use 3.11 or newer written as 3.NN, e.g. '3.12'",
        id="python-too-old",
    ),
    pytest.param(
        {"python_version": "3.12.1"},
        "ERROR: python_version='3.12.1' is not supported; use 3.11 or newer written as 3.NN, e.g. '3.12'",
        id="python-with-patch",
    ),
]


@pytest.mark.parametrize(("changes", "line"), REFUSALS)
def test_validator_names_variable_value_and_what_is_allowed(changes: dict[str, Any], line: str) -> None:
    assert pre_gen.problems({**DEFAULT_ANSWERS, **changes}) == [line.removeprefix("ERROR: ")]


# cookiecutter itself refuses a value outside a choice list before any hook runs (tested below).
BAKED_REFUSALS = [case for case in REFUSALS if case.id != "unknown-database"]


@pytest.mark.parametrize(("changes", "line"), BAKED_REFUSALS)
def test_refused_bake_writes_nothing(
    changes: dict[str, Any], line: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, **{**changes, "run_setup": False})
    refusals = [text for text in capfd.readouterr().err.splitlines() if text.startswith("ERROR: ")]
    assert refusals == [line]
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []  # dot-files: bake's config


def test_unknown_database_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mysql provided for choice variable database"):
        bake(tmp_path, database="mysql", run_setup=False)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"database": "postgresql"},
        {"database": "postgresql", "postgresql_url": "postgresql://app:secret@db.internal/orders?sslmode=require"},
        {"project_slug": "billing2", "package_name": "billing2", "admin_port": "65535", "python_version": "3.13"},
        {"database": "sqlite", "postgresql_url": "not a url"},  # unused with SQLite, so not checked
        {"database": "postgresql", "postgresql_url": "postgresql+psycopg://u:p%40ss%22w%5C@[::1]:5433/db_1"},
        {"description": 'Says "hi" \\ in 3 languages 😀', "author_name": "Zoë O'Brien <zoe@example.com>"},
    ],
)
def test_good_answers_pass(changes: dict[str, Any]) -> None:
    assert pre_gen.problems({**DEFAULT_ANSWERS, **changes}) == []


def test_every_refusal_is_reported_at_once() -> None:
    found = pre_gen.problems({**DEFAULT_ANSWERS, "database": "oracle", "admin_port": "0", "include_example": "y"})
    assert [line.split("=")[0] for line in found] == ["database", "admin_port", "include_example"]


@pytest.mark.parametrize(
    ("name", "slug"), [("Billing Service", "billing-service"), ("Café Orders & Co.", "cafe-orders-co")]
)
def test_project_name_bakes_to_a_valid_slug_and_package(tmp_path: Path, name: str, slug: str) -> None:
    project = bake(tmp_path, project_name=name, run_setup=False)
    assert project.name == slug
    assert (project / slug.replace("-", "_") / "app.py").is_file()


def test_no_setup_env_variable_skips_set_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBOS_FLASK_NO_SETUP", "1")
    project = bake(tmp_path, run_setup=True)
    assert (project / "pyproject.toml").is_file()
    assert not (project / ".venv").exists()


def test_unreachable_postgresql_leaves_the_project_and_prints_the_fix(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url = f"{PG_SERVER_URL.rsplit(':', 1)[0]}:{free_port()}/unreachable_db"  # nothing listens there
    project = bake(tmp_path, database="postgresql", postgresql_url=url, run_setup=True)
    out = capfd.readouterr().out
    assert (project / "order_service" / "app.py").is_file()
    assert (project / ".venv" / "bin" / "python").is_file()  # the steps before the database still ran
    assert "Set-up stopped: could not create the database" in out
    conninfo, name = post_gen.admin_conninfo(url)
    create = shlex.join([".venv/bin/python", "-c", post_gen.CREATE_DATABASE_SCRIPT, conninfo, name])
    createdb = shlex.join(["createdb", "--maintenance-db", conninfo, name])
    assert f"  {create}\n  # or: {createdb}\n  .venv/bin/alembic upgrade head\n" in out
    assert f"cd {project}" in out


def test_admin_conninfo_targets_the_servers_postgres_database() -> None:
    conninfo, name = post_gen.admin_conninfo("postgresql+psycopg://app:pw@db:6543/orders?sslmode=require")
    assert (conninfo, name) == ("postgresql://app:pw@db:6543/postgres?sslmode=require", "orders")


def test_prune_removes_example_files_and_the_folders_they_leave_empty(tmp_path: Path) -> None:
    for rel in ["pkg/orders/routes.py", "migrations/versions/0002_orders.py", "tests/test_orders.py",
                "pkg/durable/__pycache__/x.pyc", "pkg/app.py", "compose.otlp.yaml"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    post_gen.prune(tmp_path, {"package_name": "pkg", "include_example": False, "enable_otlp": False})
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["pkg", "pkg/app.py"]


def test_answers_file_leaves_out_private_keys(tmp_path: Path) -> None:
    post_gen.write_answers_file(tmp_path, {"database": "sqlite", "_output_dir": "/home/me", "_template": "."})
    assert json.loads((tmp_path / ".cookiecutter.json").read_text()) == {"database": "sqlite"}


def test_tool_caches_left_in_the_template_are_neither_rendered_nor_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running ruff or the tests inside a checkout leaves caches (not UTF-8) that Jinja cannot read."""
    import shutil

    from cookiecutter.main import cookiecutter

    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=shutil.ignore_patterns(".venv*", ".demo", ".git", "bench"))
    package = template / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"
    for cache in (".ruff_cache", "__pycache__", "durable/__pycache__"):
        (package / cache).mkdir(parents=True, exist_ok=True)
        (package / cache / "blob").write_bytes(b"\x90\xff\x00 not utf-8")
    monkeypatch.setenv("DBOS_FLASK_NO_SETUP", "1")
    project = Path(cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / "out")))
    assert (project / "order_service" / "app.py").is_file()
    assert not [p for p in project.rglob("*") if p.name in (".ruff_cache", "__pycache__")]


def test_cruft_update_renders_are_told_apart_from_projects_people_keep(tmp_path: Path) -> None:
    cruft = {"_commit": "0" * 40, "_template": "/src/template"}
    with tempfile.TemporaryDirectory() as render:  # what cruft update renders each side into
        root = Path(render) / "order-service"
        root.mkdir()
        assert post_gen.is_cruft_update_render(root, cruft)
        assert not post_gen.is_cruft_update_render(root, {"_template": "."})  # plain cookiecutter
        (Path(render) / "another").mkdir()
        assert not post_gen.is_cruft_update_render(root, cruft)  # not a folder made for this render
    with tempfile.TemporaryDirectory(prefix="tmp.") as named:  # like `mktemp -d`: a folder someone chose
        root = Path(named) / "order-service"
        root.mkdir()
        assert not post_gen.is_cruft_update_render(root, cruft)
    kept = tmp_path / "work" / "order-service"  # cruft create into a folder the user named
    kept.mkdir(parents=True)
    assert not post_gen.is_cruft_update_render(kept, cruft)


def test_set_up_skips_cruft_renders_first_then_the_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBOS_FLASK_NO_SETUP", raising=False)
    kept = tmp_path / "order-service"
    kept.mkdir()
    assert post_gen.setup_skipped_because(kept, {"run_setup": True}) is None
    assert post_gen.setup_skipped_because(kept, {"run_setup": False}) == "run_setup is false"
    monkeypatch.setenv("DBOS_FLASK_NO_SETUP", "1")
    assert post_gen.setup_skipped_because(kept, {"run_setup": True}) == "DBOS_FLASK_NO_SETUP is set"
    with tempfile.TemporaryDirectory() as render:
        root = Path(render) / "order-service"
        root.mkdir()
        reason = post_gen.setup_skipped_because(root, {"run_setup": True, "_commit": "0" * 40})
        assert reason is not None and reason.startswith("cruft update render")


def test_with_uv_set_up_locks_then_installs_exactly_the_lock() -> None:
    steps = post_gen.plan_setup({**DEFAULT_ANSWERS, "enable_otlp": True}, "/usr/bin/uv")
    assert [step.argv[:2] for step in steps[:2]] == [["/usr/bin/uv", "lock"], ["/usr/bin/uv", "sync"]]
    sync = steps[1].argv
    assert "--frozen" in sync and sync[sync.index("--python") + 1] == "3.11"
    assert [sync[i + 1] for i, arg in enumerate(sync) if arg == "--extra"] == ["dev", "otlp"]
    assert steps[-1].argv == [".venv/bin/alembic", "upgrade", "head"]


def test_without_uv_set_up_installs_the_ranges_and_writes_no_lock() -> None:
    steps = post_gen.plan_setup(DEFAULT_ANSWERS, None)
    assert not any("lock" in arg for step in steps for arg in step.argv)
    assert steps[1].argv[-2:] == ["-e", ".[dev]"]
