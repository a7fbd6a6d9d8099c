"""DBOSConfig as DBOS 2.31.1 defines it: every key accepted, the meaningful ones honoured, the rest logged once."""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from conftest import make_config
from durable import DBOS, DBOSConfig, error
from durable.config import KNOWN_KEYS, NO_EFFECT_KEYS, resolve_config
from durable.current import current_runtime

# DBOSConfig's keys in DBOS 2.31.1 (dbos/_dbos_config.py), so a DBOS user's config builds unchanged.
DBOS_2_31_KEYS = {
    "name", "system_database_url", "application_database_url", "database_url", "sys_db_pool_size",
    "sys_db_polling_concurrency", "db_engine_kwargs", "log_level", "otlp_log_level", "console_log_level",
    "otlp_traces_endpoints", "otlp_logs_endpoints", "admin_port", "run_admin_server", "otlp_attributes",
    "application_version", "executor_id", "dbos_system_schema", "enable_otlp", "system_database_engine",
    "conductor_key", "conductor_url", "conductor_executor_metadata", "serializer", "enable_patching",
    "use_listen_notify", "run_migrations", "max_executor_threads", "notification_listener_polling_interval_sec",
    "notification_coalesce_sec", "scheduler_polling_interval_sec", "kafka_queue_polling_interval_sec",
    "otel_attribute_format",
}


@pytest.fixture(autouse=True)
def _destroyed() -> object:
    DBOS.destroy()
    yield
    DBOS.destroy()


def test_every_dbos_2_31_key_is_known() -> None:
    assert DBOS_2_31_KEYS <= KNOWN_KEYS


def test_unknown_key_is_refused_naming_the_nearest_known_key() -> None:
    config = DBOSConfig(name="my-app")
    config["max_executor_thread"] = 4  # type: ignore[typeddict-unknown-key]
    with pytest.raises(error.DBOSConfigError, match="'max_executor_thread'.*did you mean 'max_executor_threads'"):
        DBOS(config=config)


def test_unknown_key_far_from_any_lists_the_known_keys() -> None:
    config = DBOSConfig(name="my-app")
    config["zzzz"] = 1  # type: ignore[typeddict-unknown-key]
    with pytest.raises(error.DBOSConfigError, match="'zzzz'; known keys: .*application_database_url"):
        resolve_config(config)


@pytest.mark.parametrize("name", ["ab", "x" * 31, "My-App", "my app", "app.name", ""])
def test_invalid_application_names_are_refused_as_dbos_does(name: str) -> None:
    with pytest.raises(error.DBOSInitializationError, match="App names must be between 3 and 30 characters|non-empty"):
        DBOS(config=DBOSConfig(name=name))


@pytest.mark.parametrize("name", ["abc", "x" * 30, "my-app_2", "0rders"])
def test_valid_application_names_are_accepted(name: str) -> None:
    assert resolve_config(DBOSConfig(name=name)).name == name


def test_keys_with_no_effect_are_logged_once_at_launch(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    DBOS(config=make_config(database_url, conductor_key="secret", kafka_queue_polling_interval_sec=0.5,
                            otel_attribute_format="semconv", serializer=None))
    with caplog.at_level(logging.INFO, logger="durable"):
        DBOS.launch()
        DBOS.launch()
    lines = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert len(lines) == 1
    assert "conductor_key" in lines[0] and "kafka_queue_polling_interval_sec" in lines[0]
    assert "otel_attribute_format" in lines[0] and "secret" not in lines[0]
    assert {"conductor_key", "conductor_url", "kafka_queue_polling_interval_sec"} <= NO_EFFECT_KEYS


def test_no_line_when_every_key_given_has_an_effect(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    DBOS(config=make_config(database_url, max_executor_threads=4))
    with caplog.at_level(logging.INFO, logger="durable"):
        DBOS.launch()
    assert not [r for r in caplog.records if "no effect" in r.getMessage()]


@DBOS.workflow()
def _config_thread_name() -> str:
    return threading.current_thread().name


def test_max_executor_threads_bounds_the_workflow_pool(database_url: str) -> None:
    DBOS(config=make_config(database_url, max_executor_threads=2, sys_db_pool_size=3))
    DBOS.launch()
    rt = current_runtime()
    assert rt.pool._max_workers == 2
    assert rt.sys_engine.pool.size() == 3  # type: ignore[attr-defined]
    assert DBOS.start_workflow(_config_thread_name).get_result().startswith("durable-workflow")


@pytest.mark.parametrize("key", ["max_executor_threads", "sys_db_pool_size"])
@pytest.mark.parametrize("value", [0, -1, "4", True])
def test_bad_counts_are_refused(key: str, value: object) -> None:
    config = DBOSConfig(name="my-app")
    config[key] = value  # type: ignore[literal-required]
    with pytest.raises(error.DBOSConfigError, match=f"{key}=.*positive integer"):
        resolve_config(config)


def test_console_log_level_raises_the_runtime_logger_level() -> None:
    assert resolve_config(DBOSConfig(name="my-app", log_level="DEBUG", console_log_level="WARNING")).log_level == "WARNING"
    assert resolve_config(DBOSConfig(name="my-app", log_level="ERROR", console_log_level="INFO")).log_level == "ERROR"
    with pytest.raises(error.DBOSConfigError, match="console_log_level='LOUD'"):
        resolve_config(DBOSConfig(name="my-app", console_log_level="loud"))


@DBOS.workflow()
def _config_receiver() -> object:
    return DBOS.recv("t", timeout_seconds=10)


def test_without_listen_notify_waiters_poll_at_the_configured_interval(database_url: str) -> None:
    DBOS(config=make_config(database_url, use_listen_notify=False, notification_listener_polling_interval_sec=0.05))
    DBOS.launch()
    rt = current_runtime()
    assert rt.wakeups.poll_sec == 0.05
    handle = DBOS.start_workflow(_config_receiver)
    DBOS.send(handle.workflow_id, "hello", "t")
    assert handle.get_result(timeout_seconds=10) == "hello"
    assert rt.wakeups._listener is None  # no LISTEN connection was opened


def test_polling_interval_must_be_positive() -> None:
    with pytest.raises(error.DBOSConfigError, match="notification_listener_polling_interval_sec=0"):
        resolve_config(DBOSConfig(name="my-app", notification_listener_polling_interval_sec=0))


@DBOS.workflow()
def _twice(x: int) -> int:
    return x * 2


def test_system_database_engine_is_used_for_the_system_tables(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    connects: list[object] = []
    sa.event.listen(engine, "connect", lambda *_: connects.append(1))
    try:
        config = DBOSConfig(name="my-app", system_database_engine=engine)  # no URL: the engine's is used
        settings = resolve_config(config)
        assert sa.make_url(settings.sys_db_url).database == engine.url.database
        DBOS(config=config)
        DBOS.launch()
        assert DBOS.start_workflow(_twice, 21).get_result() == 42
        assert connects, "the runtime connected through the given engine"
        assert DBOS.get_workflow_status(DBOS.list_workflows()[0].workflow_id).status == "SUCCESS"  # type: ignore[union-attr]
    finally:
        DBOS.destroy()
        engine.dispose()


def test_system_database_engine_must_be_an_engine() -> None:
    with pytest.raises(error.DBOSConfigError, match="system_database_engine=.*SQLAlchemy Engine"):
        resolve_config(DBOSConfig(name="my-app", system_database_engine="postgresql://x"))
