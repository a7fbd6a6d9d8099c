from __future__ import annotations

import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.durable.config import resolve_config
from {{ cookiecutter.package_name }}.durable.error import DBOSConfigError
from {{ cookiecutter.package_name }}.settings import (
    DEFAULT_ADMIN_PORT,
    Settings,
    SettingsError,
    dbos_app_name,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_empty_environment_gives_the_generated_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith(("sqlite:////", "postgresql+psycopg://"))
    assert settings.system_database_url is None
    assert settings.admin_port == DEFAULT_ADMIN_PORT
    assert settings.log_level == "INFO"


def test_relative_sqlite_path_resolves_against_the_project_folder() -> None:
    settings = Settings.from_env({"DATABASE_URL": "sqlite:///instance/x.db"})
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'instance' / 'x.db'}"


def test_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_bare_postgres_urls_mean_psycopg_3(scheme: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": f"{scheme}://u:p@db:5432/app"})
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/app"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db/app"),
        ("SYSTEM_DATABASE_URL", "redis://cache"),
        ("ADMIN_PORT", "x"),
        ("ADMIN_PORT", "70000"),
        ("LOG_LEVEL", "loud"),
        ("ENABLE_OTLP", "maybe"),
        ("TRUSTED_PROXIES", "-1"),
        ("MAX_CONTENT_LENGTH", "0"),
        ("MAX_CONTENT_LENGTH", "1MB"),
    ],
)
def test_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{re.escape(name)}={re.escape(repr(value))}"):
        Settings.from_env({name: value})


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("off", False), ("NO", False)])
def test_enable_otlp_reads_common_boolean_words(value: str, expected: bool) -> None:
    assert Settings.from_env({"ENABLE_OTLP": value}).enable_otlp is expected


def test_blank_values_keep_the_defaults() -> None:
    blank = {"ADMIN_PORT": "", "ENABLE_OTLP": " ", "SYSTEM_DATABASE_URL": "", "LOG_LEVEL": ""}
    assert Settings.from_env(blank) == Settings.from_env({})


def test_dbos_config_carries_every_setting() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app@db/app",
            "LOG_LEVEL": "debug",
            "ADMIN_PORT": "4000",
            "ENABLE_OTLP": "true",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces",
            "APP_VERSION": "1.2.3",
            "TRUSTED_PROXIES": "1",
        }
    )
    config = settings.as_dbos_config()
    assert "system_database_url" not in config
    assert config["application_database_url"] == "postgresql+psycopg://app@db/app"
    assert config["log_level"] == "DEBUG"
    assert config["admin_port"] == 4000
    assert config["enable_otlp"] is True
    assert config["otlp_traces_endpoints"] == ["http://collector:4318/v1/traces"]
    assert config["application_version"] == "1.2.3"
    assert config["trusted_proxies"] == 1


def test_dbos_config_names_the_system_database_only_when_set() -> None:
    settings = Settings.from_env({"SYSTEM_DATABASE_URL": "sqlite:////tmp/system.db"})
    assert settings.as_dbos_config()["system_database_url"] == "sqlite:////tmp/system.db"


def test_the_runtime_accepts_the_generated_config() -> None:
    resolved = resolve_config(Settings.from_env({}).as_dbos_config())
    assert resolved.app_db_url == Settings.from_env({}).database_url


def test_flask_prefixed_variables_become_app_config() -> None:
    settings = Settings.from_env(
        {
            "FLASK_PAYMENT_FAILURE_RATE": "0.5",
            "FLASK_SECRET_KEY": "s3cret",
            "FLASK_FEATURES": '["a", "b"]',
            "FLASK_": "ignored",
        }
    )
    config = settings.as_flask_config()
    assert config["PAYMENT_FAILURE_RATE"] == 0.5  # JSON values are parsed, as Flask's from_prefixed_env does
    assert config["SECRET_KEY"] == "s3cret" and config["FEATURES"] == ["a", "b"]
    assert "" not in config


def test_admin_server_is_off_unless_asked_for() -> None:
    assert Settings.from_env({}).as_dbos_config()["run_admin_server"] is False
    config = Settings.from_env({"RUN_ADMIN_SERVER": "true", "ADMIN_PORT": "3999"}).as_dbos_config()
    assert (config["run_admin_server"], config["admin_port"]) == (True, 3999)


def test_admin_server_beyond_loopback_needs_a_token() -> None:
    exposed = {"RUN_ADMIN_SERVER": "true", "ADMIN_HOST": "0.0.0.0"}
    with pytest.raises(DBOSConfigError, match="admin_host='0.0.0.0' reaches beyond this machine"):
        resolve_config(Settings.from_env(exposed).as_dbos_config())
    token = "t" * 32
    settings = Settings.from_env(
        {**exposed, "ADMIN_TOKEN": token, "ADMIN_ALLOWED_HOSTS": "ops.internal, 10.0.0.5"}
    )
    resolved = resolve_config(settings.as_dbos_config())
    assert (resolved.admin_host, resolved.admin_token) == ("0.0.0.0", token)
    assert resolved.admin_allowed_hosts == ("ops.internal", "10.0.0.5")
    assert token not in repr(settings) and token not in repr(resolved)


@pytest.mark.parametrize(
    ("package", "name"),
    [("orders", "orders"), ("ab", "ab-app"), ("x" * 40, "x" * 30), ("order_service", "order_service")],
)
def test_the_application_name_is_one_dbos_accepts(package: str, name: str) -> None:
    # DBOS refuses names outside 3-30 of a-z, 0-9, - and _; a long or short package name must still launch.
    assert dbos_app_name(package) == name
    config = Settings.from_env({}).as_dbos_config()
    config["name"] = dbos_app_name(package)
    assert resolve_config(config).name == name
