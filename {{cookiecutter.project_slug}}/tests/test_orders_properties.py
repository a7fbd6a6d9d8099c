"""Random bodies, paths, headers and idempotency keys against the example's routes never give a 5xx
or an HTML page.

The counts are modest (the suite runs in every bake, on SQLite and PostgreSQL); raise them locally
with ``--hypothesis-profile`` or ``HYPOTHESIS_MAX_EXAMPLES`` when changing validation.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "40"))
# The app fixture (a migrated database) is made once per test and shared by its examples, on purpose.
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TRICKY_TEXT = ["", " ", "\x00", "\ud800", "\n", "é", "😀", "x" * 65, "declined-bob", "ada", "\u2028", "<b>"]
TRICKY_INTS = [0, -1, 1, 10_000, 10_001, 2**31 - 1, 2**31, 2**63, 10**30, 100_000_000]
texts = st.one_of(
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=20),
    st.text(st.characters(exclude_categories=[]), max_size=20),
)  # surrogates included
numbers = st.one_of(
    st.sampled_from(TRICKY_INTS),
    st.integers(0, 20_000),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
)
scalars = st.one_of(st.none(), texts, numbers)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
printable = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1, max_size=64)
valid_orders = st.fixed_dictionaries(
    {
        "user_id": printable.filter(str.strip),
        "items": st.lists(
            st.fixed_dictionaries(
                {
                    "sku": printable.filter(str.strip),
                    "quantity": st.integers(1, 10_000),
                    "price_cents": st.integers(0, 2_000),
                }
            ),
            min_size=1,
            max_size=3,
        ),
    }
)
MUTATIONS = {
    "user_id": st.one_of(texts, any_json),
    "sku": st.one_of(texts, any_json),
    "quantity": numbers,
    "price_cents": numbers,
    "items": any_json,
}


@st.composite
def orders(draw: st.DrawFn) -> Any:
    """A valid order with up to two of its fields made hostile: many pass and reach the database."""
    body = draw(valid_orders)
    first_item = body["items"][0]
    for field in draw(st.sets(st.sampled_from(sorted(MUTATIONS)), max_size=2)):
        target = body if field in ("user_id", "items") else first_item
        target[field] = draw(MUTATIONS[field])
    return body


payments = st.fixed_dictionaries(
    {
        "amount": st.one_of(st.integers(1, 10**6), numbers),
        "user_id": st.one_of(printable.filter(str.strip), texts),
    }
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
# Idempotency keys: plain ones from a small pool (so that they repeat, with other bodies), and anything.
keys = st.one_of(
    st.sampled_from(["k1", "k2", "k" * 255, "k" * 256, "k" * 3000, "", " ", "é"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "dbos-idempotency-key": keys,
        "X-Request-ID": header_text,
        "dbos-request-id": header_text,
        "X-Forwarded-For": header_text,
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=latin-1", "multipart/form-data", ""]
        ),
        "Accept": st.sampled_from(["text/html", "*/*", "application/json"]),
    },
)


def body_bytes(body: Any) -> bytes:
    return json.dumps(body).encode()  # lone surrogates travel as \\udXXX escapes, as a client may send them


def assert_json_4xx_or_success(response: Any) -> None:
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.data[:500]
    assert response.mimetype == "application/json", response.data[:500]


@SETTINGS
@given(body=st.one_of(orders(), orders(), any_json).map(body_bytes) | st.binary(max_size=64), extra=headers)
def test_random_order_requests_never_5xx(client: FlaskClient, body: bytes, extra: dict[str, str]) -> None:
    response = client.post("/orders", data=body, headers={"Content-Type": "application/json", **extra})
    assert_json_4xx_or_success(response)


@SETTINGS
@given(body=st.one_of(payments, payments, any_json).map(body_bytes), extra=headers)
def test_random_payment_requests_never_5xx(client: FlaskClient, body: bytes, extra: dict[str, str]) -> None:
    response = client.post("/payments", data=body, headers={"Content-Type": "application/json", **extra})
    assert_json_4xx_or_success(response)


@SETTINGS
@given(
    route=st.sampled_from(["/orders/", "/payments/", "/orders/{}/workflow", "/"]),
    segment=st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=300)),
    extra=headers,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
)
def test_random_paths_and_methods_never_5xx(
    client: FlaskClient, route: str, segment: str, extra: dict[str, str], method: str
) -> None:
    path = route.format(segment) if "{}" in route else route + segment
    response = client.open(path, method=method, headers=extra)
    assert response.status_code < 500, response.data[:500]
    if method != "HEAD" and response.status_code >= 400:
        assert response.mimetype == "application/json", response.data[:500]
