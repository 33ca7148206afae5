#!/usr/bin/env bash
# What `git migrate diff` costs (issue 15), against a throwaway PostgreSQL started here.
#
#   bash bench/diff.sh [--runs N] [--n N] [--out DIR]
#
# On the bench/run.sh workload (N migrations, default 1000, in 4 commits), the schema diff of
# two revisions, HEAD~1 (3N/4 migrations) and HEAD (N):
#   cold   `diff HEAD~1 HEAD --schema-only --scratch-url …` with no kept template: HEAD~1
#          replayed and kept as a template, HEAD as a copy of it plus the N/4 newer migrations
#   warm   the same command again: both schemas read from the kept templates, no replay.
#          Target: 1 s.
#   local  the same diff without --scratch-url: a throwaway cluster is started for the run, so
#          every run is cold
#   floor  psql -1 -f all_up.sql into an empty database (the replay of HEAD alone)
# Prints medians of N runs (default 3).
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=3; N=1000; OUT=/tmp/gm-diff-last
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
TIMED_OK_MAX=1   # exit 1 (differences) is success here
# shellcheck source=bench/server.sh
source "$HERE/server.sh"
SCRATCH="postgresql://postgres@/postgres?host=$WORK&port=5432"
drop_templates() {
  "$PSQL" -X -At -d postgres -c "select datname from pg_database where datname like 'git\_migrate\_tpl\_%'" |
    while read -r d; do admin -c "DROP DATABASE IF EXISTS $d WITH (FORCE)"; done
}

WL=$WORK/wl
python3 "$HERE/make_workload.py" "$N" "$WL" --commits 4 >>"$LOG" 2>&1
REPO=$WL/repo
GM=("$BIN" --color never -C "$REPO")
say "diff benchmark $(date -u +%FT%TZ): N=$N (HEAD~1 has $((N * 3 / 4))), runs=$RUNS, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

declare -a T_COLD=() T_WARM=() T_LOCAL=() T_FLOOR=()
for r in $(seq 1 "$RUNS"); do
  admin -c "DROP DATABASE IF EXISTS floor WITH (FORCE)" -c "CREATE DATABASE floor"
  timed "$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -f "$WL/all_up.sql" -d floor; T_FLOOR+=("$LAST_US")
  drop_templates
  timed "${GM[@]}" diff HEAD~1 HEAD --schema-only --scratch-url "$SCRATCH"; T_COLD+=("$LAST_US")
  timed "${GM[@]}" diff HEAD~1 HEAD --schema-only --scratch-url "$SCRATCH"; T_WARM+=("$LAST_US")
  timed "${GM[@]}" diff HEAD~1 HEAD --schema-only; T_LOCAL+=("$LAST_US")
done
grep -q "read from the kept template" "$LOG" || die "the warm runs did not use the kept templates"
stmts=$("${GM[@]}" diff HEAD~1 HEAD --schema-only --scratch-url "$SCRATCH" 2>/dev/null | grep -c ';$' || true)
mc=$(median "${T_COLD[@]}"); mw=$(median "${T_WARM[@]}"); ml=$(median "${T_LOCAL[@]}"); mf=$(median "${T_FLOOR[@]}")
say "diff HEAD~1 HEAD ($stmts statements): cold $(ms "$mc") ($(ratio "$mc" "$mf") psql replay of HEAD) | warm $(ms "$mw") (target 1000 ms: $([ "$mw" -le 1000000 ] && echo PASS || echo MISS)) | no --scratch-url $(ms "$ml") | psql -1 all_up.sql $(ms "$mf")"
