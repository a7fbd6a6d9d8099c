"""Random answers either bake into a project that parses and lints, or are refused before anything is written."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cookiecutter.exceptions import FailedHookException, OutputDirExistsException
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from baking import bake
from helpers import load_hook

pre_gen = load_hook("pre_gen_project")
RUFF = Path(sys.executable).parent / "ruff"
# Strings an attacker (or a slip of the keyboard) might type; each is refused or baked harmlessly.
PRINTABLE_TRICKS = ['"+str(6*7)+"', "\\", '"""', "'", "😀", "é", "<script>", "| x |", "#", "${HOME}", "%(x)s", "../.."]
HOSTILE = [*PRINTABLE_TRICKS, ";$(id)", "`id`", "\n", "\r\n", "\x00", "\ud800", "\u2028", " ", "\t"]
URL_ALPHABET = "abcxyz09._:/?=@%+,[]-" + "\"'\\;$`|&<>() \n#~*!{}"


def no_jinja(text: str) -> bool:
    # cookiecutter renders every answer as a Jinja template before any hook sees it (that is how one
    # default refers to another), so "{{" in an answer is cookiecutter's to handle, not ours.
    return not any(marker in text for marker in ("{{", "{%", "{#"))


def texts(max_size: int, tricks: list[str] = HOSTILE) -> st.SearchStrategy[str]:
    if tricks is HOSTILE:
        plain = st.text(max_size=8)
    else:  # printable text only: what a hook must accept, and the project must carry as given
        plain = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=8)
    return st.lists(st.one_of(st.sampled_from(tricks), plain), max_size=max_size).map("".join).filter(no_jinja)


def pg_urls() -> st.SearchStrategy[str]:
    return st.builds(
        "postgresql+psycopg://{}@{}:{}/{}".format,
        st.sampled_from(["postgres", "app:secret", "u:p%40ss"]),
        st.sampled_from(["127.0.0.1", "db.internal", "[::1]"]),
        st.integers(1, 65535),
        st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    )


# Plausible answers (free text included: most of it is accepted), then up to two fields made hostile.
PLAUSIBLE = st.fixed_dictionaries(
    {
        "project_name": st.sampled_from(["Order Service", "Café Orders & Co.", "x"]),
        "description": texts(6, PRINTABLE_TRICKS),
        "author_name": texts(4, PRINTABLE_TRICKS),
        "database": st.sampled_from(["sqlite", "postgresql"]),
        "postgresql_url": pg_urls(),
        "admin_port": st.integers(1, 65535).map(str),
        "python_version": st.sampled_from(["3.11", "3.12", "3.13"]),
        "include_example": st.booleans(),
        "enable_otlp": st.booleans(),
    }
)
HOSTILE_FIELDS = {
    "project_name": texts(4),
    # cookiecutter makes the folder named by the slug before any hook runs: a name the file system
    # refuses (a slash, NUL, a lone surrogate) fails there, not in our hook.
    "project_slug": texts(3).filter(lambda t: not set(t) & {"/", "\x00", "\ud800"}),
    "package_name": texts(3),
    "description": texts(6),
    "author_name": texts(4),
    "postgresql_url": st.one_of(
        st.builds(lambda url, tail: url + tail, pg_urls(), texts(3)),
        st.text(alphabet=URL_ALPHABET, max_size=40).filter(no_jinja),
    ),
    "admin_port": st.one_of(st.integers(-1, 70000).map(str), texts(2)),
    "python_version": st.sampled_from(["3.9", "3.12.1", "3", "4.0", ""]),
}


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    found = draw(PLAUSIBLE)
    for field in draw(st.sets(st.sampled_from(sorted(HOSTILE_FIELDS)), max_size=2)):
        found[field] = draw(HOSTILE_FIELDS[field])
    return found


def check_baked(project: Path, answers: dict[str, Any]) -> None:
    """The project parses (every Python file, pyproject.toml) and lints, and holds the answers as given."""
    for path in project.rglob("*.py"):
        compile(path.read_bytes(), str(path), "exec")  # what compileall checks, without writing .pyc files
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == answers["description"]
    assert pyproject["project"]["authors"] == [{"name": answers["author_name"]}]
    lint = subprocess.run([RUFF, "check", "--no-cache", "--quiet", "."], cwd=project, capture_output=True,
                          text=True, timeout=120, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    package = json.loads((project / ".cookiecutter.json").read_text())["package_name"]
    settings_py = ast.parse((project / package / "settings.py").read_text())
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in settings_py.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("DEFAULT_DATABASE_URL", "DEFAULT_ADMIN_PORT", "DEFAULT_ENABLE_OTLP")
    }
    if answers["database"] == "postgresql":
        assert constants["DEFAULT_DATABASE_URL"] == answers["postgresql_url"]
        assert f"DATABASE_URL={answers['postgresql_url']}\n" in (project / ".env.example").read_text()
    assert constants["DEFAULT_ADMIN_PORT"] == int(answers["admin_port"])
    assert constants["DEFAULT_ENABLE_OTLP"] is answers["enable_otlp"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answers())
@example(answers={"project_name": "Order Service", "description": 'a "quoted" \\ 😀 line', "author_name": "Zoë",
                  "database": "postgresql", "postgresql_url": "postgresql+psycopg://u:p%40ss@[::1]:5433/db",
                  "admin_port": "3001", "python_version": "3.12", "include_example": True, "enable_otlp": False})
@example(answers={"project_name": "Order Service", "description": "", "author_name": "", "database": "postgresql",
                  "postgresql_url": 'postgresql+psycopg://postgres@127.0.0.1:5432/db"+str(6*7)+"',
                  "admin_port": "3001", "python_version": "3.12", "include_example": False, "enable_otlp": True})
def test_random_answers_bake_a_project_that_parses_and_lints_or_are_refused(answers: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        try:
            project = bake(out, **answers, run_setup=False)
        except (FailedHookException, OutputDirExistsException):  # the latter: a name that slugifies to ""
            assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []  # nothing written
            event("refused")
            return
        check_baked(project, answers)
        event("baked")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=URL_ALPHABET, max_size=60))
@example("postgresql+psycopg://u:p@[::1]:5432/db?sslmode=require")
@example("postgresql://h:port/db")
def test_hook_reads_urls_as_sqlalchemy_does(url: str) -> None:
    """The hook carries SQLAlchemy's URL pattern (it has only the stdlib); both must agree on every part."""
    ours = pre_gen.parse_sqlalchemy_url(url)
    try:
        theirs: sa.URL | None = sa.make_url(url)
    except sa.exc.ArgumentError:
        theirs = None
    except ValueError:  # a port that is not a number: the pattern matched, the int() failed
        assert ours is not None and ours["port"] is not None and not ours["port"].isdigit()
        return
    assert (ours is None) is (theirs is None)
    if ours is not None and theirs is not None:
        assert (ours["name"], ours["host"]) == (theirs.drivername, theirs.host)
        assert (int(ours["port"]) if ours["port"] else None) == theirs.port


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:5432/db", "postgresql://a:b@h/x"])
def test_a_plain_url_passes_and_parses(url: str) -> None:
    assert pre_gen.check_postgresql_url(url) is None and sa.make_url(url).database
