"""Under gunicorn, errors raised before the app sees a request are JSON too (gunicorn.conf.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from gunicorn_server import call, raw_exchange, running_gunicorn


@pytest.fixture
def base(tmp_path: Path, alembic_config: Config, database_url: str) -> Iterator[str]:
    command.upgrade(alembic_config, "head")
    with running_gunicorn(database_url, tmp_path / "gunicorn.log") as (url, _master):
        yield url


GET = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
MALFORMED = {  # name: (raw request, the status gunicorn answers)
    "big-header": (GET + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),  # over limit_request_field_size
    "many-headers": (
        GET + b"".join(b"X-%d: y\r\n" % n for n in range(120)) + b"\r\n",
        431,
    ),  # limit_request_fields
    "long-line": (
        b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
        414,
    ),  # limit_request_line
    "garbage": (b"HELLO\r\n\r\n", 400),
    "bad-header": (GET + b"Bad Header\r\n\r\n", 400),
}


def test_errors_are_json_under_gunicorn(base: str) -> None:
    """One server for every case: starting gunicorn takes seconds, and this runs in every bake."""
    for name, (request_bytes, status) in MALFORMED.items():
        answered, content_type, body = raw_exchange(base, request_bytes)
        assert (answered, content_type) == (status, "application/json"), (name, body[:300])
        assert json.loads(body)["status"] == status, name
    for path, method in (("/no-such-page", "GET"), ("/static/x.css", "GET"), ("/healthz", "DELETE")):
        status, body = call(method, base + path)
        assert status == body["status"] and status in (404, 405), (path, body)
