"""Settings: the one reader of ``os.environ``; everything else receives a ``Settings``.

Config flows one way (env -> Settings -> create_app) and is read when the app is built, never at
import, so tests can build apps with private databases side by side.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .durable import DBOSConfig

# The answers given when the project was generated; each env variable below overrides one.
# Rendered as literals (tojson, int, a comparison), so no answer can become code here.
DEFAULT_DATABASE_URL = {{ (cookiecutter.postgresql_url if cookiecutter.database == 'postgresql' else 'sqlite:///instance/' ~ cookiecutter.package_name ~ '.db') | tojson }}
DEFAULT_ADMIN_PORT = {{ cookiecutter.admin_port | int }}
DEFAULT_ENABLE_OTLP = {{ cookiecutter.enable_otlp is sameas true }}

#: Relative SQLite paths resolve here (the folder holding pyproject.toml), not against the working
#: directory, so `alembic` and `gunicorn` started from anywhere open the same file.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_NAME = __name__.partition(".")[0]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Request bodies larger than this get 413 (Flask's MAX_CONTENT_LENGTH): the example's bodies are small.
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment, parsed and checked."""

    database_url: str
    system_database_url: str | None = None
    log_level: str = "INFO"
    #: ``text`` (one readable line per record) or ``json`` (one JSON object per line); log.py.
    log_format: str = "text"
    admin_port: int = DEFAULT_ADMIN_PORT
    run_admin_server: bool = False
    admin_host: str = "127.0.0.1"
    admin_token: str | None = field(default=None, repr=False)  # a secret: kept out of reprs and logs
    admin_allowed_hosts: tuple[str, ...] = ()
    enable_otlp: bool = DEFAULT_ENABLE_OTLP
    otlp_traces_endpoint: str | None = None
    otlp_logs_endpoint: str | None = None
    #: The dashboard (durable/dashboard/) is served only when a password is set; HTTP basic auth.
    dashboard_user: str = "admin"
    dashboard_password: str | None = field(default=None, repr=False)  # a secret
    dashboard_prefix: str = "/durable"
    #: Prometheus metrics on the app at this path, behind the dashboard's auth (they are always on the
    #: admin server, behind its token); None: not on the app.
    metrics_path: str | None = None
    app_version: str = ""
    enable_patching: bool = False
    trusted_proxies: int = 0
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    #: Sentry's DSN; error tracking is on only when set (needs the ``sentry`` extra; error_tracking.py).
    sentry_dsn: str | None = None
    #: Extra Flask config from ``FLASK_*`` variables, as Flask's ``from_prefixed_env`` reads them.
    flask_config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read and check every variable; raise SettingsError naming the first bad one."""
        system_url = env.get("SYSTEM_DATABASE_URL", "").strip()
        system_database_url = (
            read_database_url(env, "SYSTEM_DATABASE_URL", system_url) if system_url else None
        )
        metrics_path = read_path(env, "METRICS_PATH", "") or None
        if metrics_path and not env.get("DASHBOARD_PASSWORD"):
            raise SettingsError(
                f"METRICS_PATH={metrics_path!r} needs DASHBOARD_PASSWORD: the app's metrics are served "
                "behind the dashboard's auth, never open (the admin server serves them behind ADMIN_TOKEN)"
            )
        return cls(
            database_url=read_database_url(env, "DATABASE_URL", DEFAULT_DATABASE_URL),
            system_database_url=system_database_url,
            log_level=read_log_level(env, "LOG_LEVEL"),
            log_format=read_choice(env, "LOG_FORMAT", ("text", "json")),
            admin_port=read_int(env, "ADMIN_PORT", DEFAULT_ADMIN_PORT, low=1, high=65535),
            run_admin_server=read_bool(env, "RUN_ADMIN_SERVER", False),
            admin_host=env.get("ADMIN_HOST", "").strip() or "127.0.0.1",
            admin_token=env.get("ADMIN_TOKEN", "").strip() or None,
            admin_allowed_hosts=tuple(
                h.strip() for h in env.get("ADMIN_ALLOWED_HOSTS", "").split(",") if h.strip()
            ),
            enable_otlp=read_bool(env, "ENABLE_OTLP", DEFAULT_ENABLE_OTLP),
            otlp_traces_endpoint=env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or None,
            otlp_logs_endpoint=env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip() or None,
            dashboard_user=env.get("DASHBOARD_USER", "").strip() or "admin",
            dashboard_password=env.get("DASHBOARD_PASSWORD", "") or None,
            dashboard_prefix=read_path(env, "DASHBOARD_PREFIX", "/durable"),
            metrics_path=metrics_path,
            app_version=env.get("APP_VERSION", "").strip(),
            enable_patching=read_bool(env, "ENABLE_PATCHING", False),
            trusted_proxies=read_int(env, "TRUSTED_PROXIES", 0, low=0, high=32),
            max_content_length=read_int(
                env, "MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH, low=1, high=2**31
            ),
            sentry_dsn=env.get("SENTRY_DSN", "").strip() or None,
            flask_config=read_prefixed(env, "FLASK_"),
        )

    def as_flask_config(self) -> dict[str, Any]:
        """The values Flask code may want via ``current_app.config``."""
        return {
            "MAX_CONTENT_LENGTH": self.max_content_length,
            **self.flask_config,
            "DATABASE_URL": self.database_url,
            "APP_VERSION": self.app_version,
        }

    def as_dbos_config(self) -> DBOSConfig:
        """The durable runtime's configuration, in DBOS Transact's key names."""
        config = DBOSConfig(
            name=APP_NAME,
            application_database_url=self.database_url,
            log_level=self.log_level,
            admin_port=self.admin_port,
            run_admin_server=self.run_admin_server,
            admin_host=self.admin_host,
            admin_token=self.admin_token,
            admin_allowed_hosts=list(self.admin_allowed_hosts),
            enable_otlp=self.enable_otlp,
            otlp_traces_endpoints=[self.otlp_traces_endpoint] if self.otlp_traces_endpoint else [],
            otlp_logs_endpoints=[self.otlp_logs_endpoint] if self.otlp_logs_endpoint else [],
            trusted_proxies=self.trusted_proxies,
            enable_patching=self.enable_patching,
        )
        if self.app_version:  # unset: the runtime's default ("PATCHING_ENABLED" with patching, as in DBOS)
            config["application_version"] = self.app_version
        if self.system_database_url:
            config["system_database_url"] = self.system_database_url
        return config


def read_database_url(env: Mapping[str, str], name: str, default: str) -> str:
    """A SQLAlchemy URL for SQLite or PostgreSQL (psycopg 3), with relative SQLite paths made absolute."""
    url = env.get(name, "").strip() or default
    for alias in ("postgres://", "postgresql://"):  # Heroku-style URLs; bare postgresql:// means psycopg2
        if url.startswith(alias):
            url = "postgresql+psycopg://" + url[len(alias) :]
    if url.startswith("postgresql+psycopg://"):
        return url
    if url.startswith("sqlite:///"):
        return resolve_sqlite_url(url)
    raise SettingsError(
        f"{name}={url!r} is not a supported database URL; use sqlite:///instance/app.db "
        "or postgresql+psycopg://user:password@host:5432/dbname"
    )


def resolve_sqlite_url(url: str) -> str:
    """Anchor a relative SQLite path at PROJECT_ROOT; absolute paths and :memory: pass through."""
    path, sep, query = url[len("sqlite:///") :].partition("?")
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return f"sqlite:///{PROJECT_ROOT / path}{sep}{query}"


def read_prefixed(env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """``FLASK_SECRET_KEY=x`` -> ``{"SECRET_KEY": "x"}``; values that parse as JSON become numbers,
    booleans, lists (Flask's own convention, so ``FLASK_PAYMENT_FAILURE_RATE=0.5`` is a float)."""
    found: dict[str, Any] = {}
    for name in sorted(env):
        if name.startswith(prefix) and len(name) > len(prefix):
            try:
                found[name[len(prefix) :]] = json.loads(env[name])
            except ValueError:
                found[name[len(prefix) :]] = env[name]
    return found


def read_log_level(env: Mapping[str, str], name: str) -> str:
    level = env.get(name, "").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise SettingsError(f"{name}={env[name]!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return level


def read_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (any case); unset or blank gives the first."""
    word = env.get(name, "").strip().lower() or choices[0]
    if word not in choices:
        raise SettingsError(f"{name}={env[name]!r} is not one of {', '.join(choices)}")
    return word


def read_path(env: Mapping[str, str], name: str, default: str) -> str:
    """A URL path such as ``/durable``: starts with one slash, no trailing slash, no query."""
    text = env.get(name, "").strip() or default
    if not text:
        return ""
    if not text.startswith("/") or text == "/" or text.endswith("/") or any(c in text for c in "?#% "):
        raise SettingsError(f"{name}={text!r} is not a URL path; use something like /durable")
    return text


def read_int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SettingsError(f"{name}={text!r} is not a whole number in {low}-{high}")
    return value


def read_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "")
    if not text.strip():  # unset or blank (as in a copied .env.example): keep the default
        return default
    word = text.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise SettingsError(f"{name}={text!r} is not a boolean; use true or false")
    return word in TRUE_WORDS
