"""Every error is JSON on every path; bad bodies are 4xx; logs and request IDs cannot be forged."""

from __future__ import annotations

import logging
import re
import sys

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.durable import DBOS
from {{ cookiecutter.package_name }}.log import LOG_FORMAT, OneLineFormatter
from {{ cookiecutter.package_name }}.settings import DEFAULT_MAX_CONTENT_LENGTH, Settings

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def add_test_routes(app: Flask) -> None:
    @app.post("/echo")
    def echo() -> dict[str, object]:
        return {"body": request.get_json()}

    @app.get("/boom")
    def boom() -> dict[str, object]:
        raise RuntimeError("secret detail: host db-7.internal")


@pytest.fixture
def echo_client(app: Flask) -> FlaskClient:
    add_test_routes(app)
    return app.test_client()


def assert_json_error(response: object, status: int) -> None:
    assert response.status_code == status, response.data  # type: ignore[attr-defined]
    assert response.mimetype == "application/json", response.data  # type: ignore[attr-defined]
    assert response.get_json()["status"] == status  # type: ignore[attr-defined]


def test_unknown_paths_get_json_404_not_html(client: FlaskClient) -> None:
    for path in ["/no-such-page", "/static/app.css", "/favicon.ico", "/index.html", "/%00"]:
        assert_json_error(client.get(path, headers={"Accept": "text/html"}), 404)


def test_wrong_method_gets_json_405(client: FlaskClient) -> None:
    for method in ["DELETE", "PUT", "PATCH", "POST"]:
        assert_json_error(client.open("/healthz", method=method), 405)


def test_body_over_max_content_length_gets_json_413(echo_client: FlaskClient) -> None:
    assert echo_client.application.config["MAX_CONTENT_LENGTH"] == DEFAULT_MAX_CONTENT_LENGTH
    big = b'{"x": "' + b"a" * DEFAULT_MAX_CONTENT_LENGTH + b'"}'
    assert_json_error(echo_client.post("/echo", data=big, content_type="application/json"), 413)
    assert echo_client.post("/echo", json={"x": "small"}).get_json() == {"body": {"x": "small"}}


def test_max_content_length_comes_from_settings(database_url: str) -> None:
    assert Settings.from_env({"MAX_CONTENT_LENGTH": "10"}).max_content_length == 10
    app = create_app(Settings(database_url=database_url, log_level="WARNING", max_content_length=10))
    try:
        add_test_routes(app)
        assert_json_error(app.test_client().post("/echo", json={"x": "eleven bytes or more"}), 413)
    finally:
        DBOS.destroy()


def test_bad_json_is_a_json_400(echo_client: FlaskClient) -> None:
    for body in [b"{not json", b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe", b'"\\ud800"x', b"1" * 5000]:
        assert_json_error(echo_client.post("/echo", data=body, content_type="application/json"), 400)


def test_unexpected_error_is_a_generic_json_500(
    echo_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = echo_client.get("/boom")
    assert_json_error(response, 500)
    assert "db-7" not in response.get_data(as_text=True)
    assert "secret detail" in caplog.text  # the details go to the log


def test_plain_request_id_is_kept(client: FlaskClient) -> None:
    for request_id in ["r-42", "a" * 128, "host:1.2_3-x"]:
        assert (
            client.get("/healthz", headers={"X-Request-ID": request_id}).headers["dbos-request-id"]
            == request_id
        )


def test_request_id_that_is_not_plain_is_replaced_and_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    for request_id in ["a" * 129, "has space", 'quo"te', "semi;colon", "é", "<script>", "\t", "x" * 5000]:
        with caplog.at_level(logging.WARNING):
            echoed = client.get("/healthz", headers={"dbos-request-id": request_id}).headers[
                "dbos-request-id"
            ]
        assert echoed != request_id and UUID.fullmatch(echoed), request_id
        assert [r for r in caplog.records if "request ID" in r.getMessage() and echoed in r.getMessage()], (
            request_id
        )


def format_record(message: str, *args: object, exc: BaseException | None = None) -> str:
    formatter = OneLineFormatter(LOG_FORMAT)
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("orders", logging.INFO, __file__, 1, message, args, exc_info)
    return formatter.format(record)


def raised(message: str) -> BaseException:
    try:
        raise ValueError(message)
    except ValueError:
        return sys.exc_info()[1]  # type: ignore[return-value]


FORGED = "ada\n2026-01-01 00:00:00,000 INFO [1] orders: refund approved\r\u2028x\x1b[31m"


def test_values_from_requests_cannot_forge_log_lines() -> None:
    text = format_record("notify %s: %s", FORGED, "Your order 1 is confirmed")
    assert "\n" not in text and "\r" not in text and "\u2028" not in text and "\x1b" not in text
    assert "ada\\n2026-01-01" in text  # escaped, still readable
    with_traceback = format_record("failed for %s", FORGED, exc=raised(FORGED))
    first, *rest = with_traceback.splitlines()
    assert RECORD_START.match(first) and rest
    assert all(line.startswith("    | ") for line in rest), rest  # a traceback never starts a line of its own


def test_json_provider_reads_ordinary_json(app: Flask) -> None:
    assert app.json.loads('{"a": [1, 2.5, null, "x"]}') == {"a": [1, 2.5, None, "x"]}
    with pytest.raises(ValueError, match="nested too deeply"):
        app.json.loads("[" * 100_000)
