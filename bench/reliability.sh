#!/usr/bin/env bash
# Kill trials at full size (docs/reliability.md): deployments of 200 migrations (and rollbacks
# of them) interrupted at a random moment by SIGKILL, pg_terminate_backend or an immediate
# server stop; every database must be found exactly before or exactly after, and the same
# command run again must reach the target.
#
#   bash bench/reliability.sh                # 60 trials, a fresh seed
#   GIT_MIGRATE_TRIALS=200 bash bench/reliability.sh
#   GIT_MIGRATE_TRIAL_SEED=1234 bash bench/reliability.sh   # replay a run
#
# It runs the same test `cargo test` runs with 8 trials (tests/test_reliability.rs), built in
# release mode, against its own throwaway PostgreSQL; it prints one line per trial and ends
# with the summary: trials=N before=B after=A other=0 double_applies=0 lost_state_rows=0
set -euo pipefail
cd "$(dirname "$0")/.."

export GIT_MIGRATE_TRIALS="${GIT_MIGRATE_TRIALS:-60}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
cargo test --release --test integration -- \
  test_reliability::kill_trials_leave_the_database_before_or_after \
  --exact --nocapture --test-threads=1 >"$log" 2>&1 || status=$?

# The test's own output (after cargo's build messages), without libtest's lines.
sed -n '/^running 1 test/,$p' "$log" | sed -E 's/^test [^ ]+ \.\.\. //' |
  grep -vE '^(running 1 test|test result:.*|ok|trials=.*|)$' || true
if [ "$status" -ne 0 ]; then
  echo "--- the test failed (exit $status); its output:" >&2
  tail -n 60 "$log" >&2
fi
summary="$(grep -E '^trials=' "$log" || true)"
if [ -z "$summary" ]; then
  echo "no summary line: the trials did not run to the end" >&2
  exit 1
fi
echo "$summary"
exit "$status"
