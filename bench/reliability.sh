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
# release mode, against its own throwaway PostgreSQL; it prints one line per trial and the
# summary: trials=N before=B after=A other=0 double_applies=0 lost_state_rows=0 false_reports=0
# Then the rest of the report: the concurrency storm and pooler tests, the hostile-input corpus
# (every case a test; the count and how many passed) and the fuzzing record (fuzz/status.tsv:
# time and executions per target, crashes found, crashes open).
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

# The rest of the report.
run_group() { # name, test filters...
  local name=$1; shift
  local out; out="$(mktemp)"
  local st=0
  cargo test --release --test integration -- "$@" >"$out" 2>&1 || st=$?
  local passed failed
  passed=$(grep -cE '^test .* \.\.\. ok$' "$out" || true)
  failed=$(grep -cE '^test .* \.\.\. FAILED$' "$out" || true)
  echo "$name: cases=$((passed + failed)) passed=$passed failed=$failed"
  if [ "$st" -ne 0 ]; then grep -E '^test .* FAILED$' "$out" >&2 || true; status=1; fi
  rm -f "$out"
}
run_group "concurrency storm, lock timeouts, deploy vs rollback" test_concurrency::
run_group "PgBouncer transaction pooling" test_pooler::
run_group "no-transaction migrations, repair, Ctrl-C" test_no_transaction:: test_interrupt::
run_group "hostile-input corpus" test_hostile:: test_bad_input::
run_group "secrets never printed" test_secrets::
if [ -f fuzz/status.tsv ]; then
  echo "fuzzing (fuzz/status.tsv, from the last cargo fuzz runs; fuzz/README.md):"
  column -t -s $'\t' fuzz/status.tsv | sed 's/^/  /'
  open_crashes=$(awk -F'\t' 'NR > 1 { s += $5 } END { print s + 0 }' fuzz/status.tsv)
  echo "fuzzing: open_crashes=$open_crashes"
  [ "$open_crashes" -eq 0 ] || status=1
fi
exit "$status"
