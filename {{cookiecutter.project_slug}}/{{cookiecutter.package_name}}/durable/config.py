"""``DBOSConfig``: the runtime's settings, their defaults, and the checks that refuse bad ones."""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, TypedDict

from .error import DBOSConfigError


class DBOSConfig(TypedDict, total=False):
    """Settings passed to ``DBOS(config=...)``; the keys are DBOS Transact's, plus a few of ours.

    Only ``name`` is required. With no URL at all the runtime uses ``sqlite:///<name>.sqlite``.
    """

    name: str
    application_database_url: str | None
    system_database_url: str | None
    database_url: str | None  # DBOS's deprecated spelling of application_database_url
    dbos_system_schema: str | None
    run_migrations: bool | None
    log_level: str | None
    application_version: str | None
    executor_id: str | None
    db_engine_kwargs: dict[str, Any] | None
    sys_db_pool_size: int | None
    admin_port: int | None
    run_admin_server: bool | None
    # Ours: where the admin server listens, the token it requires, and the Host names it answers to.
    admin_host: str | None
    admin_token: str | None
    admin_allowed_hosts: list[str] | None
    enable_otlp: bool | None
    otlp_traces_endpoints: list[str] | None
    otlp_logs_endpoints: list[str] | None
    otlp_attributes: dict[str, str] | None
    enable_patching: bool | None
    # DBOS 2.31.1's remaining keys, accepted so that a DBOS user's config works unchanged. What each
    # does here (honoured, or accepted with no effect and why) is in durable/README.md's table.
    sys_db_polling_concurrency: int | None
    otlp_log_level: str | None
    console_log_level: str | None
    system_database_engine: Any
    conductor_key: str | None
    conductor_url: str | None
    conductor_executor_metadata: dict[str, Any] | None
    serializer: Any
    use_listen_notify: bool | None
    max_executor_threads: int | None
    notification_listener_polling_interval_sec: float | None
    notification_coalesce_sec: float | None
    scheduler_polling_interval_sec: float | None
    kafka_queue_polling_interval_sec: float | None
    otel_attribute_format: str | None
    # Ours: limits and process model (documented in durable/README.md).
    max_checkpoint_bytes: int | None
    allow_pickle: bool | None
    max_recovery_attempts: int | None
    # Ours: a plain step's checkpoint commits with the workflow's next durable write (README "Held step checkpoints").
    defer_step_checkpoints: bool | None
    executor_heartbeat_sec: float | None
    executor_timeout_sec: float | None
    trusted_proxies: int | None
    idempotency_ttl_sec: float | None
    idempotency_wait_sec: float | None
    idempotency_stale_sec: float | None


KNOWN_KEYS = frozenset(DBOSConfig.__annotations__)
# DBOS 2.31.1 keys that are accepted and do nothing here: launch logs one INFO line naming those given.
# Conductor (DBOS's hosted control plane) and Kafka are outside this runtime; otel_attribute_format and
# shapes span attribute names, which this runtime names its own way;
# sys_db_polling_concurrency and notification_coalesce_sec tune DBOS's own pollers, which do not exist here.
NO_EFFECT_KEYS = frozenset({
    "conductor_key", "conductor_url", "conductor_executor_metadata", "kafka_queue_polling_interval_sec",
    "otel_attribute_format", "sys_db_polling_concurrency",
    "notification_coalesce_sec",
})
# DBOS's rule for application names (it refuses others when DBOS(...) is built).
APP_NAME_PATTERN = re.compile(r"[a-z0-9_-]{3,30}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_EXECUTOR_THREADS = 64

DEFAULT_MAX_CHECKPOINT_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_RECOVERY_ATTEMPTS = 100
# An admin token is a secret: long enough not to guess, plain enough to send in a header.
ADMIN_TOKEN_PATTERN = re.compile(r"[!-~]{16,512}")
# DBOS's application version when patching is on: one version for every deploy, so code changes are
# made with DBOS.patch rather than by letting old workflows wait for their own version.
PATCHING_VERSION = "PATCHING_ENABLED"


@dataclass(frozen=True)
class RuntimeSettings:
    """A validated ``DBOSConfig`` with every default filled in."""

    name: str
    app_db_url: str
    sys_db_url: str
    pg_schema: str = "dbos"
    run_migrations: bool = True
    log_level: str = "INFO"
    application_version: str = ""
    # Recorded as each workflow's app_id: DBOS Cloud's application ID (DBOS__APPID), else empty, as in DBOS.
    application_id: str = field(default_factory=lambda: os.environ.get("DBOS__APPID", ""))
    executor_id: str | None = None
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    pool_size: int = 20
    admin_port: int = 3001
    run_admin_server: bool = False
    admin_host: str = "127.0.0.1"
    admin_token: str | None = field(default=None, repr=False)
    admin_allowed_hosts: tuple[str, ...] = ()
    enable_otlp: bool = False
    otlp_traces_endpoints: tuple[str, ...] = ()
    otlp_logs_endpoints: tuple[str, ...] = ()
    otlp_log_level: str = "INFO"
    otlp_attributes: dict[str, str] = field(default_factory=dict)
    enable_patching: bool = False
    max_checkpoint_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES
    allow_pickle: bool = False
    max_recovery_attempts: int = DEFAULT_MAX_RECOVERY_ATTEMPTS
    defer_step_checkpoints: bool = True
    executor_heartbeat_sec: float = 5.0
    executor_timeout_sec: float = 30.0
    trusted_proxies: int = 0
    idempotency_ttl_sec: float = 24 * 3600.0
    idempotency_wait_sec: float = 0.0
    idempotency_stale_sec: float = 300.0
    # How often the scheduler re-reads the stored schedules after its first minute (DBOS's
    # scheduler_polling_interval_sec); a change made in the same process is seen at once.
    scheduler_poll_sec: float = 30.0
    # How often a stream reader re-reads when no notification came (DBOS's
    # notification_listener_polling_interval_sec): it is how a reader notices that its writer ended.
    # Waiters that no notification can reach (use_listen_notify=False) re-read as often too.
    notification_poll_sec: float = 1.0
    # DBOS's ``serializer``: a ``Serializer`` object that checkpoints values instead of the JSON codec.
    serializer: Any = None
    # A ready-made engine for the system tables (DBOS's system_database_engine), used instead of sys_db_url's.
    system_database_engine: Any = field(default=None, repr=False)
    max_executor_threads: int = DEFAULT_EXECUTOR_THREADS
    use_listen_notify: bool = True
    ignored_keys: tuple[str, ...] = ()

    @property
    def shares_database(self) -> bool:
        """True when the system tables live in the application database (the default)."""
        return self.app_db_url == self.sys_db_url


def _get(config: DBOSConfig, key: str, default: Any) -> Any:
    value = config.get(key)
    return default if value is None else value


def _positive_number(config: DBOSConfig, key: str, default: float) -> float:
    value = _get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise DBOSConfigError(f"DBOSConfig {key}={value!r} must be a positive number")
    return float(value)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _admin_access(config: DBOSConfig) -> tuple[str, str | None, tuple[str, ...]]:
    """(host, token, allowed Host names) of the admin server; beyond loopback a token is required."""
    host = _get(config, "admin_host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise DBOSConfigError(f"DBOSConfig admin_host={host!r} must be an address, e.g. '127.0.0.1'")
    token = config.get("admin_token") or None
    if token is not None and (not isinstance(token, str) or not ADMIN_TOKEN_PATTERN.fullmatch(token)):
        raise DBOSConfigError("DBOSConfig admin_token must be 16-512 visible ASCII characters (its value is not "
                              "shown: it is a secret); e.g. the output of `openssl rand -hex 32`")
    if config.get("run_admin_server") and not is_loopback(host) and token is None:
        raise DBOSConfigError(
            f"DBOSConfig admin_host={host!r} reaches beyond this machine, and the admin server can take over "
            "executors' workflows: set admin_token (ADMIN_TOKEN), or bind to 127.0.0.1"
        )
    allowed = _get(config, "admin_allowed_hosts", [])
    if not isinstance(allowed, (list, tuple)) or not all(isinstance(h, str) and h for h in allowed):
        raise DBOSConfigError(f"DBOSConfig admin_allowed_hosts={allowed!r} must be a list of host names")
    return host, token, tuple(allowed)


def _serializer(config: DBOSConfig) -> Any:
    """DBOS's ``serializer`` key: None, or an object with ``serialize``/``deserialize``/``name``."""
    serializer = config.get("serializer")
    if serializer is None:
        return None
    missing = [m for m in ("serialize", "deserialize", "name") if not callable(getattr(serializer, m, None))]
    if missing:
        raise DBOSConfigError(f"DBOSConfig serializer={serializer!r} lacks {', '.join(missing)}(): "
                              "give a durable.Serializer subclass")
    return serializer


def _check_url(key: str, url: str) -> str:
    if not isinstance(url, str) or not url.startswith(("sqlite", "postgresql", "postgres://")):
        raise DBOSConfigError(
            f"DBOSConfig {key}={url!r} is not a supported database URL; "
            "use sqlite:///path.db or postgresql+psycopg://user@host:port/db"
        )
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        # SQLAlchemy's bare postgresql:// means psycopg2; this runtime ships with psycopg 3.
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def resolve_config(config: DBOSConfig) -> RuntimeSettings:
    """Validate a ``DBOSConfig`` and fill in defaults; raise ``DBOSConfigError`` naming the bad key."""
    if not isinstance(config, dict):
        raise DBOSConfigError(f"DBOSConfig must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - KNOWN_KEYS)
    if unknown:
        raise DBOSConfigError(unknown_key_message(unknown[0]))
    name = config.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DBOSConfigError("DBOSConfig needs a non-empty 'name' (the application's name)")
    if not APP_NAME_PATTERN.fullmatch(name):
        raise DBOSConfigError(
            f"Invalid app name {name}.  App names must be between 3 and 30 characters long and contain only "
            "lowercase letters, numbers, dashes, and underscores."
        )
    app_url = config.get("application_database_url") or config.get("database_url")
    sys_url = config.get("system_database_url")
    engine = config.get("system_database_engine")
    if engine is not None and not sys_url:
        sys_url = _engine_url(engine)
    if not app_url:
        app_url = sys_url or f"sqlite:///{name}.sqlite"
    app_url = _check_url("application_database_url", app_url)
    sys_url = _check_url("system_database_url", sys_url) if sys_url else app_url
    if app_url.split(":", 1)[0].split("+")[0] != sys_url.split(":", 1)[0].split("+")[0]:
        raise DBOSConfigError(
            "DBOSConfig application_database_url and system_database_url must be the same kind of database "
            f"(got {app_url.split(':', 1)[0]} and {sys_url.split(':', 1)[0]})"
        )
    admin_port = _get(config, "admin_port", 3001)
    if isinstance(admin_port, bool) or not isinstance(admin_port, int) or not 1 <= admin_port <= 65535:
        raise DBOSConfigError(f"DBOSConfig admin_port={admin_port!r} is not a port (1-65535)")
    cap = _get(config, "max_checkpoint_bytes", DEFAULT_MAX_CHECKPOINT_BYTES)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
        raise DBOSConfigError(f"DBOSConfig max_checkpoint_bytes={cap!r} must be a positive integer")
    log_level = _log_level(config, "log_level", "INFO")
    console_level = _log_level(config, "console_log_level", log_level)
    # No handler of its own: the console is the app's handlers, so the stricter level of the two applies.
    log_level = max(log_level, console_level, key=LOG_LEVELS.index)
    heartbeat = _positive_number(config, "executor_heartbeat_sec", 5.0)
    timeout = _positive_number(config, "executor_timeout_sec", 30.0)
    if timeout <= heartbeat:
        raise DBOSConfigError(
            f"DBOSConfig executor_timeout_sec={timeout} must exceed executor_heartbeat_sec={heartbeat}"
        )
    enable_patching = config.get("enable_patching") is True
    admin_host, admin_token, admin_allowed_hosts = _admin_access(config)
    return RuntimeSettings(
        name=name,
        app_db_url=app_url,
        sys_db_url=sys_url,
        pg_schema=_get(config, "dbos_system_schema", "dbos"),
        run_migrations=bool(_get(config, "run_migrations", True)),
        log_level=log_level,
        application_version=str(_get(config, "application_version", PATCHING_VERSION if enable_patching else "")),
        executor_id=config.get("executor_id"),
        engine_kwargs=dict(_get(config, "db_engine_kwargs", {})),
        pool_size=_positive_int(config, "sys_db_pool_size", 20),
        admin_port=admin_port,
        run_admin_server=bool(_get(config, "run_admin_server", False)),
        admin_host=admin_host,
        admin_token=admin_token,
        admin_allowed_hosts=admin_allowed_hosts,
        enable_otlp=bool(_get(config, "enable_otlp", False)),
        otlp_traces_endpoints=tuple(_get(config, "otlp_traces_endpoints", ())),
        otlp_logs_endpoints=tuple(_get(config, "otlp_logs_endpoints", ())),
        otlp_log_level=str(_get(config, "otlp_log_level", "INFO")).upper(),
        otlp_attributes=dict(_get(config, "otlp_attributes", {})),
        enable_patching=enable_patching,
        max_checkpoint_bytes=cap,
        allow_pickle=bool(_get(config, "allow_pickle", False)),
        max_recovery_attempts=int(_get(config, "max_recovery_attempts", DEFAULT_MAX_RECOVERY_ATTEMPTS)),
        defer_step_checkpoints=_get(config, "defer_step_checkpoints", True) is not False,
        executor_heartbeat_sec=heartbeat,
        executor_timeout_sec=timeout,
        trusted_proxies=int(_get(config, "trusted_proxies", 0)),
        idempotency_ttl_sec=_positive_number(config, "idempotency_ttl_sec", 24 * 3600.0),
        idempotency_wait_sec=float(_get(config, "idempotency_wait_sec", 0.0)),
        idempotency_stale_sec=_positive_number(config, "idempotency_stale_sec", 300.0),
        scheduler_poll_sec=_positive_number(config, "scheduler_polling_interval_sec", 30.0),
        notification_poll_sec=_positive_number(config, "notification_listener_polling_interval_sec", 1.0),
        serializer=_serializer(config),
        system_database_engine=engine,
        max_executor_threads=_positive_int(config, "max_executor_threads", DEFAULT_EXECUTOR_THREADS),
        use_listen_notify=_get(config, "use_listen_notify", True) is not False,
        ignored_keys=tuple(sorted(key for key in NO_EFFECT_KEYS if config.get(key))),
    )


def unknown_key_message(key: str) -> str:
    """The refusal of a key neither DBOS nor this runtime knows, naming the nearest known key."""
    close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(KNOWN_KEYS))}"
    return f"DBOSConfig has unknown key {key!r}{hint}"


def log_ignored_keys(settings: RuntimeSettings, logger: logging.Logger) -> None:
    """One INFO line at launch naming the DBOS keys given that have no effect here (README: Compatibility)."""
    if settings.ignored_keys:
        logger.info("DBOSConfig keys with no effect in this runtime (see durable/README.md, Compatibility): %s",
                    ", ".join(settings.ignored_keys))


def _log_level(config: DBOSConfig, key: str, default: str) -> str:
    level = str(_get(config, key, default)).upper()
    if level not in LOG_LEVELS:
        raise DBOSConfigError(f"DBOSConfig {key}={level!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _positive_int(config: DBOSConfig, key: str, default: int) -> int:
    value = _get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DBOSConfigError(f"DBOSConfig {key}={value!r} must be a positive integer")
    return value


def _engine_url(engine: Any) -> str:
    """The URL of a ``system_database_engine`` (the runtime's own helpers connect to it by URL)."""
    url = getattr(engine, "url", None)
    if url is None or not hasattr(engine, "connect"):
        raise DBOSConfigError(f"DBOSConfig system_database_engine={engine!r} must be a SQLAlchemy Engine")
    return str(url.render_as_string(hide_password=False))
