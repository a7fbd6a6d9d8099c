"""Refuse bad answers before cookiecutter writes a single file.

Each check returns one line naming the variable, the bad value and what is allowed, or None.
Only the stdlib is available here: the hook runs with whatever Python runs cookiecutter.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

RAW_ANSWERS = r"""{{ cookiecutter | jsonify }}"""  # the only Jinja here: no other double braces below

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
PORT_PATTERN = re.compile(r"[1-9][0-9]{0,4}")  # no sign, no leading zero: the value is pasted into Python
PYTHON_PATTERN = re.compile(r"3\.1[1-9]")  # 3.11 is the floor: the runtime uses enum.StrEnum
DATABASES = ("sqlite", "postgresql")
PG_SCHEMES = ("postgresql", "postgresql+psycopg")
PG_EXAMPLE = "postgresql+psycopg://postgres@127.0.0.1:5432/order_service"
# The URL lands in settings.py, .env.example (which a shell may source) and the README's table, so it
# may hold only characters that mean nothing to Python strings, shells or Markdown: no quotes,
# backslashes, whitespace, control characters, $ ` ; & | < > ( ) ! * # ~ or braces. Anything else in a
# password can be percent-encoded.
URL_CHARACTERS = re.compile(r"[A-Za-z0-9._:/?=@%+,\[\]-]")
URL_CHARACTERS_TEXT = "letters, digits and - . _ : / ? = @ % + , [ ]"
# SQLAlchemy's own URL pattern (sqlalchemy.engine.url._parse_url): the hook has only the stdlib, and a
# test checks that this reading agrees with sqlalchemy.make_url.
SQLALCHEMY_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)
# Free-text answers (README, pyproject.toml): one line of printable text, bounded.
TEXT_LIMITS = {"project_name": 100, "description": 300, "author_name": 100}
# Control characters, lone surrogates (not encodable: the file would be half written) and line breaks.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
BOOLEAN_OPTIONS = ("include_example", "run_setup", "enable_otlp")
# Modules the generated project imports by name; a package called one of these would hide it.
THIRD_PARTY_IMPORTS = frozenset(
    {
        "flask", "sqlalchemy", "alembic", "psycopg", "gunicorn", "werkzeug", "jinja2", "click",
        "pytest", "dbos", "durable", "tests", "migrations",
    }
)


def suggest_slug(value: str) -> str:
    """A valid slug close to ``value``, for the refusal's example."""
    words = re.findall(r"[a-z0-9]+", value.lower())
    slug = "-".join(words).lstrip("0123456789-")
    return slug or "order-service"


def suggest_package(value: str) -> str:
    """A valid, non-shadowing package name close to ``value``, for the refusal's example."""
    name = re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_").lstrip("0123456789_")
    if not name or keyword.iskeyword(name) or shadowed_module(name):
        name = f"{name}_service" if name else "order_service"
    return name


def shadowed_module(name: str) -> str | None:
    """Describe the module ``name`` would hide, or None."""
    if name in THIRD_PARTY_IMPORTS:
        return f"the {name} module this project imports"
    if name in sys.stdlib_module_names:
        return f"the standard library's {name} module"
    return None


def check_project_name(value: Any) -> str | None:
    if isinstance(value, str) and not value.strip():
        return f"project_name={value!r} is empty; give the service a name, e.g. 'Order Service'"
    return check_text("project_name", value)


def check_project_slug(value: Any) -> str | None:
    if not isinstance(value, str) or not SLUG_PATTERN.fullmatch(value):
        return (
            f"project_slug={value!r} is not a valid slug; use lowercase letters, digits and single dashes, "
            f"starting with a letter, e.g. {suggest_slug(str(value))!r}"
        )
    return None


def check_package_name(value: Any) -> str | None:
    text = str(value)
    if not isinstance(value, str) or not PACKAGE_PATTERN.fullmatch(value) or not value.isidentifier():
        return (
            f"package_name={value!r} is not a Python package name; use lowercase letters, digits and "
            f"underscores, starting with a letter, e.g. {suggest_package(text)!r}"
        )
    if keyword.iskeyword(value):
        return f"package_name={value!r} is a Python keyword; choose another, e.g. {suggest_package(text)!r}"
    shadowed = shadowed_module(value)
    if shadowed:
        return f"package_name={value!r} would shadow {shadowed}; choose another, e.g. {suggest_package(text)!r}"
    return None


def check_database(value: Any) -> str | None:
    if value not in DATABASES:
        return f"database={value!r} is not supported; choose one of: {', '.join(DATABASES)}"
    return None


def parse_sqlalchemy_url(value: str) -> dict[str, str | None] | None:
    """The parts SQLAlchemy's ``make_url`` reads from ``value``, or None where it raises ArgumentError."""
    found = SQLALCHEMY_URL.match(value)
    if found is None:
        return None
    parts = found.groupdict()
    parts["host"] = parts.pop("ipv4host") or parts.pop("ipv6host")
    return parts


def check_postgresql_url(value: Any) -> str | None:
    """Parse as SQLAlchemy does: scheme, host, port and database name must be present and plain."""
    if not isinstance(value, str):
        return f"postgresql_url={value!r} is not a URL; use the form {PG_EXAMPLE}"
    bad = next((char for char in value if not URL_CHARACTERS.fullmatch(char)), None)
    if bad is not None:
        return (
            f"postgresql_url={value!r} contains {bad!r}; use only {URL_CHARACTERS_TEXT} (percent-encode other "
            f"characters of a password), e.g. {PG_EXAMPLE}"
        )
    parts = parse_sqlalchemy_url(value)
    if parts is None:
        return f"postgresql_url={value!r} is not a SQLAlchemy URL; use the form {PG_EXAMPLE}"
    if parts["name"] not in PG_SCHEMES:
        return f"postgresql_url={value!r} has scheme {parts['name']!r}; allowed: {', '.join(PG_SCHEMES)} (e.g. {PG_EXAMPLE})"
    if not parts["host"]:
        return f"postgresql_url={value!r} names no host; use the form {PG_EXAMPLE}"
    port = parts["port"]
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        return f"postgresql_url={value!r} has port {port!r}; use a port in 1-65535, e.g. {PG_EXAMPLE}"
    database = parts["database"]
    if not database or "/" in database:
        return f"postgresql_url={value!r} names no single database after the host; use the form {PG_EXAMPLE}"
    return None


def check_text(name: str, value: Any) -> str | None:
    """A free-text answer: a string of printable characters on one line, within its length limit."""
    limit = TEXT_LIMITS[name]
    if not isinstance(value, str):
        return f"{name}={value!r} is not text; use one line of up to {limit} printable characters"
    bad = next((char for char in value if unicodedata.category(char) in UNPRINTABLE_CATEGORIES), None)
    if bad is not None:
        return f"{name}={value!r} contains {bad!r}; use one line of up to {limit} printable characters"
    if len(value) > limit:
        return f"{name}={value!r} has {len(value)} characters; use one line of up to {limit} printable characters"
    return None


def check_admin_port(value: Any) -> str | None:
    text = str(value)
    if isinstance(value, bool) or not PORT_PATTERN.fullmatch(text) or int(text) > 65535:
        return f"admin_port={value!r} is not a port; use a whole number in 1-65535 without leading zeros, e.g. '3001'"
    return None


def check_python_version(value: Any) -> str | None:
    if not isinstance(value, str) or not PYTHON_PATTERN.fullmatch(value):
        return f"python_version={value!r} is not supported; use 3.11 or newer written as 3.NN, e.g. '3.12'"
    return None


def check_boolean(name: str, value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"{name}={value!r} is not a boolean; use true or false"
    return None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "project_name": check_project_name,
    "project_slug": check_project_slug,
    "package_name": check_package_name,
    "description": lambda value: check_text("description", value),
    "author_name": lambda value: check_text("author_name", value),
    "database": check_database,
    "admin_port": check_admin_port,
    "python_version": check_python_version,
}


def problems(answers: Mapping[str, Any]) -> list[str]:
    """Every refusal for these answers, one line each, in a stable order."""
    found = [check(answers.get(name)) for name, check in CHECKS.items()]
    found += [check_boolean(name, answers.get(name)) for name in BOOLEAN_OPTIONS]
    if answers.get("database") == "postgresql":  # the URL is only used, so only checked, for PostgreSQL
        found.append(check_postgresql_url(answers.get("postgresql_url")))
    return [line for line in found if line]


def main() -> int:
    answers = json.loads(RAW_ANSWERS)
    refusals = problems(answers)
    for line in refusals:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if refusals else 0


if __name__ == "__main__":
    sys.exit(main())
