"""The admin server: a token beyond loopback, a Host allow-list, live executors kept, JSON for every answer."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_config, reopen_as_orphan
from durable import DBOS, SetWorkflowID, current, error, lifecycle
from durable.admin import build_admin_app
from helpers import free_port

TOKEN = "s3cret-admin-token-0123456789abcdef"


@DBOS.step()
def triple(x: int) -> int:
    return x * 3


@DBOS.workflow()
def tripled(x: int) -> int:
    return triple(x)


@DBOS.workflow()
def fails_with_data_error() -> None:
    # What a transaction inserting NUL into PostgreSQL raises; stored as the workflow's error.
    raise sa.exc.DataError("INSERT INTO t VALUES (%(x)s)", {"x": "a\x00b"}, ValueError("NUL (0x00) in text"))


def fetch(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
          method: str | None = None) -> tuple[int, str, object]:
    """Status, Content-Type and the decoded body (JSON, or the text of the health probe)."""
    request = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, content_type, raw = response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        status, content_type, raw = exc.code, exc.headers["Content-Type"], exc.read()
    return status, content_type, json.loads(raw) if "json" in content_type else raw.decode()


def serve_admin(database_url: str, **config: object) -> Iterator[str]:
    port = free_port()
    DBOS.destroy()
    DBOS(config=make_config(database_url, run_admin_server=True, admin_port=port, **config))
    DBOS.launch()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        DBOS.destroy()


@pytest.fixture
def admin(database_url: str) -> Iterator[str]:
    """The runtime's own admin server, with a token, on a free port."""
    yield from serve_admin(database_url, admin_token=TOKEN)


@pytest.fixture
def loopback_admin(database_url: str) -> Iterator[str]:
    """The admin server as configured by default: loopback, no token."""
    yield from serve_admin(database_url)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_beyond_loopback_the_admin_server_refuses_to_start_without_a_token(database_url: str) -> None:
    DBOS.destroy()
    for host in ("0.0.0.0", "10.1.2.3", "::"):
        with pytest.raises(error.DBOSConfigError, match="reaches beyond this machine"):
            DBOS(config=make_config(database_url, run_admin_server=True, admin_host=host))
    with pytest.raises(error.DBOSConfigError, match="16-512 visible ASCII") as refused:
        DBOS(config=make_config(database_url, run_admin_server=True, admin_host="0.0.0.0", admin_token="short"))
    assert "short" not in str(refused.value)  # a secret is never echoed
    DBOS(config=make_config(database_url, run_admin_server=True, admin_host="127.0.0.1"))  # loopback: no token needed
    DBOS.destroy()


def test_with_a_token_every_endpoint_but_the_health_probe_requires_it(admin: str) -> None:
    with SetWorkflowID("adm-1"):
        tripled(2)
    assert fetch(admin + "/dbos-healthz")[::2] == (200, "healthy")
    calls = [("/workflows", b"{}"), ("/workflows/adm-1", None), ("/workflows/adm-1/steps", None),
             ("/dbos-workflow-recovery", b'["gone:1:x"]'), ("/no-such-endpoint", None)]
    for path, body in calls:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token-wrong"}, {"Authorization": TOKEN}):
            status, content_type, answer = fetch(admin + path, body, headers)
            assert (status, content_type) == (401, "application/json"), (path, headers, answer)
    assert fetch(admin + "/workflows/adm-1", headers=AUTH)[2]["output"] == 6  # type: ignore[index]
    assert fetch(admin + "/dbos-workflow-recovery", b'["gone:1:x"]', AUTH)[::2] == (200, [])


def raw_get(base: str, path: str, host: str, auth: bool = True) -> int:
    """A GET with a Host header of our choosing (as a rebinding attacker's page sends its own name)."""
    _, _, port = base.rpartition(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"] + ([f"Authorization: Bearer {TOKEN}"]
                                                                             if auth else [])
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_host_allow_list_defeats_dns_rebinding(admin: str) -> None:
    port = admin.rpartition(":")[2]
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io", "localhost.attacker.example"):
        assert raw_get(admin, "/workflows/x", host) == 403, host
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert raw_get(admin, "/workflows/x", host) == 404, host  # allowed through; no such workflow
    assert raw_get(admin, "/dbos-healthz", "attacker.example", auth=False) == 200  # a probe learns nothing


def test_allowed_hosts_are_configurable(database_url: str) -> None:
    port = free_port()
    DBOS.destroy()
    DBOS(config=make_config(database_url, run_admin_server=True, admin_port=port, admin_token=TOKEN,
                            admin_allowed_hosts=["ops.internal"]))
    try:
        DBOS.launch()
        assert raw_get(f"http://127.0.0.1:{port}", "/workflows/x", f"ops.internal:{port}") == 404
        assert raw_get(f"http://127.0.0.1:{port}", "/workflows/x", "other.internal") == 403
    finally:
        DBOS.destroy()


def test_recovery_refuses_a_live_executor_unless_forced(loopback_admin: str, database_url: str) -> None:
    with SetWorkflowID("owned-by-live"):
        tripled(1)
    rt = current.current_runtime()
    rt.checkpoint_store.register_executor("live-host:1:alive", "live-host", 1, "")  # heartbeat: now
    reopen_as_orphan(database_url, "owned-by-live", drop_steps_from=0, owner="live-host:1:alive")
    status, _, answer = fetch(loopback_admin + "/dbos-workflow-recovery", b'["live-host:1:alive"]', AUTH)
    assert status == 409 and answer["alive"] == ["live-host:1:alive"], answer  # type: ignore[index]
    assert DBOS.get_workflow_status("owned-by-live").executor_id == "live-host:1:alive"  # type: ignore[union-attr]
    status, _, adopted = fetch(loopback_admin + "/dbos-workflow-recovery?force=true", b'["live-host:1:alive"]', AUTH)
    assert (status, adopted) == (200, ["owned-by-live"])
    assert DBOS.retrieve_workflow("owned-by-live").get_result(timeout_seconds=20) == 3
    # A dead executor (stale heartbeat) needs no force.
    with SetWorkflowID("owned-by-dead"):
        tripled(2)
    rt.checkpoint_store.register_executor("dead-host:1:gone", "dead-host", 1, "")
    rt.checkpoint_store.expire_executor("dead-host:1:gone")
    reopen_as_orphan(database_url, "owned-by-dead", drop_steps_from=0, owner="dead-host:1:gone")
    status, _, adopted = fetch(loopback_admin + "/dbos-workflow-recovery", b'["dead-host:1:gone"]', AUTH)
    assert status == 200 and adopted in (["owned-by-dead"], [])  # [] if the sweep adopted it first


BAD_INPUT = [
    ("/workflows", b'{"limit": "abc"}'),
    ("/workflows", b"{not json"),
    ("/workflows", b"[1, 2]"),
    ("/workflows", b'"status"'),
    ("/workflows", b'{"limit": 100000000000000000000}'),
    ("/workflows", b'{"limit": -1}'),
    ("/workflows", b'{"sort_desc": "yes"}'),
    ("/workflows", b'{"status": "\\u0000"}'),
    ("/workflows", b'{"name": ["ok", 7]}'),
    ("/workflows", b'{"start_time": "yesterday"}'),
    ("/workflows", b'{"workflow_ids": "not-a-list"}'),
    ("/workflows", b"[" * 100_000),
    ("/dbos-workflow-recovery", b'{"not": "a list"}'),
    ("/dbos-workflow-recovery", b"{not json"),
    ("/dbos-workflow-recovery", b'["\\u0000"]'),
]


def test_bad_input_gets_400_json(loopback_admin: str) -> None:
    for path, body in BAD_INPUT:
        status, content_type, answer = fetch(loopback_admin + path, body, AUTH)
        assert (status, content_type) == (400, "application/json"), (path, body[:40], answer)
    for path in ("/workflows/a%00b", "/workflows/a%00b/steps"):
        assert fetch(loopback_admin + path, headers=AUTH)[:2] == (400, "application/json")
    assert fetch(loopback_admin + "/workflows", headers=AUTH, method="GET")[:2] == (405, "application/json")


def test_a_stored_data_error_does_not_break_the_listing(loopback_admin: str) -> None:
    with SetWorkflowID("data-error"), pytest.raises(sa.exc.DataError):
        fails_with_data_error()
    status, content_type, listed = fetch(loopback_admin + "/workflows", b"{}", AUTH)
    assert (status, content_type) == (200, "application/json"), listed
    found = next(w for w in listed if w["workflow_id"] == "data-error")  # type: ignore[union-attr]
    assert found["status"] == "ERROR" and "DataError" in found["error"]
    assert fetch(loopback_admin + "/workflows/data-error", headers=AUTH)[0] == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(exclude_categories=[])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner, max_size=3),
    max_leaves=8,
)
filters = st.dictionaries(
    st.sampled_from(["workflow_ids", "status", "name", "app_version", "executor_id", "workflow_id_prefix",
                     "limit", "offset", "sort_desc", "start_time", "end_time", "queue_name"]),
    json_values | st.sampled_from(["2026-01-01T00:00:00Z", "PENDING", "SUCCESS"]) | st.integers(0, 50),
    max_size=4,
)
bodies = st.one_of(filters.map(lambda f: json.dumps(f).encode()), json_values.map(lambda v: json.dumps(v).encode()),
                   st.binary(max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/workflows", "/dbos-workflow-recovery", "/workflows/{}", "/workflows/{}/steps"]),
       segment=st.text(max_size=40), body=bodies, host=st.sampled_from(["127.0.0.1", "localhost:1", "evil.example"]),
       auth=st.sampled_from([TOKEN, "", "wrong"]))
def test_random_admin_input_never_gives_a_5xx_or_html(
    dbos: type[DBOS], path: str, segment: str, body: bytes, host: str, auth: str
) -> None:
    with SetWorkflowID("listed"):
        tripled(1)
    app = build_admin_app(lifecycle.admin_actions(current.current_runtime()), token=TOKEN)
    url = path.format(urllib.request.quote(segment, safe="")) if "{}" in path else path
    method = "POST" if "{}" not in path else "GET"
    response = app.test_client().open(url, method=method, data=body, headers={
        "Host": host, "Authorization": f"Bearer {auth}", "Content-Type": "application/json"})
    assert response.status_code < 500, response.data[:300]
    assert response.mimetype == "application/json", response.data[:300]
