"""A small bounded load generator: N threads, keep-alive http.client, fixed count and duration, loopback only.

    python load.py --port 8000 --path /orders --connections 4 --count 5000 --seconds 5 --body '{...}'
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import uuid

from common import LOOPBACK, emit, latency_summary, require_loopback, run_together


def run_load(host: str, port: int, path: str, body: bytes, connections: int, count: int,
             seconds: float, keyed: bool = False) -> dict[str, float]:
    """Send POSTs until ``count`` are done or ``seconds`` pass; never more, never elsewhere.

    ``keyed``: every request carries a new ``dbos-idempotency-key`` (a client that makes retries safe).
    """
    require_loopback(host)
    run_tag = uuid.uuid4().hex[:12]
    errors = [0] * connections
    remaining = [count]
    lock = threading.Lock()
    common_headers = {"Content-Type": "application/json", "Connection": "keep-alive"}

    def client(n: int, gate: threading.Barrier, stop: list[float], latencies: list[float]) -> None:
        headers = dict(common_headers)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        gate.wait()
        while time.perf_counter() < stop[0]:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
                sent = remaining[0]
            if keyed:
                headers["dbos-idempotency-key"] = f"{run_tag}-{sent}"
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    errors[n] += 1
                if response.will_close:  # sync workers close after each response: reconnect next time
                    conn.close()
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                conn.close()
                continue
            latencies.append(time.perf_counter() - t0)
        conn.close()

    elapsed, flat = run_together(connections, client, seconds, join_slack=35)
    return {"rps": len(flat) / elapsed, "requests": len(flat), "errors": sum(errors), **latency_summary(flat)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/orders")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--keyed", action="store_true", help="a new dbos-idempotency-key on every request")
    parser.add_argument("--body", default=json.dumps({"user_id": "ada", "items": [
        {"sku": "book", "quantity": 2, "price_cents": 1250}]}))
    args = parser.parse_args()
    emit(run_load(LOOPBACK, args.port, args.path, args.body.encode(), args.connections, args.count, args.seconds,
                  args.keyed))


if __name__ == "__main__":
    main()
