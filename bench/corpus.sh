#!/usr/bin/env bash
# git-migrate on real Hasura histories: for each (A, B) commit pair of a public repository,
# does `deploy A; deploy B; rollback A` end on the schema a plain psql replay of A gives?
# See bench/README.md ("Real histories: bench/corpus.sh").
#
#   bash bench/corpus.sh [options] TSV [MIRROR_ROOT [FILTER]]
#
#   TSV              pairs, tab-separated, with a header naming the columns repo, project_dir,
#                    config_version, A, B, database_name (others are ignored); e.g.
#                    /work/shared/corpus/dev-pairs.tsv
#   MIRROR_ROOT      where the bare mirrors are: MIRROR_ROOT/<owner>+<name>/repo
#                    (default /work/.mirror; also --mirrors DIR)
#   FILTER           only some pairs: 1-based pair numbers (`3`, `3,5`, `2-4`) or a substring of
#                    the repository name (`eesast`); also --only FILTER
#   --out DIR        keep per-pair logs and normalised dumps there (default /tmp/gm-corpus-last;
#                    emptied first, so it must be new, empty, or an earlier --out directory)
#   --diff-lines N   differing lines printed per pair (default 6)
#   --schema-diff    instead of deploy/rollback, check `git migrate diff A B --schema-only`
#                    (replayed on this server): its script, run on a deploy of A, must give the
#                    schema a psql replay of B gives
#
# Environment:
#   GIT_MIGRATE   the binary (default target/release/git-migrate; `cargo build --release` when
#                 missing). The script runs a private copy of it.
#   GM_FLAGS      flags given to every deploy/rollback (default
#                 "--allow-inconsistent-metadata --skip-hasura-catalog": there is no Hasura here)
#   EXTRA_FLAGS   more flags for every deploy/rollback, e.g. EXTRA_FLAGS=--allow-empty-down
#   GM_TIMEOUT    seconds per git-migrate invocation (default 600)
#   PSQL_TIMEOUT  seconds per replayed migration file (default 300)
#   LEDGER_SCHEMA git-migrate's ledger schema, left out of the comparison (default git_migrate)
#
# A throwaway PostgreSQL 15 cluster (unix socket in a temp dir, no TCP) is started here and
# removed on exit, also on errors and Ctrl-C.  Pairs run one after the other.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

MIRRORS=/work/.mirror
FILTER=
OUT=/tmp/gm-corpus-last
DIFF_LINES=6
SCHEMA_DIFF=
TSV=
POS=()
usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --mirrors) MIRRORS=$2; shift 2 ;;
    --only) FILTER=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --diff-lines) DIFF_LINES=$2; shift 2 ;;
    --schema-diff) SCHEMA_DIFF=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    *) POS+=("$1"); shift ;;
  esac
done
[ ${#POS[@]} -ge 1 ] && [ ${#POS[@]} -le 3 ] || { usage >&2; exit 2; }
TSV=${POS[0]}
[ ${#POS[@]} -ge 2 ] && MIRRORS=${POS[1]}
[ ${#POS[@]} -ge 3 ] && FILTER=${POS[2]}
[ -f "$TSV" ] || { echo "no such TSV: $TSV" >&2; exit 2; }
[ -d "$MIRRORS" ] || { echo "no such mirror root: $MIRRORS" >&2; exit 2; }
[[ $DIFF_LINES =~ ^[0-9]+$ ]] || { echo "--diff-lines needs a number" >&2; exit 2; }
TSV=$(readlink -f "$TSV"); MIRRORS=$(readlink -f "$MIRRORS")

GM_FLAGS=${GM_FLAGS---allow-inconsistent-metadata --skip-hasura-catalog}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
GM_TIMEOUT=${GM_TIMEOUT:-600}
PSQL_TIMEOUT=${PSQL_TIMEOUT:-300}
LEDGER_SCHEMA=${LEDGER_SCHEMA:-git_migrate}
read -r -a GM_FLAGV <<<"$GM_FLAGS $EXTRA_FLAGS"

die() { printf 'corpus: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- prerequisites
BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$BINDIR/initdb" ] || die "no PostgreSQL 15 server binaries in $BINDIR (apt-get install -y postgresql-15)"
PSQL=$BINDIR/psql PG_DUMP=$BINDIR/pg_dump
command -v git >/dev/null || die "git not found"
command -v python3 >/dev/null || die "python3 not found"
apt_install() {   # apt_install PACKAGE: as root, when apt-get exists
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "installing $1 (apt-get install -y $1) …" >&2
  { apt-get install -y "$1" || { apt-get update && apt-get install -y "$1"; }; } >/dev/null 2>&1
}
SHAREDIR=$("$BINDIR/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
if [ ! -f "$SHAREDIR/extension/postgis.control" ]; then
  apt_install postgresql-15-postgis-3 || die "postgis is missing (apt-get install -y postgresql-15-postgis-3)"
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
  apt_install python3-yaml || die "PyYAML is missing (apt-get install -y python3-yaml)"
fi

BIN=${GIT_MIGRATE:-target/release/git-migrate}
case $BIN in /*) ;; *) [ -e "$BIN" ] || BIN=$ROOT/$BIN ;; esac
if [ ! -x "$BIN" ]; then
  echo "building $BIN (cargo build --release) …" >&2
  (cd "$ROOT" && cargo build --release) >&2 || die "cargo build --release failed"
  BIN=$ROOT/target/release/git-migrate
fi

# ---------------------------------------------------------------------------- scratch cluster
WORK=$(mktemp -d /tmp/gmc.XXXXXX)   # short: the socket path must stay under 107 bytes
DATAP=$WORK
if [ -d /dev/shm ] && [ -w /dev/shm ] \
   && [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2{print $4}')" -gt 3000000 ] 2>/dev/null; then
  DATAP=$(mktemp -d /dev/shm/gmc.XXXXXX)
fi
DATA=$DATAP/data
PG_STARTED=0
AS=()
if [ "$(id -u)" = 0 ]; then
  id -u postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' system user to run the server"
  chown "postgres:$(id -g postgres)" "$WORK" "$DATAP"
  AS=(runuser -u postgres --)
fi
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$PG_STARTED" = 1 ]; then
    (cd /tmp && "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 30 -s stop \
      || "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -s stop) >/dev/null 2>&1 || true
    [ -d "$OUT" ] && cp "$WORK/server.log" "$OUT/server.log" 2>/dev/null || true
  fi
  rm -rf "$WORK" "$DATAP"
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/corpus.txt" ]; then
  die "--out $OUT is not empty and not an earlier corpus output; refusing to empty it"
fi
rm -rf "$OUT"; mkdir -p "$OUT"; : >"$OUT/corpus.txt"
say() { printf '%s\n' "$*" | tee -a "$OUT/corpus.txt"; }

# a private copy, so that a concurrent `cargo build` cannot swap the binary mid-run
cp "$BIN" "$WORK/git-migrate"; GM=$WORK/git-migrate

(cd /tmp && "${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
  --locale=C --no-sync --no-instructions) >"$OUT/initdb.log" 2>&1 || die "initdb failed (see $OUT/initdb.log)"
# max_locks_per_transaction: one transaction that creates a thousand migrations' objects needs
# more than the default; fsync off: nothing here needs to survive a crash.
OPTS="-k $WORK -p 5432 -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
-c autovacuum=off -c max_connections=20 -c max_locks_per_transaction=1024 -c shared_buffers=128MB \
-c max_wal_size=4GB"
(cd /tmp && "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 -s -o "$OPTS" start) \
  >/dev/null 2>&1 || { cat "$WORK/server.log" >&2 || true; die "could not start PostgreSQL"; }
PG_STARTED=1
unset DATABASE_URL PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS PGSSLMODE PGPORT
export PGHOST=$WORK PGUSER=postgres
export GIT_MIGRATE_ACTOR="bench/corpus.sh"

admin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@" >/dev/null; }
# every database of a pair starts from this template: pgcrypto and postgis, as a Hasura
# project's database usually has them
admin -c "CREATE DATABASE gmc_template"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d gmc_template \
  -c "CREATE EXTENSION pgcrypto" -c "CREATE EXTENSION postgis" >/dev/null \
  || die "cannot create pgcrypto and postgis in the template database"
# Roles are cluster-wide: a role a migration creates would survive its database and make the
# next replay's CREATE ROLE fail.  fresh() therefore drops every pair database and every role
# created since the server started before it creates the new database.
BASE_ROLES=$("$PSQL" -X -At -d postgres -c "select string_agg(quote_literal(rolname), ',') from pg_roles")
fresh() {
  local r
  admin -c "DROP DATABASE IF EXISTS gmc_a WITH (FORCE)" -c "DROP DATABASE IF EXISTS gmc_b WITH (FORCE)" \
        -c "DROP DATABASE IF EXISTS gmc_tool WITH (FORCE)"
  for r in $("$PSQL" -X -At -d postgres -c "select quote_ident(rolname) from pg_roles where rolname not in ($BASE_ROLES)"); do
    admin -c "DROP ROLE $r" || true
  done
  admin -c "CREATE DATABASE $1 TEMPLATE gmc_template"
}
drop() { admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }
url() { printf 'host=%s user=postgres dbname=%s' "$WORK" "$1"; }

# ---------------------------------------------------------------------------- python helpers
# yaml2sql: the run_sql statements of a Hasura v1 up.yaml (stdin), in order, as one SQL script
cat >"$WORK/yaml2sql.py" <<'EOF'
import sys, yaml
doc = yaml.safe_load(sys.stdin.read()) or []
out = []
def walk(q):
    if isinstance(q, list):
        for x in q: walk(x)
    elif isinstance(q, dict):
        t = q.get("type")
        if t == "run_sql":
            out.append((q.get("args") or {}).get("sql") or "")
        elif t == "bulk":
            walk(q.get("args") or [])
walk(doc)
sys.stdout.write("".join(s + "\n;\n" for s in out))
EOF
# normalise DUMP > OUT: pg_dump --schema-only text -> one block per object, comparable.
#  - the TOC comment headers, SET/set_config lines, \restrict lines and OWNER TO are dropped;
#  - the column lines of each CREATE TABLE are sorted (column order is ignored);
#  - blocks are sorted by (schema, name, type, text), so pg_dump's statement order (which falls
#    back to OIDs for ties) does not matter.
cat >"$WORK/normalise.py" <<'EOF'
import re, sys
hdr = re.compile(r"^-- (?:Name|Data for Name): (.*?); Type: (.*?); Schema: (.*?);")
blocks, cur, key = [], [], ("", "", "")
def flush():
    body = [l for l in cur if l.strip()]
    if body:
        blocks.append((key, body))
for line in open(sys.argv[1], encoding="utf-8", errors="replace").read().split("\n"):
    m = hdr.match(line)
    if m:
        flush(); cur = []; key = (m.group(3), m.group(1), m.group(2)); continue
    if line == "--" or line.startswith("-- Dumped ") or line.startswith("-- PostgreSQL database dump"):
        continue
    if line.startswith("SET ") or line.startswith("SELECT pg_catalog.set_config("):
        continue
    if line.startswith("\\restrict") or line.startswith("\\unrestrict"):
        continue
    if re.match(r"^ALTER .* OWNER TO .*;$", line):
        continue
    cur.append(line)
flush()
out = []
for key, body in blocks:
    if body[0].startswith("CREATE TABLE ") or body[0].startswith("CREATE UNLOGGED TABLE "):
        try:
            end = next(i for i in range(1, len(body)) if body[i].startswith(")"))
            cols = sorted(l.rstrip(",") for l in body[1:end])
            body = [body[0]] + cols + body[end:]
        except StopIteration:
            pass
    out.append(((key[0], key[1], key[2], "\n".join(body)), body))
out.sort(key=lambda x: x[0])
with open(sys.argv[2], "w") as f:
    for k, body in out:
        f.write("\n".join(body) + "\n\n")
EOF
# firstdiff A B N: the first N differing lines of two normalised dumps, "-" = only in A's replay,
# "+" = only after the rollback
cat >"$WORK/firstdiff.py" <<'EOF'
import difflib, sys
a = open(sys.argv[1]).read().split("\n"); b = open(sys.argv[2]).read().split("\n")
n = int(sys.argv[3]); shown = 0; total = 0
for l in difflib.unified_diff(a, b, n=0, lineterm=""):
    if l.startswith(("---", "+++", "@@")):
        continue
    total += 1
    if shown < n:
        print("      " + l[:200]); shown += 1
if total > shown:
    print(f"      … {total} differing lines in all")
EOF

# ---------------------------------------------------------------------------- per pair
# list_migrations GITDIR COMMIT DIR > "version<TAB>path<TAB>kind" sorted by version (numeric);
# kind is sql (up.sql) or yaml (a folder with up.yaml and no up.sql: Hasura's old format, whose
# run_sql calls are what Hasura ran)
cat >"$WORK/listmig.py" <<'EOF2'
import re, sys
d = sys.argv[1].rstrip("/") + "/"
found = {}
for p in sys.stdin.read().split("\n"):
    if not p.startswith(d):
        continue
    parts = p[len(d):].split("/")
    if len(parts) != 2:
        continue
    m = re.match(r"^([0-9]+)_", parts[0])
    if not m or parts[1] not in ("up.sql", "up.yaml"):
        continue
    found.setdefault((int(m.group(1)), parts[0]), {})[parts[1]] = p
for (v, folder), files in sorted(found.items()):
    kind = "sql" if "up.sql" in files else "yaml"
    print(f"{v}\t{files['up.' + kind]}\t{kind}")
EOF2
list_migrations() {
  git --git-dir="$1" ls-tree -r --name-only "$2" -- "$3/" 2>/dev/null | python3 "$WORK/listmig.py" "$3"
}

# first lines of an error log: ERROR/FATAL lines and what follows, else its head
errhead() {
  local f=$1 n=${2:-3}
  if grep -q -m1 -E '(^|: )(ERROR|FATAL|error)[: ]' "$f"; then
    grep -E -A$((n - 1)) -m1 '(^|: )(ERROR|FATAL|error)[: ]' "$f" | head -n "$n"
  else
    { grep -v '^[[:space:]]*$' "$f" || echo "(no output)"; } | head -n "$n"
  fi | sed -e "s|psql:$WORK/m/||" -e 's/^/      /' | cut -c1-240 || true
}

# replay DB GITDIR COMMIT LIST MIGDIR LOG: psql each migration of LIST (list_migrations' output)
# in order on a fresh database; on failure sets BAD to "<folder>/<file>" of the failing one and
# returns 1.  (Runs in this shell, not in $(…), so that a signal is handled after one psql.)
replay() {
  local db=$1 g=$2 c=$3 list=$4 d=$5 log=$6 v p kind f
  fresh "$db"
  : >"$log"
  mkdir -p "$WORK/m"
  while IFS=$'\t' read -r v p kind; do
    f=${p#"$d"/}; f=$WORK/m/${f//\//.}   # psql names it in its errors
    if [ "$kind" = sql ]; then
      git --git-dir="$g" show "$c:$p" >"$f"
    else
      git --git-dir="$g" show "$c:$p" | python3 "$WORK/yaml2sql.py" >"$f" || { BAD="${p#"$d"/}: bad YAML"; return 1; }
    fi
    if ! timeout "$PSQL_TIMEOUT" "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$f" >>"$log" 2>&1 </dev/null; then
      BAD=${p#"$d"/}; return 1
    fi
    rm -f "$f"
  done <"$list"
  return 0
}

dump() {   # dump DB BASE: BASE.dump.sql, schema only, without the ledger and Hasura's catalog;
           # BASE.norm, normalised
  "$PG_DUMP" --schema-only --no-owner -N "$LEDGER_SCHEMA" -N hdb_catalog -d "$1" >"$2.dump.sql"
  python3 "$WORK/normalise.py" "$2.dump.sql" "$2.norm"
}

# gm STEP LOG ARGS…: one git-migrate invocation under a timeout; output to LOG
gm() {
  local log=$1; shift
  printf '$ git-migrate %s\n' "$*" >>"$log"
  timeout "$GM_TIMEOUT" "$GM" --color never "$@" >>"$log.cur" 2>&1 </dev/null
  local rc=$?
  cat "$log.cur" >>"$log"; printf '(exit %s)\n\n' "$rc" >>"$log"
  return $rc
}

# ---------------------------------------------------------------------------- the pairs
read -r -a HEADER < <(head -n1 "$TSV" | tr '\t' ' ')
col() { local i; for i in "${!HEADER[@]}"; do [ "${HEADER[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
if [ "$(col repo)" = -1 ]; then   # no header: the column order of dev-pairs.tsv
  HEADER=(repo project_dir config_version A B n_migrations_A n_migrations_B database_name); SKIP=0
else
  SKIP=1
fi
C_REPO=$(col repo) C_PROJ=$(col project_dir) C_CV=$(col config_version) C_A=$(col A) C_B=$(col B) C_DB=$(col database_name)
for c in C_REPO C_PROJ C_CV C_A C_B; do [ "${!c}" != -1 ] || die "the TSV has no ${c#C_} column"; done

selected() {   # selected INDEX REPO
  [ -z "$FILTER" ] && return 0
  local part
  IFS=',' read -r -a parts <<<"$FILTER"
  for part in "${parts[@]}"; do
    if [[ $part =~ ^[0-9]+$ ]]; then [ "$1" = "$part" ] && return 0
    elif [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      [ "$1" -ge "${BASH_REMATCH[1]}" ] && [ "$1" -le "${BASH_REMATCH[2]}" ] && return 0
    elif [[ $2 == *"$part"* ]]; then return 0
    fi
  done
  return 1
}

say "git-migrate corpus  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "binary  $BIN ($({ "$GM" --version 2>/dev/null || echo '?'; } | head -n1))"
say "pairs   $TSV   mirrors $MIRRORS${FILTER:+   filter $FILTER}"
say "flags   deploy/rollback --yes ${GM_FLAGV[*]}   server PostgreSQL $("$PSQL" -X -At -d postgres -c 'show server_version')"
say "logs    $OUT"
say ""

M=0 N=0 K=0 IDX=0 BAD=
while IFS= read -r line <&3 || [ -n "$line" ]; do
  [ -z "$line" ] && continue
  IFS=$'\t' read -r -a F <<<"$line"
  IDX=$((IDX + 1))
  repo=${F[$C_REPO]:-} proj=${F[$C_PROJ]:-.} cv=${F[$C_CV]:-3} A=${F[$C_A]:-} B=${F[$C_B]:-}
  dbn=default; [ "$C_DB" != -1 ] && dbn=${F[$C_DB]:-default}
  selected "$IDX" "$repo" || continue
  M=$((M + 1))
  label=$(printf '%2d %s %s..%s' "$IDX" "$repo" "${A:0:8}" "${B:0:8}")
  P=$OUT/$(printf '%02d' "$IDX")-${repo//\//+}; mkdir -p "$P"
  g=$MIRRORS/${repo//\//+}/repo
  [ -d "$g" ] || g=$MIRRORS/${repo//\//+}
  if ! git --git-dir="$g" cat-file -e "$A^{commit}" 2>/dev/null || ! git --git-dir="$g" cat-file -e "$B^{commit}" 2>/dev/null; then
    say "$label: skipped: no mirror with both commits under $MIRRORS/${repo//\//+}"
    continue
  fi
  pdir=${proj%/}; [ "$pdir" = . ] && pdir=
  mdir=${pdir:+$pdir/}migrations; [ "$cv" = 3 ] && mdir=$mdir/$dbn
  if ! list_migrations "$g" "$A" "$mdir" >"$P/migrations-A.tsv" \
     || ! list_migrations "$g" "$B" "$mdir" >"$P/migrations-B.tsv"; then
    say "$label: skipped: cannot list $mdir/ in A or B"; continue
  fi
  nA=$(wc -l <"$P/migrations-A.tsv") nB=$(wc -l <"$P/migrations-B.tsv")
  ny=$(awk -F'\t' '$3=="yaml"' "$P/migrations-B.tsv" | wc -l)
  extra=; [ "$ny" -gt 0 ] && extra=", $ny up.yaml-only"
  label="$label ($nA->$nB, v$cv$extra)"

  # 1. ground truth and eligibility
  if ! replay gmc_a "$g" "$A" "$P/migrations-A.tsv" "$mdir" "$P/replay-A.log"; then
    say "$label: not eligible: psql replay of A fails at $BAD"; errhead "$P/replay-A.log" 2 | tee -a "$OUT/corpus.txt"
    drop gmc_a; continue
  fi
  if ! dump gmc_a "$P/A"; then say "$label: pg_dump of A's replay failed (see $P)"; drop gmc_a; continue; fi
  drop gmc_a
  if ! replay gmc_b "$g" "$B" "$P/migrations-B.tsv" "$mdir" "$P/replay-B.log"; then
    say "$label: not eligible: psql replay of B fails at $BAD"; errhead "$P/replay-B.log" 2 | tee -a "$OUT/corpus.txt"
    drop gmc_b; continue
  fi
  if [ -n "$SCHEMA_DIFF" ]; then
    if ! dump gmc_b "$P/B"; then say "$label: pg_dump of B's replay failed (see $P)"; drop gmc_b; continue; fi
  fi
  drop gmc_b
  N=$((N + 1))

  if [ -n "$SCHEMA_DIFF" ]; then
    # 2'. the diff's script on a deploy of A, compared with the replay of B
    if ! fresh gmc_tool; then say "$label: cannot create the tool's database"; continue; fi
    GMA=(-C "$g" --project "${pdir:-.}" --database-url "$(url gmc_tool)")
    [ "$cv" = 3 ] && GMA+=(--database-name "$dbn")
    log=$P/tool.log; : >"$log"
    rc=0
    timeout "$GM_TIMEOUT" "$GM" --color never "${GMA[@]}" diff "$A" "$B" --schema-only \
      --scratch-url "postgresql:///postgres?host=$WORK&user=postgres" \
      --prelude-sql "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE EXTENSION IF NOT EXISTS postgis;" \
      >"$P/diff.sql" 2>"$P/diff.err" </dev/null || rc=$?
    if [ "$rc" -gt 1 ]; then
      say "$label: diff failed (exit $rc)"; errhead "$P/diff.err" 4 | tee -a "$OUT/corpus.txt"
      drop gmc_tool; continue
    fi
    if ! gm "$log" "${GMA[@]}" deploy "$A" --yes "${GM_FLAGV[@]}"; then
      say "$label: deploy A failed"; drop gmc_tool; continue
    fi
    if ! "$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -d gmc_tool -f "$P/diff.sql" >"$P/diff-run.log" 2>&1; then
      say "$label: the diff's script fails on A ($(grep -c ';$' "$P/diff.sql") statements)"; errhead "$P/diff-run.log" 3 | tee -a "$OUT/corpus.txt"
      drop gmc_tool; continue
    fi
    if ! dump gmc_tool "$P/tool"; then say "$label: pg_dump after the diff failed (see $P)"; drop gmc_tool; continue; fi
    drop gmc_tool
    if cmp -s "$P/B.norm" "$P/tool.norm"; then
      K=$((K + 1)); say "$label: equal ($(grep -c ';$' "$P/diff.sql") statements)"
    else
      say "$label: differs from the replay of B ('-' replay of B, '+' A with the diff)"
      python3 "$WORK/firstdiff.py" "$P/B.norm" "$P/tool.norm" "$DIFF_LINES" | tee -a "$OUT/corpus.txt"
    fi
    continue
  fi

  # 2. the tool: deploy A, deploy B, rollback A on one database
  if ! fresh gmc_tool; then say "$label: cannot create the tool's database"; continue; fi
  GMA=(-C "$g" --project "${pdir:-.}" --database-url "$(url gmc_tool)")
  [ "$cv" = 3 ] && GMA+=(--database-name "$dbn")
  log=$P/tool.log; : >"$log"
  failed=
  for step in "deploy $A" "deploy $B" "rollback $A"; do
    read -r verb rev <<<"$step"
    : >"$log.cur"
    if gm "$log" "${GMA[@]}" "$verb" "$rev" --yes "${GM_FLAGV[@]}"; then :; else
      rc=$?
      failed="$verb ${rev:0:8} failed (exit $rc)"
      [ "$rc" = 124 ] && failed="$verb ${rev:0:8} timed out after ${GM_TIMEOUT}s"
      errhead "$log.cur" 4 >"$P/tool.err"
      break
    fi
  done
  rm -f "$log.cur"
  if [ -n "$failed" ]; then
    say "$label: $failed"; tee -a "$OUT/corpus.txt" <"$P/tool.err"
    drop gmc_tool; continue
  fi

  # 3. compare with the replay of A
  if ! dump gmc_tool "$P/tool"; then say "$label: pg_dump after the rollback failed (see $P)"; drop gmc_tool; continue; fi
  drop gmc_tool
  if cmp -s "$P/A.norm" "$P/tool.norm"; then
    K=$((K + 1)); say "$label: equal"
  else
    say "$label: differs from the replay of A ('-' replay of A, '+' after rollback)"
    python3 "$WORK/firstdiff.py" "$P/A.norm" "$P/tool.norm" "$DIFF_LINES" | tee -a "$OUT/corpus.txt"
  fi
done 3< <(tail -n +$((SKIP + 1)) "$TSV")

say ""
say "$N eligible of $M pairs; $K of $N end equal"
