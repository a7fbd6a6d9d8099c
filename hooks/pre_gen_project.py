"""Refuse bad answers before cookiecutter writes a single file.

Each check returns one line naming the variable, the bad value and what is allowed, or None.
Only the stdlib is available here: the hook runs with whatever Python runs cookiecutter.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

RAW_ANSWERS = r"""{{ cookiecutter | jsonify }}"""  # the only Jinja here: no other double braces below

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
PORT_PATTERN = re.compile(r"[1-9][0-9]{0,4}")  # no sign, no leading zero: the value is pasted into Python
PYTHON_PATTERN = re.compile(r"3\.1[1-9]")  # 3.11 is the floor: the runtime uses enum.StrEnum
DATABASES = ("sqlite", "postgresql")
PG_SCHEMES = ("postgresql", "postgresql+psycopg")
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
    if not isinstance(value, str) or not value.strip():
        return f"project_name={value!r} is empty; give the service a name, e.g. 'Order Service'"
    return None


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


def check_postgresql_url(value: Any) -> str | None:
    """Apply SQLAlchemy's URL rules with the stdlib: scheme, host and database name must be present."""
    example = "postgresql+psycopg://postgres@127.0.0.1:5432/order_service"
    if not isinstance(value, str):
        return f"postgresql_url={value!r} is not a URL; use the form {example}"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        return f"postgresql_url={value!r} does not parse ({exc}); use the form {example}"
    if parts.scheme not in PG_SCHEMES:
        return (
            f"postgresql_url={value!r} has scheme {parts.scheme!r}; allowed: {', '.join(PG_SCHEMES)} "
            f"(e.g. {example})"
        )
    if not parts.hostname:
        return f"postgresql_url={value!r} names no host; use the form {example}"
    if port == 0:
        return f"postgresql_url={value!r} has port 0; use a port in 1-65535, e.g. {example}"
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        return f"postgresql_url={value!r} names no single database after the host; use the form {example}"
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
