#!/usr/bin/env bash
# bench/metadata.sh: design §14 "Metadata: build + diff of a 5,000-table v3 metadata tree:
# <= 300 ms", measured as `git-migrate -C repo metadata diff a b` on a generated config v3
# repository (bench/make_metadata_repo.py); `metadata diff empty a` gives the time of one full
# build of the 5,000-table snapshot. No database is involved. See bench/README.md.
#
#   bash bench/metadata.sh [--runs N] [--repo DIR] [--bin PATH] [--out DIR]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=9
CACHE=${GM_BENCH_META:-/tmp/gm-bench-meta}
BIN=
OUT=/tmp/gm-bench-meta-last
TARGET_MS=300

die() { echo "metadata.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }
hdr() { printf '\n== %s\n' "$*"; }

while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --repo) CACHE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive integer"
command -v git >/dev/null || die "git not found"
command -v python3 >/dev/null || die "python3 not found"

# ---------------------------------------------------------------------------- binary
if [ -z "$BIN" ]; then
  BIN=$ROOT/target/release/git-migrate
  # build when missing, or when older than the sources (a stale binary may not even have
  # `metadata diff`); cargo is a no-op when it is up to date
  if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    say "building the release binary (cargo build --release; it is missing or older than src/) …"
    if ! (cd "$ROOT" && cargo build --release) >&2; then
      [ -x "$BIN" ] || die "cargo build --release failed"
      say "warning: cargo build --release failed; measuring the existing, older $BIN"
    fi
  fi
fi
[ -x "$BIN" ] || die "no binary at $BIN"

WORK=$(mktemp -d /tmp/gm-bench-meta-work.XXXXXX)
GEN_TMP=
cleanup() { [ -n "$GEN_TMP" ] && rm -rf "$GEN_TMP"; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
# measure a private copy, so that a concurrent `cargo build` cannot swap the binary mid-run
cp "$BIN" "$WORK/git-migrate"; BIN_SRC=$BIN; BIN=$WORK/git-migrate
"$BIN" metadata diff --help >/dev/null 2>&1 || die "$BIN_SRC has no 'metadata diff' command (stale build?)"

if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/results.tsv" ]; then
  die "--out $OUT is not empty and not an earlier output of this script; refusing to empty it"
fi
rm -rf "$OUT"; mkdir -p "$OUT"
RES=$OUT/results.tsv; : >"$RES"

say "git-migrate metadata benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  runs=$RUNS"
say "binary  $BIN_SRC ($("$BIN" --version 2>/dev/null), built $(stat -c %y "$BIN_SRC" | cut -d. -f1);" \
    "tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' + uncommitted src changes'))"
say "load $(cut -d' ' -f1-3 /proc/loadavg) | $(nproc) cores | output $OUT"
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD1" -v n="$(nproc)" 'BEGIN{exit !(l > n * 0.5)}'; then
  say "warning: 1-minute load $LOAD1 on $(nproc) cores: other work competes for the CPUs, timings will be noisy"
fi

# ---------------------------------------------------------------------------- repository
hdr "repository: config v3, 5,000 tables in per-table files; tags a, b and empty ($CACHE)"
GEN=$HERE/make_metadata_repo.py
GEN_SUM=$(sha256sum "$GEN" | cut -c1-16)
if [ -f "$CACHE/expect.json" ] && [ "$(cat "$CACHE/generator" 2>/dev/null)" = "$GEN_SUM" ] \
   && git -C "$CACHE/repo" rev-parse -q --verify refs/tags/b >/dev/null 2>&1 \
   && git -C "$CACHE/repo" rev-parse -q --verify refs/tags/empty >/dev/null 2>&1; then
  say "using the cached repository (delete $CACHE to regenerate)"
else
  rm -rf "$CACHE"
  GEN_TMP=$CACHE.tmp.$$
  t0=${EPOCHREALTIME/./}
  python3 "$GEN" "$GEN_TMP" | sed 's/^/  /'
  echo "$GEN_SUM" >"$GEN_TMP/generator"
  mv "$GEN_TMP" "$CACHE"; GEN_TMP=
  say "generated in $(( (${EPOCHREALTIME/./} - t0) / 1000000 )) s (make_metadata_repo.py $GEN_SUM)"
fi
REPO=$CACHE/repo
EXPECT=$CACHE/expect.json
files_at() { git -C "$REPO" ls-tree -r --name-only "$1" -- metadata | wc -l; }
say "a $(git -C "$REPO" rev-parse --short a): $(files_at a) metadata files, b $(git -C "$REPO" rev-parse --short b): $(files_at b);" \
    "$(du -sm "$REPO/.git" | cut -f1) MB .git (packed); $(git -C "$REPO" diff --shortstat a b)"

GM=("$BIN" --color never -C "$REPO")

# ---------------------------------------------------------------------------- sanity
hdr "check: metadata diff a b --json"
"${GM[@]}" --json metadata diff a b >"$OUT/diff-a-b.json" 2>"$OUT/diff-a-b.stderr" \
  || { cat "$OUT/diff-a-b.stderr" >&2; die "metadata diff a b --json failed"; }
"${GM[@]}" --json metadata diff a a >"$OUT/diff-a-a.json" 2>"$OUT/diff-a-a.stderr" \
  || { cat "$OUT/diff-a-a.stderr" >&2; die "metadata diff a a --json failed"; }
"${GM[@]}" --json metadata diff empty a >"$OUT/diff-empty-a.json" 2>"$OUT/diff-empty-a.stderr" \
  || { cat "$OUT/diff-empty-a.stderr" >&2; die "metadata diff empty a --json failed"; }
python3 - "$OUT/diff-a-b.json" "$OUT/diff-a-a.json" "$EXPECT" "$RES" "$OUT/diff-empty-a.json" <<'EOF' || die "WRONG DIFF: metadata diff a b (or empty a) does not report the generated changes (see $OUT/diff-a-b.json, $OUT/diff-empty-a.json)"
import json, os, sys
ab_path, aa_path, exp_path, res, ea_path = sys.argv[1:6]
ab, aa, exp, ea = (json.load(open(p)) for p in (ab_path, aa_path, exp_path, ea_path))
ch = ab["changes"]
bad = []
got = {k: sorted(c["object"] for c in ch if c["section"] == "tables" and c["change"] == k)
       for k in ("changed", "added", "removed")}
for k in ("changed", "added", "removed"):
    if got[k] != exp["tables"][k]:
        bad.append(f"tables {k}: expected {len(exp['tables'][k])} {exp['tables'][k][:3]}…, "
                   f"got {len(got[k])} {got[k][:3]}…")
others = [c for c in ch if c["section"] != "tables"]
if others:
    bad.append(f"{len(others)} unexpected change(s) outside tables, e.g. {others[0]}")
if len(ch) != exp["total"]:
    bad.append(f"{len(ch)} changes in all, expected {exp['total']}")
# every changed table must say which permission's columns changed
vague = [c["object"] for c in ch if c["change"] == "changed"
         and not any("permission" in d and "columns" in d for d in c["details"])]
if vague:
    bad.append(f"{len(vague)} changed table(s) without a permission/columns detail, e.g. {vague[0]}")
if aa["changes"]:
    bad.append(f"metadata diff a a reports {len(aa['changes'])} change(s), expected none")
# empty -> a: every table of a added, nothing else happens to tables
ea_tables = [(c["change"], c["object"]) for c in ea["changes"] if c["section"] == "tables"]
ea_added = sum(1 for k, _ in ea_tables if k == "added")
if ea_added != exp["tables_a"] or len(ea_tables) != ea_added:
    bad.append(f"metadata diff empty a: {ea_added} tables added of {len(ea_tables)} table changes, "
               f"expected {exp['tables_a']} added")
ntables = len({c["object"] for c in ch if c["section"] == "tables"})
print(f"diff a b --json: {os.path.getsize(ab_path):,} bytes, {len(ch)} changes, {ntables} tables "
      f"({len(got['changed'])} changed, {len(got['added'])} added, {len(got['removed'])} removed; "
      f"expected {exp['total']}); diff a a --json: {len(aa['changes'])} changes; "
      f"diff empty a --json: {len(ea['changes'])} changes ({ea_added} tables added)")
with open(res, "a") as f:
    f.write(f"changes_ab\tinfo\t0\t{len(ch)}\njson_bytes_ab\tinfo\t0\t{os.path.getsize(ab_path)}\n")
for b in bad:
    print("  MISMATCH: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# ---------------------------------------------------------------------------- timings
# timed METRIC CMD… : N runs after one untimed warm-up, wall time in µs via $EPOCHREALTIME
# (fork/exec and process start included); stdout to a file in $OUT, like a redirected terminal
timed() {
  local m=$1; shift
  "$@" >"$OUT/$m.out" 2>"$OUT/$m.stderr" || { cat "$OUT/$m.stderr" >&2; die "$m failed: $*"; }
  local r t0 t1
  for r in $(seq 1 "$RUNS"); do
    t0=${EPOCHREALTIME/./}
    "$@" >"$OUT/$m.out" 2>"$OUT/$m.stderr" || { cat "$OUT/$m.stderr" >&2; die "$m failed: $*"; }
    t1=${EPOCHREALTIME/./}
    printf '%s\ttool\t%s\t%s\n' "$m" "$r" "$((t1 - t0))" >>"$RES"
  done
}
# stat_of METRIC -> "median M ms (min …, max …, n=…)"; med_of METRIC -> the median in ms
STATS_PY='import statistics, sys
v = [int(l.split("\t")[3]) / 1000 for l in open(sys.argv[1]) if l.startswith(sys.argv[2] + "\t")]
m = statistics.median(v)
print(f"{m:.1f}" if sys.argv[3] == "med" else f"median {m:.0f} ms (min {min(v):.0f}, max {max(v):.0f}, n={len(v)})")'
stat_of() { python3 -c "$STATS_PY" "$RES" "$1" line; }
med_of() { python3 -c "$STATS_PY" "$RES" "$1" med; }

hdr "timings: $RUNS runs each after one warm-up, wall clock incl. process start"
timed diff_ab "${GM[@]}" metadata diff a b
say "metadata diff a b                    $(stat_of diff_ab)   [$(head -n1 "$OUT/diff_ab.out")]"
AB_MS=$(med_of diff_ab)
timed diff_aa "${GM[@]}" metadata diff a a
say "metadata diff a a  (no change)       $(stat_of diff_aa)   [$(head -n1 "$OUT/diff_aa.out")]"
AA_MS=$(med_of diff_aa)
timed full_ea "${GM[@]}" metadata diff empty a
say "metadata diff empty a (full build)   $(stat_of full_ea)   [$(head -n1 "$OUT/full_ea.out")]"
EA_MS=$(med_of full_ea)
timed diff_ab_unified "${GM[@]}" metadata diff a b --format unified
say "metadata diff a b --format unified   $(stat_of diff_ab_unified)   [$(wc -l <"$OUT/diff_ab_unified.out") lines, $(wc -c <"$OUT/diff_ab_unified.out") bytes]"
UNI_MS=$(med_of diff_ab_unified)
timed diff_ab_json "${GM[@]}" --json metadata diff a b
say "metadata diff a b --json             $(stat_of diff_ab_json)"
# floor: the process start alone
timed version "$BIN" --version
say "git-migrate --version (process start floor)  $(stat_of version)"

# ---------------------------------------------------------------------------- peak RSS
hdr "peak RSS (/usr/bin/time -v)"
if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq time >/dev/null 2>&1 || true
fi
RSS_KB=
if [ -x /usr/bin/time ]; then
  for m in ab:"a b" aa:"a a" ea:"empty a"; do
    /usr/bin/time -v "${GM[@]}" metadata diff ${m#*:} >/dev/null 2>"$OUT/time-v-${m%%:*}.txt" || true
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$OUT/time-v-${m%%:*}.txt")
    cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.0f", (u+s)*1000}' "$OUT/time-v-${m%%:*}.txt")
    printf 'rss_%s\tinfo\t0\t%s\n' "${m%%:*}" "$rss" >>"$RES"
    say "metadata diff ${m#*:}: peak RSS $rss kB ($(awk -v k="$rss" 'BEGIN{printf "%.1f MB", k/1024}')), CPU ${cpu} ms (user+sys)"
    if [ "${m%%:*}" = ab ]; then RSS_KB=$rss; fi
  done
else
  say "/usr/bin/time not available: peak RSS not measured"
fi

# ---------------------------------------------------------------------------- summary
hdr "summary  (load $(cut -d' ' -f1-3 /proc/loadavg))"
RESULT=$(awk -v m="$AB_MS" -v t="$TARGET_MS" 'BEGIN{print (m <= t) ? "PASS" : "MISS"}')
printf '%-62s %12s %10s  %s\n' "figure" "measured" "target" "result"
printf '%-62s %9.0f ms %10s  %s\n' "metadata diff a b (2 revisions of 5,000 tables + diff + start)" "$AB_MS" "<= $TARGET_MS ms" "$RESULT"
printf '%-62s %9.0f ms %10s\n' "metadata diff empty a (1 full build of 5,000 tables + diff)" "$EA_MS" "-"
printf '%-62s %9.0f ms %10s\n' "metadata diff a a (equal metadata trees)" "$AA_MS" "-"
printf '%-62s %9.0f ms %10s\n' "metadata diff a b --format unified" "$UNI_MS" "-"
if [ -n "$RSS_KB" ]; then
  printf '%-62s %9.1f MB %10s\n' "peak RSS of metadata diff a b" "$(awk -v k="$RSS_KB" 'BEGIN{print k/1024}')" "-"
fi
say ""
say "'metadata diff a b' reads both revisions from git objects; files with the same blob id in"
say "both that include nothing are not parsed (content addressing): it parses the ~30 changed"
say "table files and reads the two tables.yaml include lists. 'metadata diff empty a' has nothing"
say "in common to skip: it parses all 5,000+ files of a (on all cores), one full build as"
say "plan/deploy do it."
say "$RESULT: metadata diff a b median $AB_MS ms vs target <= $TARGET_MS ms"
say "raw timings: $RES   outputs: $OUT"
