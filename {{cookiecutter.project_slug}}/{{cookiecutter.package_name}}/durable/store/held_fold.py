"""Several step checkpoints in one statement, and on PostgreSQL with the run's next write too: one round trip.

A write that carries held checkpoints (``held_steps.py``) costs BEGIN, one INSERT per checkpoint, the
write, COMMIT: N + 3 round trips; a workflow's outcome after three plain steps, six. Here:
- ``insert_steps``: the checkpoints in one INSERT, each behind the same fence as the single-step INSERT,
  returning the step IDs it inserted, so the caller still knows which were refused (a transaction's
  own checkpoint and those it carries);
- ``fold_held`` (PostgreSQL): a data-modifying ``WITH`` runs that INSERT and the write in one statement,
  one snapshot and one commit. The write applies only if every checkpoint was inserted, so the
  statement commits either all of it, or only checkpoints that passed the fence (true records of steps
  that ran) and no write; ``Database.execute_folding_held`` then takes the general path, which settles
  the refused ones and explains a refused write as it always did. SQLite has no INSERT inside WITH.
"""

from __future__ import annotations

# One checkpoint, as the single-step INSERT's parameters (``checkpoint_store._fenced_params``): the columns
# of operation_outputs, then the fence (workflow, generation, the deadline's "now"). Typed, because VALUES
# gives PostgreSQL no column to infer a parameter's type from. VALUES names its columns column1..column13.
_ROW = ("(?, CAST(? AS INTEGER), ?, ?J, ?J, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS INTEGER), ?J, "
        "?, CAST(? AS INTEGER), CAST(? AS BIGINT))")

_INSERT_STEPS = """INSERT INTO {{operation_outputs}} (workflow_uuid, function_id, function_name, output, error,
    child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, attempts, inputs)
SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10
FROM (VALUES {rows}) AS v
WHERE {first}EXISTS (SELECT 1 FROM {{workflow_status}} ws WHERE ws.workflow_uuid = v.column11
    AND ws.owner_generation = v.column12 AND ws.status = 'PENDING'
    AND (ws.workflow_deadline_epoch_ms IS NULL OR ws.workflow_deadline_epoch_ms > v.column13))
ON CONFLICT (workflow_uuid, function_id) DO NOTHING"""

# The same fence against the workflow row that the statement's own WITH inserts: a data-modifying WITH's
# rows are invisible to the rest of its statement, except through what it returns. It comes first, and
# PostgreSQL stops at the first true arm of an OR: when the row is this statement's own, the committed
# rows are not read. At SERIALIZABLE (``@DBOS.transaction``'s default) that read locks the primary key's
# page, where the rows of other runs starting now go too (time-ordered IDs), and their first transactions
# then failed one another's serialization: a third of them retried under 16 concurrent requests.
_FENCE_ON_NEW_ROW = """EXISTS (SELECT 1 FROM new_row nr WHERE nr.workflow_uuid = v.column11
    AND nr.owner_generation = v.column12 AND nr.status = 'PENDING'
    AND (nr.workflow_deadline_epoch_ms IS NULL OR nr.workflow_deadline_epoch_ms > v.column13))
    OR """


def _insert(count: int, first: str = "") -> str:
    return _INSERT_STEPS.format(rows=", ".join([_ROW] * count), first=first)


def insert_steps(count: int) -> str:
    """The INSERT of ``count`` fenced checkpoints, returning the function_id of each one inserted."""
    return f"{_insert(count)}\nRETURNING function_id"


def carry_row_and_insert_steps(insert_row: str, count: int) -> str:
    """(PostgreSQL) ``insert_row``, a workflow row's ``INSERT ... ON CONFLICT DO NOTHING``, then the INSERT
    of ``count`` fenced checkpoints of that workflow, in one statement: the row a run's first transaction
    carries (``row_flush.py``) costs no round trip of its own. A checkpoint passes the fence against the
    row as committed (one a reader here wrote first) or as this statement inserts it."""
    returned = "RETURNING workflow_uuid, owner_generation, status, workflow_deadline_epoch_ms"
    return f"WITH new_row AS (\n{insert_row}\n{returned})\n{_insert(count, _FENCE_ON_NEW_ROW)}\nRETURNING function_id"


def fold_held(statement: str, count: int) -> str:
    """``statement`` (an UPDATE ending in its WHERE clause, in the store's ``?`` form) preceded by the
    INSERT of ``count`` held checkpoints, and applied only if all of them were inserted (PostgreSQL)."""
    return f"WITH held AS (\n{_insert(count)}\nRETURNING 1)\n{statement}\nAND (SELECT count(*) FROM held) = ?"
