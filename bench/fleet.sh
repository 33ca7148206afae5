#!/usr/bin/env bash
# Fleets (issue 17): `status --fleet` over many databases, and a release deployed to all of them
# with `--parallel`, against the psql floor (the same SQL, the same parallelism, nothing else).
#
#   bash bench/fleet.sh [--dbs N] [--parallel P] [--runs R] [--out DIR] [--bin PATH]
#
#   --dbs N       databases in the fleet (default 200)
#   --parallel P  databases at once for deploys and the floor (default 8)
#   --runs R      timed runs of each figure; the median is reported (default 3)
#   --out DIR     where the logs and summary stay (default /tmp/gm-bench-fleet)
#   --bin PATH    the binary (default target/release/git-migrate; built when missing)
#
# The repository: v1 has 20 migrations (tables), v2 adds a 10-migration release (a table, an
# index and a foreign key each: 30 statements). Every database starts at v1 (deployed with the
# fleet itself, untimed). Timed: `status v2 --fleet` (target: under 2 s for 200 databases);
# `deploy v2 --fleet --parallel P` then `rollback v1 --fleet --parallel P --yes`, R times each;
# and the floor: `psql -1 -f release.sql` (then the downs) on every database, P at a time.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DBS=200; PAR=8; RUNS=3; OUT=/tmp/gm-bench-fleet
while [ $# -gt 0 ]; do
  case $1 in
    --dbs) DBS=$2; shift 2 ;;
    --parallel) PAR=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin) GIT_MIGRATE=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=bench/server.sh
. "$HERE/server.sh"

REPO=$WORK/repo
mkdir -p "$REPO/migrations" "$REPO/metadata"
printf 'version: 2\nmetadata_directory: metadata\n' >"$REPO/config.yaml"
printf 'version: 2\n' >"$REPO/metadata/version.yaml"; printf '[]\n' >"$REPO/metadata/tables.yaml"
: >"$WORK/release.sql"; : >"$WORK/release-down.sql"
mig() {   # mig N UP DOWN
  local d="$REPO/migrations/$((1700000000000 + $1))_m$1"
  mkdir -p "$d"; printf '%s\n' "$2" >"$d/up.sql"; printf '%s\n' "$3" >"$d/down.sql"
}
for i in $(seq 1 20); do mig "$i" "CREATE TABLE base_$i (id bigint PRIMARY KEY, name text NOT NULL);" "DROP TABLE base_$i;"; done
git -C "$REPO" init -q && git -C "$REPO" add -A
git -C "$REPO" -c user.name=bench -c user.email=b@x commit -qm v1 && git -C "$REPO" tag v1
for i in $(seq 21 30); do
  up="CREATE TABLE rel_$i (id bigint PRIMARY KEY, base_id bigint, note text);
CREATE INDEX rel_${i}_base ON rel_$i (base_id);
ALTER TABLE rel_$i ADD CONSTRAINT rel_${i}_fk FOREIGN KEY (base_id) REFERENCES base_1 (id);"
  mig "$i" "$up" "DROP TABLE rel_$i;"
  printf '%s\n' "$up" >>"$WORK/release.sql"
  printf 'DROP TABLE rel_%s;\n' "$i" >>"$WORK/release-down.sql"
done
git -C "$REPO" add -A && git -C "$REPO" -c user.name=bench -c user.email=b@x commit -qm v2 && git -C "$REPO" tag v2

say "fleet: $DBS databases, --parallel $PAR, $RUNS run(s); $("$BINDIR/postgres" --version)"
admin -c "CREATE DATABASE fleet_template"
: >"$WORK/fleet.txt"
for i in $(seq 1 "$DBS"); do
  admin -c "CREATE DATABASE f$i TEMPLATE fleet_template"
  url "f$i" >>"$WORK/fleet.txt"; echo >>"$WORK/fleet.txt"
done
gm() { (cd "$REPO" && "$BIN" "$@"); }
timed gm deploy v1 --fleet "$WORK/fleet.txt" --parallel "$PAR"
say "first deploy of v1 (20 migrations, ledger created) to $DBS databases: $(ms "$LAST_US")"

st=(); dep=(); rb=(); fl=(); fld=()
for _ in $(seq 1 "$RUNS"); do
  TIMED_OK_MAX=1 timed gm status v2 --fleet "$WORK/fleet.txt"; st+=("$LAST_US")
  timed gm deploy v2 --fleet "$WORK/fleet.txt" --parallel "$PAR"; dep+=("$LAST_US")
  timed gm rollback v1 --fleet "$WORK/fleet.txt" --parallel "$PAR" --yes; rb+=("$LAST_US")
done
# The floor: the release's SQL in one transaction per database, P at a time; then its downs.
floor() {   # floor FILE
  seq 1 "$DBS" | xargs -P "$PAR" -I{} "$PSQL" -X -q -v ON_ERROR_STOP=1 -1 -d "f{}" -f "$1"
}
for _ in $(seq 1 "$RUNS"); do
  timed floor "$WORK/release.sql"; fl+=("$LAST_US")
  timed floor "$WORK/release-down.sql"; fld+=("$LAST_US")
done
S=$(median "${st[@]}"); D=$(median "${dep[@]}"); R=$(median "${rb[@]}")
F=$(median "${fl[@]}"); FD=$(median "${fld[@]}")
say ""
say "| figure | git-migrate | psql floor | ratio |"
say "|---|---|---|---|"
say "| \`status v2 --fleet\`, $DBS databases (target < 2 s) | $(ms "$S") | | |"
say "| \`deploy v2 --fleet --parallel $PAR\` (10 migrations each) | $(ms "$D") | $(ms "$F") | $(ratio "$D" "$F") |"
say "| \`rollback v1 --fleet --parallel $PAR --yes\` | $(ms "$R") | $(ms "$FD") | $(ratio "$R" "$FD") |"
say "| per database, deploy | $(awk -v u="$D" -v n="$DBS" -v p="$PAR" 'BEGIN{printf "%.0f ms", u*p/n/1000}') | $(awk -v u="$F" -v n="$DBS" -v p="$PAR" 'BEGIN{printf "%.0f ms", u*p/n/1000}') | |"
say ""
say "logs: $OUT/commands.log"
