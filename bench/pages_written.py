"""What one durable POST /orders writes to the database's log: a disk cost that the machine's noise cannot move.

    python pages_written.py --project BAKE/order-service --package order_service [--database-url URL] \
        [--warm 3000] [--requests 35]

Runs in the bake's ``.venv``, like ``call_count.py``. After ``--warm`` orders (the tables' size decides
which pages a write lands on), it sends ``--requests`` more through Flask's test client and reads the log:
- SQLite: the WAL frames they appended, by b-tree (table or index, from the ``dbstat`` table). A commit
  writes each page it changed once, so this counts the b-trees each request touches, and their splits.
  The WAL is emptied first and must not reach its auto-checkpoint (1,000 frames) during the requests.
- PostgreSQL: the WAL bytes they wrote, right after a ``CHECKPOINT``: the first change to a page after a
  checkpoint writes the whole page, so keys that land on many pages cost many full pages.
Calls and pages are proxies: time them with ``request_cost.py`` once the machine is quiet.
"""

from __future__ import annotations

import collections
import importlib
import sqlite3
import struct
from pathlib import Path

import sqlalchemy as sa
from call_count import BODY
from op_cost import bake_arguments, enter_bake

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24


def wal_pages(wal: Path, page_size: int) -> list[int]:
    """The page number of each frame in a SQLite WAL file, in order."""
    data = wal.read_bytes()
    pages, offset = [], WAL_HEADER_BYTES
    while offset + FRAME_HEADER_BYTES + page_size <= len(data):
        pages.append(struct.unpack(">I", data[offset:offset + 4])[0])
        offset += FRAME_HEADER_BYTES + page_size
    return pages


def sqlite_figures(path: str, send: int, post: object) -> None:
    spy = sqlite3.connect(path)
    page_size = spy.execute("PRAGMA page_size").fetchone()[0]
    spy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(path + "-wal")
    before = len(wal_pages(wal, page_size))
    for _ in range(send):
        post()  # type: ignore[operator]
    pages = wal_pages(wal, page_size)[before:]
    if len(pages) + before >= 1000:
        raise SystemExit("the WAL reached its auto-checkpoint: send fewer --requests")
    names = dict((pageno, name) for name, pageno in spy.execute("SELECT name, pageno FROM dbstat"))
    per_tree = collections.Counter(names.get(page, "the file's header" if page == 1 else "free pages") for page in pages)
    print(f"WAL frames per request: {len(pages) / send:.1f}")
    for name, frames in per_tree.most_common():
        print(f"  {frames / send:5.1f}  {name}")


def postgresql_figures(url: str, send: int, post: object) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        start = conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
        for _ in range(send):
            post()  # type: ignore[operator]
        written = conn.exec_driver_sql("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (start,)).scalar()
    engine.dispose()
    print(f"WAL bytes per request after a CHECKPOINT: {float(written) / send:,.0f} (the whole server's WAL:"
          " run it alone)")


def main() -> None:
    parser = bake_arguments()
    parser.add_argument("--warm", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=35)
    args = parser.parse_args()
    url = enter_bake(args.project, args.package, args.database_url)
    durable = importlib.import_module(f"{args.package}.durable")
    client = importlib.import_module(f"{args.package}.app").create_app().test_client()

    def post() -> None:
        assert client.post("/orders", json=BODY).status_code == 201

    for _ in range(args.warm):
        post()
    print(f"runtime {durable.__version__}, after {args.warm} orders")
    if url.startswith("sqlite"):
        sqlite_figures(sa.make_url(url).database or "", args.requests, post)
    else:
        postgresql_figures(url, args.requests, post)


if __name__ == "__main__":
    main()
