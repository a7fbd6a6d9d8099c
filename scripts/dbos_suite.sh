#!/usr/bin/env bash
# DBOS 2.31.1's own tests (../shared/dbos-suite) against the runtime of a freshly baked project.
#
#   scripts/dbos_suite.sh postgresql|sqlite [extra pytest args]
#
# Runs issue 13's tiers (core plus the non-async extended categories) and fails on any failure, and on
# PostgreSQL on any skip too (DBOS skips some tests on SQLite itself). The harness imports the baked
# package's durable/ directly: it imports only itself, so the app and its extras need not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
DATABASE="${1:?usage: scripts/dbos_suite.sh postgresql|sqlite [pytest args]}"; shift
SUITE="${DBOS_SUITE:-$(cd .. && pwd)/shared/dbos-suite}"
PYTHON="${PYTHON:-$PWD/.venv-template/bin/python}"
TIERS="${DBOS_SUITE_TIERS:-core,scheduler,classes,streaming,attributes,duplication-policy,debouncer,serialization,recover-hook,patch,auth}"

# The harness downloads DBOS's sdist on first use: once, under a lock, since both databases' runs start together.
CACHE="${PEER_CACHE:-${TMPDIR:-/tmp}/peer-tests-cache}"
mkdir -p "$CACHE"
(
    flock 9
    [ -f "$CACHE/dbos-2.31.1.tar.gz" ] \
        || python3 -m pip download -q --no-deps --no-binary :all: dbos==2.31.1 -d "$CACHE" >&2
) 9>"$CACHE/.lock"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbos-suite-$DATABASE.XXXXXX")"
drop_databases() {  # the harness leaves the last test's databases behind
    [ -n "${PEER_APP_DB_URL:-}" ] && "$PYTHON" - "$PEER_APP_DB_URL" "$PEER_SYS_DB_URL" <<'PY' || true
import sys, sqlalchemy as sa
engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
with engine.connect() as connection:
    for url in sys.argv[1:]:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
PY
    rm -rf "$WORK"
}
trap drop_databases EXIT
"$(dirname "$PYTHON")/cookiecutter" --no-input --output-dir "$WORK" . run_setup=false >/dev/null
PACKAGE_DIR="$(find "$WORK" -mindepth 3 -maxdepth 3 -type d -name durable -printf '%h\n')"

export PYTHON PYTHONPATH="$PACKAGE_DIR" PEER_SELECT="$TIERS" PEER_TOTAL_TIMEOUT="${PEER_TOTAL_TIMEOUT:-2700}"
if [ "$DATABASE" = sqlite ]; then
    export PEER_DATABASE=SQLITE
else
    # Our own database names: the harness drops and re-creates them for every test.
    unique="peer_ci_$$_$(date +%s)"
    export PEER_APP_DB_URL="postgresql://postgres@127.0.0.1:5432/${unique}_app"
    export PEER_SYS_DB_URL="postgresql+psycopg://postgres@127.0.0.1:5432/${unique}_sys"
fi
set +e
"$SUITE/run.sh" durable -q -rfEs -p no:cacheprovider "$@" 2>&1 | tee "$WORK/out.txt"
status=${PIPESTATUS[0]}
set -e
summary="$(grep '^peer: ' "$WORK/out.txt" | tail -n 1)"
# A DBOS test may fail only where the runtime differs on purpose: the runtime's README names each such test
# in its table "Deliberate differences (DBOS tests that fail on purpose)". Any other failure fails the run.
expected="$(sed -n '/^### Deliberate differences/,/^###* [^D]/p' "$PACKAGE_DIR/durable/README.md" \
    | grep -oE 'test_[a-z0-9_]+\.py::test_[A-Za-z0-9_]+' | sort -u || true)"
failed="$(grep -oE '^FAILED tests/[^ ]+' "$WORK/out.txt" | sed 's|^FAILED tests/||' | sort -u || true)"
failed_count="$(sed -nE 's/^peer: [0-9]+ passed, ([0-9]+) failed.*/\1/p' <<<"$summary")"
unexpected="$(comm -23 <(printf '%s\n' "$failed" | sed '/^$/d') <(printf '%s\n' "$expected" | sed '/^$/d'))"
listed_failures="$(comm -12 <(printf '%s\n' "$failed" | sed '/^$/d') <(printf '%s\n' "$expected" | sed '/^$/d') | wc -l)"
if [ "$status" -ne 0 ] && [ -z "$unexpected" ] && [ "${failed_count:-x}" = "$listed_failures" ]; then
    echo "dbos-suite: the $listed_failures failure(s) are the deliberate differences the runtime's README lists"
    status=0
elif [ -n "$unexpected" ]; then
    printf 'dbos-suite: failed, and not listed as a deliberate difference:\n%s\n' "$unexpected" >&2
fi
# On PostgreSQL every test must run, except those DBOS itself runs only on SQLite (their reason says so).
if [ "$DATABASE" = postgresql ] && ! grep -q ', 0 skipped' <<<"$summary" \
    && grep -E '^SKIPPED' "$WORK/out.txt" | grep -qv 'SQLite'; then
    echo "dbos-suite: a test was skipped on PostgreSQL; every one must run there:" >&2
    grep -E '^SKIPPED' "$WORK/out.txt" | grep -v 'SQLite' >&2
    status=1
fi
echo "dbos-suite ($DATABASE): $summary"
exit "$status"
