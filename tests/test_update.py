"""The update path, lived as a user lives it: cruft create at an old template commit, own work, cruft update.

One combination (the defaults): what is checked here is cruft's three-way update of the files and the
hooks' behaviour under cruft, which no option changes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import sqlalchemy as sa

from helpers import CACHE_NAMES, TEMPLATE_DIR, dev_tool, output_of, project_env, relative_tree, run

DURABLE = Path("{{cookiecutter.project_slug}}/{{cookiecutter.package_name}}/durable")
EXAMPLE_WORKFLOWS = Path("{{cookiecutter.project_slug}}/{{cookiecutter.package_name}}/orders/workflows.py")
USER_MIGRATION = '''"""Invoices: the user's own table, after the template's revisions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e7c1a9d42b10"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True), sa.Column("cents", sa.Integer))


def downgrade() -> None:
    op.drop_table("invoices")
'''


def template_files_only(folder: str, names: list[str]) -> list[str]:
    """What a clone of the template would not hold, or what this test does not need (its own tests, bench)."""
    top_level = Path(folder) == TEMPLATE_DIR
    return [
        name for name in names
        if name in CACHE_NAMES or name.startswith(".venv") or (top_level and name in (".demo", ".git", "bench", "tests"))
    ]


def git(cwd: Path, *args: str) -> str:
    done = run(["git", *args], cwd, env=git_env())
    assert done.returncode == 0, output_of(done)
    return done.stdout.strip()


def git_env() -> dict[str, str]:
    identity = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
                for what, value in (("NAME", "Test"), ("EMAIL", "test@example.invalid"))}
    return project_env(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", **identity)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new))


def test_cruft_update_brings_the_new_runtime_and_keeps_the_users_work(tmp_path: Path) -> None:
    # 1. This template as a git repository, at an "old" commit.
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=template_files_only)
    git(template, "init", "--quiet")
    git(template, "add", "--all")
    git(template, "commit", "--quiet", "-m", "old")
    old_commit = git(template, "rev-parse", "HEAD")

    # 2. cruft create, whose post-gen hook sets the project up (uv.lock, .venv, database), into a git repo.
    work = tmp_path / "work"
    done = run([dev_tool("cruft"), "create", str(template), "--no-input", "--output-dir", str(work)], tmp_path,
               env=git_env(), timeout=600)
    assert done.returncode == 0, output_of(done)
    project = work / "order-service"
    assert json.loads((project / ".cruft.json").read_text())["commit"] == old_commit
    assert (project / ".venv" / "bin" / "python").is_file() and (project / "uv.lock").is_file()
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "baked")
    lock_before = (project / "uv.lock").read_bytes()

    # 3. The user's own work: a changed workflow and a migration of their own.
    workflows = project / "order_service/orders/workflows.py"
    edit(workflows, 'f"Your order {order_id} is confirmed"', 'f"Thanks! Order {order_id} is on its way"')
    edit(project / "tests/test_orders.py", "f\"Your order {body['order_id']} is confirmed\"",
         "f\"Thanks! Order {body['order_id']} is on its way\"")
    heads = run([project / ".venv/bin/alembic", "heads"], project, env=project_env())
    assert heads.returncode == 0, output_of(heads)
    template_head = heads.stdout.split()[0]  # e.g. "0003 (head)": the user's revision follows it
    user_migration = USER_MIGRATION.format(head=template_head)
    (project / "migrations/versions/e7c1a9d42b10_invoices.py").write_text(user_migration)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "invoices")

    # 4. A new template commit: the runtime changes (its version and a file), and so does the example's
    #    workflow module, elsewhere than the user's edit.
    version = re.search(r'__version__ = "(\d+)\.(\d+)\.(\d+)"', (template / DURABLE / "__init__.py").read_text())
    assert version is not None
    major, minor, patch = version.groups()
    bumped = f"{major}.{minor}.{int(patch) + 1}"
    edit(template / DURABLE / "__init__.py", version.group(0), f'__version__ = "{bumped}"')
    with (template / DURABLE / "README.md").open("a") as readme:
        readme.write(f"\nUpdated by cruft: this line came with runtime {bumped}.\n")
    edit(template / EXAMPLE_WORKFLOWS, '"""The checkout workflow:', '"""Updated upstream. The checkout workflow:')
    git(template, "commit", "--quiet", "--all", "-m", "new")
    new_commit = git(template, "rev-parse", "HEAD")

    # 5. cruft update, without questions.
    done = run([dev_tool("cruft"), "update", "--project-dir", str(project), "--skip-apply-ask"], project,
               env=git_env(), timeout=600)
    assert done.returncode == 0, output_of(done)
    assert "Good work" in done.stdout, output_of(done)
    # Both renders cruft diffs ran the hooks, which set nothing up there.
    assert done.stdout.count("set-up skipped, cruft update render") == 2, output_of(done)

    # durable/ is the new one, byte for byte; the user's work is intact; the template's other change merged.
    assert relative_tree(project / "order_service/durable") == relative_tree(template / DURABLE)
    merged = workflows.read_text()
    assert 'f"Thanks! Order {order_id} is on its way"' in merged and merged.startswith('"""Updated upstream. ')
    assert (project / "migrations/versions/e7c1a9d42b10_invoices.py").read_text() == user_migration
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    assert (project / "uv.lock").read_bytes() == lock_before  # no render's lock leaked in
    assert not list(project.rglob("*.rej"))
    status = git(project, "status", "--porcelain")
    assert sorted(re.sub(r"^\s*\S+\s+", "", line) for line in status.splitlines()) == [
        ".cruft.json", "order_service/durable/README.md", "order_service/durable/__init__.py",
        "order_service/orders/workflows.py",
    ], status

    # The updated project works: the chain migrates a fresh database to the user's head, its tests pass.
    database = tmp_path / "fresh.db"
    env = project_env(DATABASE_URL=f"sqlite:///{database}")
    done = run([project / ".venv/bin/alembic", "upgrade", "head"], project, env=env, timeout=300)
    assert done.returncode == 0, output_of(done)
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "e7c1a9d42b10"
        assert "invoices" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    done = run([project / ".venv/bin/python", "-c", "import order_service.durable as d; print(d.__version__)"],
               project)
    assert done.stdout.strip() == bumped, output_of(done)
    done = run([project / ".venv/bin/pytest", "-q", "-p", "no:cacheprovider"], project, env=project_env(), timeout=900)
    assert done.returncode == 0, output_of(done)
