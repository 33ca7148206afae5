#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS_PER_TARGET seconds (default 600) and
# rewrites fuzz/status.tsv with what libFuzzer reported.
#
#   fuzz/run.sh                      # all four targets, 10 minutes each
#   SECONDS_PER_TARGET=60 fuzz/run.sh txcontrol
#
# New inputs go to $WORK/<target> (default /tmp/git-migrate-fuzz), never into the committed
# seed corpus (fuzz/corpus/<target>, read as a second corpus). A crash stops that target's run:
# its input is in fuzz/artifacts/<target>/; fix the code, copy the input into the seed corpus as
# crash-<what>, and count it in the "fixed" column by hand.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${SECONDS_PER_TARGET:-600}
work=${WORK:-/tmp/git-migrate-fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(folder_name hasura_config metadata_snapshot txcontrol)

status=status.tsv
[ -f "$status" ] || printf 'target\tseconds\texecutions\tcrashes_fixed\topen_crashes\n' > "$status"

for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  echo "fuzzing $t for ${seconds}s (log: $log)"
  : > "$log"
  cargo +nightly fuzz build "$t" >> "$log" 2>&1 || { echo "  $t: build failed; see $log"; exit 1; }
  started=$(date +%s)
  cargo +nightly fuzz run "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
    >> "$log" 2>&1
  rc=$?
  ended=$(date +%s)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}')
  took=${took:-$((ended - started))}
  open=0
  if [ $rc -ne 0 ]; then
    open=1
    echo "  $t: libFuzzer exited $rc; see $log and artifacts/$t/"
    tail -30 "$log"
  fi
  fixed=$(awk -F'\t' -v t="$t" '$1 == t { print $4 }' "$status")
  grep -v "^$t	" "$status" > "$status.new"
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$took" "${execs:-0}" "${fixed:-0}" "$open" >> "$status.new"
  mv "$status.new" "$status"
  echo "  $t: ${took}s, ${execs:-?} executions, open crashes: $open"
done
column -t -s $'\t' "$status"
