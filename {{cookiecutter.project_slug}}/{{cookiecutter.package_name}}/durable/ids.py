"""New workflow and message IDs: UUIDs whose first 48 bits are the time in milliseconds (RFC 9562's version 7).

DBOS names a workflow started without ``SetWorkflowID`` by a random UUID (version 4). Every system table
is keyed by that ID, so a random one puts each new row at a random place in the primary-key b-trees:
a page that is rarely in the cache and that its commit writes out alone (on SQLite, a WAL frame of
its own; on PostgreSQL, often a full page image after a checkpoint). A time-ordered ID appends new rows
at the right edge, where the pages written by the last commits already are. It is still a UUID as text;
it shows when the workflow started, and its 74 random bits (against version 4's 122) still make it
infeasible to guess.
"""

from __future__ import annotations

import os
import time

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62
_RAND_A_MASK = (1 << 12) - 1  # 12 random bits after the version
_RAND_B_MASK = (1 << 62) - 1  # 62 random bits after the variant


def time_ordered_uuid() -> str:
    """A new UUID, version 7, as text: time-ordered to the millisecond, random within it."""
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = ((time.time_ns() // 1_000_000) << 80 | _VERSION_7 | ((random_bits >> 62) & _RAND_A_MASK) << 64
             | _VARIANT_RFC | (random_bits & _RAND_B_MASK))
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
