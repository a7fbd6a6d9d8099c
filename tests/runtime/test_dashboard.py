"""The dashboard through Flask's test client: auth, pages, filters, keyset paging, CSRF-checked actions."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import make_config, wait_for_status
from durable import DBOS, Queue, SetWorkflowID
from durable.dashboard import basic_auth, init_dashboard
from durable.dashboard.auth import CSRF_COOKIE

AUTH = {"Authorization": "Basic " + base64.b64encode(b"ops:s3cret-pass").decode()}
attempts: dict[str, int] = {}
payments_up = threading.Event()  # read by the body, not a step: a failure that resume can get past
release = threading.Event()
board_queue = Queue("board-queue", concurrency=3, worker_concurrency=2, limiter={"limit": 10, "period": 60})


@DBOS.step()
def flaky_charge(order: str) -> str:
    attempts[order] = attempts.get(order, 0) + 1
    if attempts[order] == 1:
        raise RuntimeError(f"card declined for {order}")
    return f"charged {order}"


@DBOS.step()
def reserve(order: str) -> str:
    return f"reserved {order}"


@DBOS.workflow()
def board_checkout(order: str) -> str:
    reserve(order)
    if not payments_up.is_set():
        raise RuntimeError(f"payments are down; {order} not charged")
    return flaky_charge(order)


@DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.01)
def wobbly_lookup(order: str) -> str:
    attempts[f"lookup-{order}"] = attempts.get(f"lookup-{order}", 0) + 1
    if attempts[f"lookup-{order}"] < 3:
        raise ConnectionError("lookup timed out")
    return f"found {order}"


@DBOS.workflow()
def board_lookup(order: str) -> str:
    return wobbly_lookup(order)


@DBOS.workflow()
def board_parent(order: str) -> str:
    return board_checkout(order)


@DBOS.workflow()
def board_waits() -> str:
    release.wait(10)
    return "done"


def build_app(database_url: str) -> Flask:
    app = Flask(__name__)
    DBOS(flask=app, config=make_config(database_url))
    init_dashboard(app, auth=basic_auth("ops", "s3cret-pass"), csrf_secret="test-secret-0123456789")
    return app


@pytest.fixture
def client(database_url: str) -> Iterator[FlaskClient]:
    DBOS.destroy()
    app = build_app(database_url)
    DBOS.launch()
    try:
        yield app.test_client()
    finally:
        release.set()
        DBOS.destroy()
        release.clear()


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_every_page_and_the_css_require_the_auth_hook(client: FlaskClient) -> None:
    for path in ("/durable/", "/durable/queues", "/durable/workflows/x", "/durable/static/dashboard.css"):
        denied = client.get(path)
        assert denied.status_code == 401, path
        assert denied.headers["WWW-Authenticate"].startswith("Basic ")
        wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}
        assert client.get(path, headers=wrong).status_code == 401
    css = client.get("/durable/static/dashboard.css", headers=AUTH)
    assert css.status_code == 200 and b"@media" in css.data


def test_the_dashboard_is_never_mounted_without_an_auth_hook(database_url: str) -> None:
    app = Flask(__name__)
    with pytest.raises(ValueError, match="needs an auth hook"):
        init_dashboard(app, auth=None, csrf_secret="x" * 20)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        init_dashboard(app, auth=basic_auth("a", "b"))
    with pytest.raises(ValueError, match="non-empty password"):
        basic_auth("ops", "")


def test_a_failed_workflow_is_found_opened_resumed_and_succeeds(client: FlaskClient) -> None:
    attempts["o1"] = 1  # the charge itself succeeds
    payments_up.clear()
    with SetWorkflowID("order-1"), pytest.raises(RuntimeError, match="payments are down"):
        board_checkout("o1")
    listing = client.get("/durable/?status=ERROR", headers=AUTH)
    assert listing.status_code == 200
    assert "order-1" in listing.text and "board_checkout" in listing.text
    page = client.get("/durable/workflows/order-1", headers=AUTH)
    assert "payments are down; o1 not charged" in page.text  # the workflow's error
    assert "reserved o1" in page.text  # the first step's output
    assert 'id="resume"' in page.text and 'id="cancel"' not in page.text
    token = csrf_token(page.text)
    assert client.post("/durable/workflows/order-1/resume", headers=AUTH).status_code == 403  # no token
    assert client.post("/durable/workflows/order-1/resume", headers=AUTH,
                       data={"csrf_token": "forged"}).status_code == 403
    other_site = {**AUTH, "Origin": "https://evil.example"}
    assert client.post("/durable/workflows/order-1/resume", headers=other_site,
                       data={"csrf_token": token}).status_code == 403
    assert DBOS.get_workflow_status("order-1").status == "ERROR"  # type: ignore[union-attr]
    payments_up.set()
    done = client.post("/durable/workflows/order-1/resume", headers=AUTH, data={"csrf_token": token})
    assert done.status_code == 303 and "/durable/workflows/order-1" in done.headers["Location"]
    wait_for_status("order-1", "SUCCESS")
    assert DBOS.retrieve_workflow("order-1").get_result() == "charged o1"
    after = client.get("/durable/workflows/order-1", headers=AUTH).text
    assert 'class="badge SUCCESS"' in after and "charged o1" in after


def test_the_token_is_bound_to_the_browsers_cookie(client: FlaskClient, database_url: str) -> None:
    payments_up.clear()
    with SetWorkflowID("order-2"), pytest.raises(RuntimeError):
        board_checkout("o2")
    token = csrf_token(client.get("/durable/workflows/order-2", headers=AUTH).text)
    stranger = client.application.test_client()  # another browser: its own cookie
    stranger.get("/durable/", headers=AUTH)
    assert stranger.get_cookie(CSRF_COOKIE, path="/durable/") is not None
    refused = stranger.post("/durable/workflows/order-2/resume", headers=AUTH, data={"csrf_token": token})
    assert refused.status_code == 403


def test_cancel_and_fork_from_a_step(client: FlaskClient) -> None:
    release.clear()
    handle = DBOS.start_workflow(board_waits)
    page = client.get(f"/durable/workflows/{handle.workflow_id}", headers=AUTH).text
    assert 'id="cancel"' in page
    client.post(f"/durable/workflows/{handle.workflow_id}/cancel", headers=AUTH, data={"csrf_token": csrf_token(page)})
    assert DBOS.get_workflow_status(handle.workflow_id).status == "CANCELLED"  # type: ignore[union-attr]
    release.set()

    attempts["o3"] = 1  # the charge succeeds from now on
    payments_up.set()
    with SetWorkflowID("order-3"):
        assert board_checkout("o3") == "charged o3"
    page = client.get("/durable/workflows/order-3", headers=AUTH).text
    forked = client.post("/durable/workflows/order-3/fork", headers=AUTH,
                         data={"csrf_token": csrf_token(page), "start_step": "2"})
    assert forked.status_code == 303
    new_id = forked.headers["Location"].split("/workflows/")[1].split("?")[0]
    assert new_id != "order-3"
    assert DBOS.retrieve_workflow(new_id).get_result() == "charged o3"
    assert attempts["o3"] == 3  # step 2 (the charge) ran again; step 1 was copied
    bad = client.post("/durable/workflows/order-3/fork", headers=AUTH,
                      data={"csrf_token": csrf_token(page), "start_step": "zero"})
    assert bad.status_code == 400


def test_children_and_parent_link_to_each_other(client: FlaskClient) -> None:
    attempts["o4"] = 1
    payments_up.set()
    with SetWorkflowID("parent-4"):
        assert board_parent("o4") == "charged o4"
    child_id = DBOS.list_workflow_steps("parent-4")[0]["child_workflow_id"]
    assert child_id
    parent_page = client.get("/durable/workflows/parent-4", headers=AUTH).text
    assert f"/durable/workflows/{child_id}" in parent_page
    child_page = client.get(f"/durable/workflows/{child_id}", headers=AUTH).text
    assert "/durable/workflows/parent-4" in child_page


def test_filters_and_keyset_pages(client: FlaskClient) -> None:
    payments_up.set()
    for i in range(7):
        attempts[f"p{i}"] = 1
        with SetWorkflowID(f"page-{i}"):
            board_checkout(f"p{i}")
    from durable import overview

    first = overview.workflow_page(name="board_checkout", limit=3)
    assert [w.workflow_id for w in first.workflows] == ["page-6", "page-5", "page-4"]
    second = overview.workflow_page(name="board_checkout", limit=3, cursor=first.next_cursor)
    third = overview.workflow_page(name="board_checkout", limit=3, cursor=second.next_cursor)
    assert [w.workflow_id for w in second.workflows] == ["page-3", "page-2", "page-1"]
    assert [w.workflow_id for w in third.workflows] == ["page-0"] and third.next_cursor is None
    assert overview.workflow_page(name="nope").workflows == []
    assert overview.workflow_page(status="SUCCESS", name="board_checkout", limit=50).next_cursor is None
    with pytest.raises(ValueError, match="not a page cursor"):
        overview.workflow_page(cursor="garbage")
    with pytest.raises(ValueError, match="ISO 8601"):
        overview.workflow_page(start_time="yesterday")
    html = client.get("/durable/?name=board_checkout&status=SUCCESS", headers=AUTH).text
    assert html.count('class="badge SUCCESS"') == 7
    bad = client.get("/durable/?start=yesterday", headers=AUTH)
    assert bad.status_code == 200 and "not an ISO 8601 time" in bad.text
    assert client.get("/durable/workflows/missing", headers=AUTH).status_code == 404


def test_queues_page_shows_depth_and_limits(client: FlaskClient) -> None:
    release.clear()
    handles = [board_queue.enqueue(board_waits) for _ in range(4)]
    html = client.get("/durable/queues", headers=AUTH).text
    assert "board-queue" in html and "10 per 60 s" in html
    from durable import overview

    [queue] = [q for q in overview.queue_overview() if q.name == "board-queue"]
    assert queue.enqueued + queue.pending == 4 and queue.concurrency == 3 and queue.worker_concurrency == 2
    release.set()
    for handle in handles:
        assert handle.get_result() == "done"
    [queue] = [q for q in overview.queue_overview() if q.name == "board-queue"]
    assert queue.enqueued == queue.pending == 0


def test_the_timeline_shows_each_steps_attempts(client: FlaskClient) -> None:
    attempts.pop("lookup-o9", None)
    with SetWorkflowID("lookup-9"):
        assert board_lookup("o9") == "found o9"
    from durable import overview

    assert overview.step_attempts("lookup-9") == {1: 3}
    page = client.get("/durable/workflows/lookup-9", headers=AUTH).text
    assert '<td class="retried">3</td>' in page


@DBOS.step()
def echo_note(note: str, *, copies: int = 1) -> str:
    return note * copies


@DBOS.step()
def lock_kind(lock: object) -> str:
    return type(lock).__name__


@DBOS.workflow()
def board_notes(note: str) -> str:
    echo_note(note)
    lock_kind(threading.Lock())  # inputs no codec stores: the step runs, its cell says why
    return echo_note("y" * 5000, copies=1)


def test_the_timeline_shows_each_steps_inputs_escaped_and_cut(client: FlaskClient) -> None:
    hostile = "<script>alert('x')</script>"
    with SetWorkflowID("notes-1"):
        board_notes(hostile)
    page = client.get("/durable/workflows/notes-1", headers=AUTH).text
    assert "<th>Inputs</th>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(" in page  # data, never markup
    cells = re.findall(r'<td class="inputs"><pre>(.*?)</pre></td>', page, re.S)
    assert len(cells) == 3
    assert "&lt;script&gt;" in cells[0] and "kwargs" not in cells[0]  # positional only: the list alone
    assert cells[1].startswith("not recorded: ") and "lock is not serialisable" in cells[1]
    assert "&#34;args&#34;" in cells[2] and "more characters)" in cells[2]  # with kwargs: both; a long one is cut
    assert len(cells[2]) < 2_500
