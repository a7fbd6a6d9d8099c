"""The Makefile's promises: `make test` reaches DBOS's suite on both databases."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_test_runs_dbos_suite_on_both_databases() -> None:
    # A pattern rule for a .PHONY target is never searched: make then said "Nothing to be done" and the
    # suites silently did not run. `make -n` prints what `make test` would run, recursive makes included.
    shown = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    for database in ("postgresql", "sqlite"):
        assert f"scripts/dbos_suite.sh {database}" in shown.stdout, shown.stdout
