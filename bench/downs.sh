#!/usr/bin/env bash
# What computed downs cost (issue 13, item 6), against a throwaway PostgreSQL started here.
#
#   bash bench/downs.sh [--runs N] [--n N] [--release K] [--out DIR]
#
# On the bench/run.sh workload (N migrations, default 1000):
#   capture   deploy HEAD of a copy whose down.sql files are all empty (every migration gets its
#             down captured at apply) vs the same deploy with the written downs (nothing
#             captured; policy.capture_downs limits it to the last 20) vs psql -1 -f all_up.sql;
#             per captured migration = difference / captured
#   capture40 a database at HEAD~1 of that copy deploys the last K migrations (a release, default
#             40), all captured, vs the same release with downs
#   rollback  rollback --compute-downs of those K (the captured downs run) vs psql -1 of their
#             written downs
#   replay    `apply --down K --compute-downs=all --dry-run` on the database deployed with
#             written downs (nothing stored: every down is computed by replaying the N-migration
#             history in a scratch database on the same server) vs psql -1 -f all_up.sql, i.e.
#             psql replaying that history. Target: at most 3x.
# Prints medians of N runs (default 3) and the ratios.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=3; N=1000; K=40; OUT=/tmp/gm-downs-last
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --release) K=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=bench/server.sh
source "$HERE/server.sh"

WL=$WORK/wl
python3 "$HERE/make_workload.py" "$N" "$WL" --commits 4 >>"$LOG" 2>&1
REPO=$WL/repo
# The same history, then one commit that empties every down.sql: deploying it applies N
# migrations without a usable down.
NODOWN=$WORK/nodown
git clone -q "$REPO" "$NODOWN"
find "$NODOWN/migrations" -name down.sql -exec truncate -s 0 {} +
git -C "$NODOWN" -c user.name=b -c user.email=b@b commit -qam "empty downs"
# A release of K: HEAD~1 has the first N-K migrations, HEAD the last K (downs empty).
REL=$WORK/release
mkdir -p "$REL"; git -C "$REL" init -q
cp -r "$NODOWN/config.yaml" "$NODOWN/metadata" "$REL/"
mkdir -p "$REL/migrations"
ls "$NODOWN/migrations" | sort | head -n $((N - K)) | while read -r d; do cp -r "$NODOWN/migrations/$d" "$REL/migrations/"; done
git -C "$REL" add -A; git -C "$REL" -c user.name=b -c user.email=b@b commit -qm base
ls "$NODOWN/migrations" | sort | tail -n "$K" | while read -r d; do cp -r "$NODOWN/migrations/$d" "$REL/migrations/"; done
git -C "$REL" add -A; git -C "$REL" -c user.name=b -c user.email=b@b commit -qm release
# psql floors: the K release ups, and their written downs (newest first)
ls "$REPO/migrations" | sort | tail -n "$K" | while read -r d; do cat "$REPO/migrations/$d/up.sql"; echo; done >"$WORK/rel_up.sql"
ls "$REPO/migrations" | sort | tail -n "$K" | sort -r | while read -r d; do cat "$REPO/migrations/$d/down.sql"; echo; done >"$WORK/rel_down.sql"

GM=("$BIN" --color never)
FLOOR_UP=("$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -f "$WL/all_up.sql")
say "computed downs benchmark $(date -u +%FT%TZ): N=$N, release K=$K, runs=$RUNS, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# capture: whole history
declare -a T_DOWN=() T_NODOWN=() T_FLOOR=()
for r in $(seq 1 "$RUNS"); do
  recreate a; recreate b; recreate f
  timed "${FLOOR_UP[@]}" -d f; T_FLOOR+=("$LAST_US")
  timed "${GM[@]}" -C "$REPO" --database-url "$(url a)" deploy HEAD --yes --no-prelude; T_DOWN+=("$LAST_US")
  timed "${GM[@]}" -C "$NODOWN" --database-url "$(url b)" deploy HEAD --yes --no-prelude; T_NODOWN+=("$LAST_US")
done
captured=$("$PSQL" -X -At -d b -c "select count(*) from git_migrate.migrations where computed_down->>'error' is null and computed_down is not null")
md=$(median "${T_DOWN[@]}"); mn=$(median "${T_NODOWN[@]}"); mf=$(median "${T_FLOOR[@]}")
say "capture   deploy $N with downs $(ms "$md") ($(ratio "$md" "$mf") psql) | $N without downs, $captured captured $(ms "$mn") ($(ratio "$mn" "$mf") psql) | psql $(ms "$mf") | per captured migration $(awk -v a="$mn" -v b="$md" -v n="$captured" 'BEGIN{printf "%.0f ms", (a-b)/(n>0?n:1)/1000}')"

# capture40 and rollback of the release
declare -a T_R=() T_RF=() T_RB=() T_RBF=()
"${GM[@]}" -C "$REL" --database-url "$(url rel_tpl_x)" --version >/dev/null
recreate rel_tpl; "${GM[@]}" -C "$REL" --database-url "$(url rel_tpl)" deploy HEAD~1 --yes --no-prelude >>"$LOG" 2>&1 || die "release base deploy failed"
recreate relf_tpl rel_tpl
"$PSQL" -X -q -d relf_tpl -c "drop schema git_migrate cascade" >>"$LOG" 2>&1
for r in $(seq 1 "$RUNS"); do
  recreate r1 rel_tpl; recreate rf relf_tpl
  timed "$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -f "$WORK/rel_up.sql" -d rf; T_RF+=("$LAST_US")
  timed "${GM[@]}" -C "$REL" --database-url "$(url r1)" deploy HEAD --yes --no-prelude; T_R+=("$LAST_US")
  timed "$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -f "$WORK/rel_down.sql" -d rf; T_RBF+=("$LAST_US")
  timed "${GM[@]}" -C "$REL" --database-url "$(url r1)" rollback HEAD~1 --yes --compute-downs; T_RB+=("$LAST_US")
done
m1=$(median "${T_R[@]}"); m2=$(median "${T_RF[@]}"); m3=$(median "${T_RB[@]}"); m4=$(median "${T_RBF[@]}")
say "release   deploy $K captured $(ms "$m1") vs psql $(ms "$m2") ($(ratio "$m1" "$m2")) | rollback --compute-downs $(ms "$m3") vs psql written downs $(ms "$m4") ($(ratio "$m3" "$m4"))"

# replay: K downs computed by replaying the N-migration history
declare -a T_P=() T_PF=()
for r in $(seq 1 "$RUNS"); do
  recreate f
  timed "${FLOOR_UP[@]}" -d f; T_PF+=("$LAST_US")
  timed "${GM[@]}" -C "$REPO" --database-url "$(url a)" apply --down "$K" --compute-downs=all --dry-run --scratch-url "$(url postgres)"; T_P+=("$LAST_US")
done
m5=$(median "${T_P[@]}"); m6=$(median "${T_PF[@]}")
say "replay    $K downs by replaying $N migrations $(ms "$m5") vs psql replaying them $(ms "$m6") ($(ratio "$m5" "$m6"); target x3.00)"
