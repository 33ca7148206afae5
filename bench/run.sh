#!/usr/bin/env bash
# git-migrate benchmark: deploy / rollback of 1,000 migrations against the psql floor, and
# `status` on a 20,000-commit / 10,000-migration repository.  See bench/README.md.
#
#   bash bench/run.sh [--runs N] [--quick] [--repo DIR] [--out DIR] [--bin PATH] [--loose] [--disk]
#
#   --runs N     timed pairs for deploy and rollback (default 5; 1 untimed warm-up pair extra)
#   --quick      skip part 3 (the big repository)
#   --repo DIR   where the generated big repository is cached (default /tmp/gm-bench-repo;
#                generated with ../shared/bench/gen-repo.py when missing, 1-3 minutes)
#   --out DIR    keep results.tsv and logs there (default /tmp/gm-bench-last; emptied first,
#                so it must be new, empty, or an earlier --out directory)
#   --bin PATH   the git-migrate binary (default target/release/git-migrate; built if missing)
#   --loose      keep the 1,000-migration repository's objects loose (default: packed, as a clone)
#   --disk       keep the server's data directory on disk under /tmp (default: tmpfs /dev/shm
#                when it has 4 GB free: on this VM's ext4, kernel time for creating/unlinking
#                every relation file makes DDL timings swing by +-30%; tmpfs removes that noise)
#
# Everything runs against a throwaway PostgreSQL cluster started here (unix socket only) and
# removed on exit, also on Ctrl-C.  Only preparation (CREATE DATABASE … TEMPLATE …) happens
# between timed commands, never inside a timing.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

RUNS=5
STATUS_RUNS=9
QUICK=0
BIG=${GM_BENCH_REPO:-/tmp/gm-bench-repo}
OUT=/tmp/gm-bench-last
BIN=$ROOT/target/release/git-migrate
GEN_REPO=${GEN_REPO:-$ROOT/../shared/bench/gen-repo.py}
N=1000
LOOSE=
DISK=0

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --quick) QUICK=1; shift ;;
    --repo) BIG=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --loose) LOOSE=--loose; shift ;;
    --disk) DISK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive integer" >&2; exit 2; }

say() { printf '%s\n' "$*"; }
hdr() { printf '\n== %s\n' "$*"; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- binaries
if [ ! -x "$BIN" ]; then
  say "building $BIN (cargo build --release) …"
  (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
fi
BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || true)}
[ -x "$BINDIR/initdb" ] || BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$BINDIR/initdb" ] || { command -v initdb >/dev/null && BINDIR=$(dirname "$(readlink -f "$(command -v initdb)")"); }
[ -x "$BINDIR/initdb" ] || die "no PostgreSQL server binaries found (apt-get install -y postgresql)"
PSQL=$BINDIR/psql   # the real client, not Debian's perl pg_wrapper (/usr/bin/psql, +15 ms per start)
[ -x "$PSQL" ] || die "no psql in $BINDIR"
command -v git >/dev/null || die "git not found"
command -v python3 >/dev/null || die "python3 not found"
if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing /usr/bin/time (apt-get install -y time) …"
  { apt-get install -y time || { apt-get update && apt-get install -y time; }; } >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------- scratch cluster
WORK=$(mktemp -d /tmp/gmb.XXXXXX)   # short: the socket path must stay under 107 bytes
PG_STARTED=0
DATAP=$WORK   # parent of the data directory
if [ "$DISK" = 0 ] && [ -d /dev/shm ] && [ -w /dev/shm ] \
   && [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2{print $4}')" -gt 4000000 ] 2>/dev/null; then
  DATAP=$(mktemp -d /dev/shm/gmb.XXXXXX)
fi
DATA=$DATAP/data
GEN_TMP=
AS=()
if [ "$(id -u)" = 0 ]; then
  PGU=postgres
  id -u $PGU >/dev/null 2>&1 || die "running as root needs the 'postgres' system user to run the server"
  chown "$PGU:$(id -g $PGU)" "$WORK" "$DATAP"
  AS=(runuser -u "$PGU" --)
fi
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$PG_STARTED" = 1 ]; then
    [ -f "$WORK/server.log" ] && cp "$WORK/server.log" "$OUT/server.log" 2>/dev/null || true
    (cd /tmp && "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 30 -s stop \
      || "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -s stop) >/dev/null 2>&1 || true
  fi
  [ -n "$GEN_TMP" ] && rm -rf "$GEN_TMP"
  rm -rf "$WORK" "$DATAP"
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/results.tsv" ]; then
  die "--out $OUT is not empty and not an earlier benchmark output; refusing to empty it"
fi
rm -rf "$OUT"; mkdir -p "$OUT"
# measure a private copy, so that a concurrent `cargo build` cannot swap the binary mid-run
cp "$BIN" "$WORK/git-migrate"; BIN_SRC=$BIN; BIN=$WORK/git-migrate
RES=$OUT/results.tsv; : >"$RES"
LOG=$OUT/commands.log; : >"$LOG"

say "git-migrate benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  runs=$RUNS  quick=$QUICK"
say "binary  $BIN_SRC ($("$BIN" --version 2>/dev/null), built $(stat -c %y "$BIN_SRC" | cut -d. -f1);" \
    "tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' + uncommitted src changes'))"
say "server  $BINDIR  | psql $PSQL | load $(cut -d' ' -f1-3 /proc/loadavg) | $(nproc) cores"
say "output  $OUT"
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD1" -v n="$(nproc)" 'BEGIN{exit !(l > n * 0.5)}'; then
  say "warning: 1-minute load $LOAD1 on $(nproc) cores: other work competes for the CPUs, ratios will be noisy (see bench/README.md, Noise)"
fi

(cd /tmp && "${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
  --no-sync --no-instructions) >"$OUT/initdb.log" 2>&1 || die "initdb failed (see $OUT/initdb.log)"
# Same server, same unix socket, same settings for the tool and the floor.
#   fsync=off as in the peer benchmark (synchronous_commit and full_page_writes stay on);
#   autovacuum off so it cannot wake up inside a timing; max_locks_per_transaction raised
#   because deploying 10,000 migrations in ONE transaction locks ~25,000 new relations
#   (the default 64 x max_connections is not enough for that, for the tool or for psql -1).
OPTS="-k $WORK -p 5432 -c listen_addresses= -c fsync=off -c autovacuum=off -c max_connections=50 \
-c max_locks_per_transaction=1024 -c shared_buffers=128MB -c checkpoint_timeout=1h -c max_wal_size=4GB"
(cd /tmp && "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 -s -o "$OPTS" start) \
  >>"$LOG" 2>&1 || { cat "$WORK/server.log" >&2 || true; die "could not start PostgreSQL"; }
PG_STARTED=1
unset DATABASE_URL PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS PGSSLMODE
export PGHOST=$WORK PGPORT=5432 PGUSER=postgres
say "cluster socket $WORK, data $DATA ($(df -PT "$DATAP" | awk 'NR==2{print $2}')), PostgreSQL $("$PSQL" -X -At -d postgres -c 'show server_version')"

url() { printf 'host=%s port=5432 user=postgres dbname=%s' "$WORK" "$1"; }
admin() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@" >>"$LOG" 2>&1 || die "admin SQL failed: $* (see $LOG)"; }
q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
recreate() { # recreate DB [TEMPLATE]
  if [ -n "${2:-}" ]; then
    admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1 TEMPLATE $2"
  else
    admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  fi
}
settle() { admin -c "CHECKPOINT"; }   # flush what preparing wrote, outside the timings

# timed METRIC SIDE RUN CMD… : wall time of CMD in microseconds (RUN "-" = not recorded)
timed() {
  local m=$1 s=$2 r=$3; shift 3
  printf '\n### %s %s %s: %s\n' "$m" "$s" "$r" "$*" >>"$LOG"
  local t0=${EPOCHREALTIME/./}
  "$@" >>"$LOG" 2>&1 || { local rc=$?; tail -n 25 "$LOG" >&2; die "$m/$s failed (exit $rc): $*"; }
  local t1=${EPOCHREALTIME/./}
  LAST_US=$((t1 - t0))
  [ "$r" = - ] || printf '%s\t%s\t%s\t%s\n' "$m" "$s" "$r" "$LAST_US" >>"$RES"
}
info() { printf '%s\tinfo\t0\t%s\n' "$1" "$2" >>"$RES"; }
# cpu CMD… : "wall W ms, client CPU C ms (user+sys)" of one untimed extra run (needs /usr/bin/time)
cpu() {
  [ -x /usr/bin/time ] || { echo "n/a (no /usr/bin/time)"; return; }
  /usr/bin/time -f "%e %U %S" -o "$WORK/cpu.txt" "$@" >>"$LOG" 2>&1 || { echo "FAILED (see $LOG)"; return; }
  awk '{printf "wall %.0f ms, client CPU %.0f ms", $1*1000, ($2+$3)*1000}' "$WORK/cpu.txt"
}
stat_line() { python3 "$HERE/stats.py" "$RES" line "$1"; }

# public-schema objects: tables indexes(name_idx) fks views
OBJ_SQL="select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r')
  || ' ' || (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'i' and c.relname like '%name_idx')
  || ' ' || (select count(*) from pg_constraint k join pg_namespace n on n.oid = k.connamespace where n.nspname = 'public' and k.contype = 'f')
  || ' ' || (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'v')"
objects() { q "$1" "$OBJ_SQL"; }
ledger_rows() { q "$1" "select count(*) from git_migrate.migrations"; }

# ---------------------------------------------------------------------------- workload
hdr "workload: $N migrations (peer benchmark shapes), Hasura config v2 repository"
WL=$WORK/wl
python3 "$HERE/make_workload.py" "$N" "$WL" --commits 4 $LOOSE 2>>"$LOG"
REPO=$WL/repo
EXPECT="$(awk '$1=="tables"{t=$2} $1=="indexes"{i=$2} $1=="fks"{f=$2} $1=="views"{v=$2} END{print t, i, f, v}' "$WL/expect.txt")"
say "repo $REPO: $(git -C "$REPO" rev-list --count HEAD) commits, $(git -C "$REPO" ls-tree -d --name-only HEAD migrations/ | wc -l) migrations," \
    "objects $([ -n "$LOOSE" ] && echo loose || echo packed);" \
    "all_up.sql $(wc -c <"$WL/all_up.sql") B, all_down.sql $(wc -c <"$WL/all_down.sql") B; expected objects (tables name_idx fks views): $EXPECT"

GM=("$BIN" --color never -C "$REPO")
FLOOR_UP=("$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -f "$WL/all_up.sql")
FLOOR_DOWN=("$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -f "$WL/all_down.sql")

# pair METRIC RUN TOOL_ARRAY_NAME FLOOR_ARRAY_NAME: odd runs floor first, even runs tool first
pair() {
  local m=$1 r=$2; local -n _t=$3 _f=$4
  if [ "$r" = - ] || (( r % 2 == 0 )); then
    timed "$m" tool "$r" "${_t[@]}"; timed "$m" floor "$r" "${_f[@]}"
  else
    timed "$m" floor "$r" "${_f[@]}"; timed "$m" tool "$r" "${_t[@]}"
  fi
}

# ---------------------------------------------------------------------------- part 1: deploy
hdr "1. deploy $N migrations into a fresh database: git-migrate deploy HEAD --yes --no-prelude vs psql -X -q -1 -f all_up.sql"
T_DEPLOY=("${GM[@]}" --database-url "$(url d_tool)" deploy HEAD --yes --no-prelude)
F_DEPLOY=("${FLOOR_UP[@]}" -d d_floor)
for r in - $(seq 1 "$RUNS"); do   # "-" = warm-up pair, checked, not recorded
  recreate d_tool; recreate d_floor; settle
  pair deploy "$r" T_DEPLOY F_DEPLOY
  if [ "$r" = - ]; then
    got_t=$(objects d_tool); got_f=$(objects d_floor); rows=$(ledger_rows d_tool)
    [ "$got_f" = "$EXPECT" ] || die "psql floor produced '$got_f' objects, expected '$EXPECT'"
    [ "$got_t" = "$EXPECT" ] || die "git-migrate deploy produced '$got_t' objects, expected '$EXPECT'"
    [ "$rows" = "$N" ] || die "git-migrate ledger has $rows rows after deploy, expected $N"
    say "check: both sides created $got_t (tables name_idx fks views); ledger rows $rows"
    # templates for part 2 (the state each side itself left)
    recreate tpl_tool d_tool; recreate tpl_floor d_floor
  fi
done
say "deploy   $(stat_line deploy)"
recreate d_tool; recreate d_floor; settle
say "         one extra run each: git-migrate $(cpu "${T_DEPLOY[@]}") | psql $(cpu "${F_DEPLOY[@]}")"

# plan-only cost on a fresh database (informational: reading git + planning + printing the plan)
DRY=("${GM[@]}" --database-url "$(url d_dry)" deploy HEAD --yes --no-prelude --dry-run)
recreate d_dry
timed - - - "${DRY[@]}"
for r in $(seq 1 "$RUNS"); do timed deploy_dry tool "$r" "${DRY[@]}"; done
say "deploy --dry-run (no SQL run; read git, plan, print)   $(stat_line deploy_dry)"

# ---------------------------------------------------------------------------- part 2: rollback
hdr "2. roll back all $N: git-migrate rollback --yes (= before the last deployment = empty) vs psql -X -q -1 -f all_down.sql"
T_ROLLBACK=("${GM[@]}" --database-url "$(url d_tool)" rollback --yes)
F_ROLLBACK=("${FLOOR_DOWN[@]}" -d d_floor)
for r in - $(seq 1 "$RUNS"); do
  recreate d_tool tpl_tool; recreate d_floor tpl_floor; settle
  pair rollback "$r" T_ROLLBACK F_ROLLBACK
  if [ "$r" = - ]; then
    got_t=$(objects d_tool); got_f=$(objects d_floor); rows=$(ledger_rows d_tool)
    [ "$got_f" = "0 0 0 0" ] || die "psql floor rollback left '$got_f' objects"
    [ "$got_t" = "0 0 0 0" ] || die "git-migrate rollback left '$got_t' objects"
    [ "$rows" = 0 ] || die "git-migrate ledger has $rows rows after rollback, expected 0"
    say "check: both sides left an empty public schema; ledger rows 0"
  fi
done
say "rollback $(stat_line rollback)"
recreate d_tool tpl_tool; recreate d_floor tpl_floor; settle
say "         one extra run each: git-migrate $(cpu "${T_ROLLBACK[@]}") | psql $(cpu "${F_ROLLBACK[@]}")"

# status with nothing to do, 1,000 migrations (design §14: <= 1.5x one connection + one query)
recreate d_tool tpl_tool; settle
T_ST1=("${GM[@]}" --database-url "$(url d_tool)" status --exit-code)
F_ST1=("$PSQL" -X -q -d d_tool -c 'select 1')
for r in - $(seq 1 "$STATUS_RUNS"); do pair status1k "$r" T_ST1 F_ST1; done
say "status (1k, in sync) vs psql -c 'select 1'   $(stat_line status1k)"

# ---------------------------------------------------------------------------- part 3: big repo
if [ "$QUICK" = 1 ]; then
  hdr "3. skipped (--quick)"
else
  hdr "3. status on the 20,000-commit / 10,000-migration repository ($BIG)"
  if ! git -C "$BIG" rev-parse -q --verify HEAD >/dev/null 2>&1 || [ ! -f "$BIG/config.yaml" ]; then
    [ -f "$GEN_REPO" ] || die "gen-repo.py not found at $GEN_REPO (set GEN_REPO=…)"
    rm -rf "$BIG"
    GEN_TMP=$BIG.tmp.$$
    say "generating with $GEN_REPO (about a minute) …"
    t0=${EPOCHREALTIME/./}
    python3 "$GEN_REPO" "$GEN_TMP" 2>&1 | sed 's/^/  /'
    mv "$GEN_TMP" "$BIG"; GEN_TMP=
    say "generated in $(( (${EPOCHREALTIME/./} - t0) / 1000000 )) s"
  else
    say "using the cached repository (delete $BIG to regenerate)"
  fi
  NMIG=$(git -C "$BIG" ls-tree -d --name-only HEAD migrations/ | wc -l)
  say "repo: $(git -C "$BIG" rev-list --count HEAD) commits, $NMIG migrations at HEAD, $(du -sm "$BIG/.git" | cut -f1) MB .git"
  GMB=("$BIN" --color never -C "$BIG")

  # deploy HEAD (the final content of the 9 later-edited up.sql files), once, timed for information
  recreate big
  say "deploying HEAD ($NMIG migrations, one transaction) …"
  printf '\n### big deploy\n' >>"$LOG"
  t0=${EPOCHREALTIME/./}
  if "${GMB[@]}" --database-url "$(url big)" deploy HEAD --yes --no-prelude >"$OUT/big-deploy.log" 2>&1; then
    BIG_OK=1
    us=$(( ${EPOCHREALTIME/./} - t0 )); printf 'bigdeploy\ttool\t1\t%s\n' "$us" >>"$RES"
    say "deploy HEAD: ok in $(awk -v u="$us" 'BEGIN{printf "%.2f s", u/1e6}'); ledger rows $(ledger_rows big)," \
        "public tables $(q big "select count(*) from pg_tables where schemaname='public'")"
  else
    BIG_OK=0
    say "DEPLOY OF gen-repo's HEAD FAILED (exit $?); the SQL of the generated migrations did not apply:"
    grep -v '^  \(apply\|revert\) ' "$OUT/big-deploy.log" | tail -n 30 | sed 's/^/  | /'
    say "  (full output: $OUT/big-deploy.log)  -> status figures cannot be measured"
  fi

  if [ "$BIG_OK" = 1 ]; then
    # floor for the same 10,000 ups (informational): psql -1 on the HEAD contents, version order
    mkdir -p "$WORK/bigsql"
    git -C "$BIG" archive HEAD migrations | tar -x -C "$WORK/bigsql"
    find "$WORK/bigsql/migrations" -name up.sql | sort | xargs cat >"$WORK/big_up.sql"
    recreate big_floor; settle
    timed bigdeploy floor 1 "$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -d big_floor -f "$WORK/big_up.sql"
    admin -c "DROP DATABASE big_floor"
    say "deploy HEAD ($NMIG)   $(stat_line bigdeploy)"

    # in sync?
    "${GMB[@]}" --database-url "$(url big)" status --json >"$OUT/big-status.json" 2>>"$LOG" || true
    python3 - "$OUT/big-status.json" <<'EOF' || die "status on the big repository does not report 'in sync' (see $OUT/big-status.json)"
import json, sys
d = json.load(open(sys.argv[1]))
print(f"status --json: in_sync={d.get('in_sync')} applied={d.get('applied')} pending={len(d.get('pending', []))} "
      f"to_revert={len(d.get('to_revert', []))} metadata_in_sync={d.get('metadata', {}).get('in_sync')}")
sys.exit(0 if d.get("in_sync") else 1)
EOF
    settle
    T_ST=("${GMB[@]}" --database-url "$(url big)" status --exit-code)
    F_ST=("$PSQL" -X -q -d big -c 'select 1')
    for r in - $(seq 1 "$STATUS_RUNS"); do pair status10k "$r" T_ST F_ST; done
    say "status (10k, in sync) vs psql -c 'select 1'   $(stat_line status10k)"

    # plan HEAD (nothing to do) too, informational
    T_PL=("${GMB[@]}" --database-url "$(url big)" plan HEAD)
    timed - - - "${T_PL[@]}"
    for r in $(seq 1 "$STATUS_RUNS"); do timed plan10k tool "$r" "${T_PL[@]}"; done
    say "plan HEAD (10k, nothing to do)   $(stat_line plan10k)"

    # peak RSS
    if [ -x /usr/bin/time ]; then
      /usr/bin/time -v "${T_ST[@]}" >/dev/null 2>"$OUT/status-time-v.txt" || true
      rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$OUT/status-time-v.txt")
      info rss_status10k "$rss"
      say "status peak RSS: $rss kB ($(awk -v k="$rss" 'BEGIN{printf "%.1f MB", k/1024}'))"
    else
      say "status peak RSS: /usr/bin/time not available"
    fi

    # SQL statements (server log, log_statement=all) and client round trips (strace)
    admin -c "ALTER SYSTEM SET log_statement = 'all'" -c "ALTER SYSTEM SET log_connections = on" -c "SELECT pg_reload_conf()"
    sleep 0.3
    o0=$(stat -c %s "$WORK/server.log")
    "${T_ST[@]}" >>"$LOG" 2>&1 || true
    sleep 0.3
    tail -c +$((o0 + 1)) "$WORK/server.log" >"$OUT/status-statements.log"
    admin -c "ALTER SYSTEM RESET log_statement" -c "ALTER SYSTEM RESET log_connections" -c "SELECT pg_reload_conf()"
    stmts=$(grep -cE 'LOG:  (statement|execute [^:]*):' "$OUT/status-statements.log" || true)
    conns=$(grep -c 'connection authorized' "$OUT/status-statements.log" || true)
    info stmts_status10k "$stmts"
    say "status SQL: $conns connection(s), $stmts statement(s) logged (log_statement=all; $OUT/status-statements.log):"
    grep -E 'LOG:  (statement|execute [^:]*):' "$OUT/status-statements.log" | sed -E 's/^.*LOG:  /  | /' | cut -c1-150 || true
    if command -v strace >/dev/null; then
      # a round trip = one client write to the server socket followed by a wait for the answer;
      # count writes to the socket after connect (startup packet included)
      strace -f -qq -o "$OUT/status-strace.txt" -e trace=connect,write,sendto,sendmsg,writev "${T_ST[@]}" >/dev/null 2>&1 || true
      rt=$(python3 - "$OUT/status-strace.txt" "$WORK/.s.PGSQL.5432" <<'EOF'
import re, sys
fds, n = set(), 0
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\d+)\s+connect\((\d+), \{sa_family=AF_UNIX, sun_path=\"([^\"]*)\"", line)
    if m and m.group(3) == sys.argv[2]:
        fds.add(m.group(2)); continue
    m = re.match(r"\s*\d+\s+(write|sendto|sendmsg|writev)\((\d+),", line)
    if m and m.group(2) in fds:
        n += 1
print(n)
EOF
)
      info writes_status10k "$rt"
      say "status client->server socket writes (strace; startup + one per round trip + terminate): $rt"
    fi
  fi
fi

# ---------------------------------------------------------------------------- summary
hdr "summary  (load $(cut -d' ' -f1-3 /proc/loadavg))"
python3 "$HERE/stats.py" "$RES" summary
say ""
say "raw timings: $RES   command output: $LOG"
