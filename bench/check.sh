#!/usr/bin/env bash
# git-migrate benchmark for the git hooks' work (design §8, issue 4):
#   1. `check A..B` on the 20,000-commit / 10,000-migration repository: ranges of 1, 10, 100 and
#      1,000 commits, and the same 100-commit range in a 101-commit shallow clone of it (same
#      trees, 200x shorter history) -- the cost should follow the changed files, not the history.
#      The migration linter is on (the default); the 100-commit range is also timed with
#      --no-lint.
#   2. `verify` of 100 migrations (up, fingerprint, down, fingerprint, up) in a scratch cluster.
#   1b. the linter alone: `check` of one commit adding the bench/run.sh workload's 1,000
#      migrations (2,000 files linted) with and without --no-lint.
#
#   bash bench/check.sh [--runs N] [--repo DIR] [--bin PATH] [--skip-verify]
#
#   --runs N       timed runs per figure (median printed; default 9, plus 1 warm-up)
#   --repo DIR     the generated big repository (default /tmp/gm-bench-repo, shared with run.sh;
#                  generated with ../shared/bench/gen-repo.py when missing, 1-3 minutes)
#   --bin PATH     the git-migrate binary (default target/release/git-migrate; built if missing)
#   --skip-verify  only part 1
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=9
BIG=${GM_BENCH_REPO:-/tmp/gm-bench-repo}
BIN=$ROOT/target/release/git-migrate
GEN_REPO=${GEN_REPO:-$ROOT/../shared/bench/gen-repo.py}
SKIP_VERIFY=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --repo) BIG=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --skip-verify) SKIP_VERIFY=1; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -q) || die "cannot build $BIN"
WORK=$(mktemp -d /tmp/gm-bench-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if ! git -C "$BIG" rev-parse -q --verify HEAD >/dev/null 2>&1; then
  [ -f "$GEN_REPO" ] || die "gen-repo.py not found at $GEN_REPO (set GEN_REPO=...)"
  echo "generating $BIG with $GEN_REPO (1-3 minutes) ..."
  python3 "$GEN_REPO" "$BIG.tmp.$$" >/dev/null && mv "$BIG.tmp.$$" "$BIG"
fi

# median wall time in ms of RUNS runs (after one warm-up) of the command; exit 0 or 1 accepted
median_ms() {
  python3 - "$RUNS" "$@" <<'EOF'
import subprocess, sys, time, statistics
runs = int(sys.argv[1]); cmd = sys.argv[2:]
def once():
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode not in (0, 1):
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode()}")
    return (time.perf_counter() - t) * 1000
once()
ts = sorted(once() for _ in range(runs))
print(f"{statistics.median(ts):.1f} {ts[0]:.1f} {ts[-1]:.1f}")
EOF
}

commits=$(git -C "$BIG" rev-list --count HEAD)
migs=$(git -C "$BIG" ls-tree -d --name-only HEAD migrations/ | wc -l)
echo "== 1. check on $BIG: $commits commits, $migs migrations at HEAD"
printf '%-34s %8s %9s %12s %s\n' "range" "commits" "changed" "median ms" "(min-max)"
for n in 1 10 100 1000; do
  changed=$(git -C "$BIG" diff --name-only "HEAD~$n" HEAD | wc -l)
  read -r med lo hi < <(median_ms "$BIN" -C "$BIG" check "HEAD~$n..HEAD")
  printf '%-34s %8s %9s %12s (%s-%s)\n' "HEAD~$n..HEAD" "$n" "$changed files" "$med" "$lo" "$hi"
  [ "$n" = 100 ] && BIG100=$med
done
git clone -q --no-local --depth 101 "file://$BIG" "$WORK/shallow"
sc=$(git -C "$WORK/shallow" rev-list --count HEAD)
read -r med lo hi < <(median_ms "$BIN" -C "$WORK/shallow" check "HEAD~100..HEAD")
printf '%-34s %8s %9s %12s (%s-%s)\n' "HEAD~100..HEAD, $sc-commit clone" 100 "same" "$med" "$lo" "$hi"
python3 - "$BIG100" "$med" "$commits" "$sc" <<'EOF'
import sys
big, small, cb, cs = map(float, sys.argv[1:])
print(f"100-commit range: {big:.1f} ms with {int(cb)} commits of history, {small:.1f} ms with {int(cs)}: "
      f"x{big/small:.2f} for {cb/cs:.0f}x the history  (target: < 100 ms)  -> {'OK' if big < 100 else 'MISS'}")
EOF
read -r nolint lo hi < <(median_ms "$BIN" -C "$BIG" check "HEAD~100..HEAD" --no-lint)
echo "100-commit range without the linter (--no-lint): $nolint ms (with it: $BIG100 ms)"

echo
echo "== 1b. the linter on 1,000 migrations"
python3 "$HERE/make_workload.py" 1000 "$WORK/wl" --commits 1 >/dev/null
read -r on lo hi < <(median_ms "$BIN" -C "$WORK/wl/repo" check HEAD)
read -r off lo hi < <(median_ms "$BIN" -C "$WORK/wl/repo" check HEAD --no-lint)
python3 - "$on" "$off" <<'EOF'
import sys
on, off = map(float, sys.argv[1:])
print(f"check of one commit adding 1,000 migrations: {on:.1f} ms linted, {off:.1f} ms with --no-lint: "
      f"lint of 2,000 files (1,000 up + 1,000 down) {on-off:.1f} ms  (target: < 500 ms)  -> {'OK' if on-off < 500 else 'MISS'}")
EOF

[ "$SKIP_VERIFY" = 1 ] && exit 0
echo
echo "== 2. verify of 100 migrations"
python3 "$GEN_REPO" --migrations 100 --commits 101 --track-every 1000 --edit-every 100000 "$WORK/v100" >/dev/null
nv=$(git -C "$WORK/v100" ls-tree -d --name-only HEAD migrations/ | wc -l)
t0=${EPOCHREALTIME/./}
"$BIN" -C "$WORK/v100" verify --json >"$WORK/verify.json" || true
us=$(( ${EPOCHREALTIME/./} - t0 ))
python3 - "$WORK/verify.json" "$us" "$nv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); s = int(sys.argv[2]) / 1e6
print(f"verify: {d['verified']} of {sys.argv[3]} migrations, {d['reversed']} reversed, "
      f"{len(d['findings'])} findings, {s:.1f} s wall (tool reports {d['seconds']:.1f} s, "
      f"including starting a scratch cluster)  (target: < 60 s)  -> {'OK' if s < 60 else 'MISS'}")
for f in d['findings'][:5]:
    print(f"  {f['rule']} {f['path']}: {f['message'][:160]}")
EOF
