# Sourced by bench/downs.sh and bench/diff.sh after they parse their options (OUT set): the
# binary to measure (a private copy), a throwaway PostgreSQL server on a unix socket in a temp
# dir (stopped and removed on exit, errors and Ctrl-C; as root it runs as the postgres user),
# and the helpers the measurements share.
#
# Sets: BIN (the copy), BINDIR, PSQL, WORK, LOG, PGHOST/PGPORT/PGUSER. Defines: die, say, admin,
# url DB (a libpq connection string), recreate DB [TEMPLATE], timed CMD… (wall microseconds in
# LAST_US; exit codes up to TIMED_OK_MAX, default 0, count as success), median, ms, ratio.
die() { echo "error: $*" >&2; exit 1; }
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
BIN=${GIT_MIGRATE:-$ROOT/target/release/git-migrate}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || true)}
[ -x "$BINDIR/initdb" ] || BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$BINDIR/initdb" ] || die "no PostgreSQL server binaries found (apt-get install -y postgresql)"
PSQL=$BINDIR/psql

WORK=$(mktemp -d /tmp/gmbench.XXXXXX)
DATA=$WORK/data
AS=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$WORK"
  AS=(runuser -u postgres --)
fi
PG_STARTED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$PG_STARTED" = 1 ] && (cd /tmp && "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -s stop) >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$OUT"; mkdir -p "$OUT"
LOG=$OUT/commands.log; : >"$LOG"
cp "$BIN" "$WORK/git-migrate"; BIN=$WORK/git-migrate

(cd /tmp && "${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync --no-instructions) >>"$LOG" 2>&1 || die "initdb failed"
(cd /tmp && "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 -s -o "-k $WORK -p 5432 -c listen_addresses= -c fsync=off -c autovacuum=off -c max_locks_per_transaction=1024 -c shared_buffers=128MB" start) >>"$LOG" 2>&1 || die "could not start PostgreSQL"
PG_STARTED=1
unset DATABASE_URL PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS GIT_MIGRATE_SCRATCH_URL
export PGHOST=$WORK PGPORT=5432 PGUSER=postgres
url() { printf 'host=%s port=5432 user=postgres dbname=%s' "$WORK" "$1"; }
admin() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@" >>"$LOG" 2>&1 || die "admin SQL failed: $*"; }
recreate() { admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1${2:+ TEMPLATE $2}" -c CHECKPOINT; }
TIMED_OK_MAX=${TIMED_OK_MAX:-0}
timed() {
  printf '\n### %s\n' "$*" >>"$LOG"
  local t0=${EPOCHREALTIME/./} rc=0
  "$@" >>"$LOG" 2>&1 || rc=$?
  [ "$rc" -le "$TIMED_OK_MAX" ] || { tail -n 30 "$LOG" >&2; die "failed ($rc): $*"; }
  LAST_US=$(( ${EPOCHREALTIME/./} - t0 ))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ms() { awk -v u="$1" 'BEGIN{printf "%.0f ms", u/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "x%.2f", a/b}'; }
