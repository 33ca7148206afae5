#!/usr/bin/env python3
"""Medians, paired ratios and the PASS/MISS summary for bench/run.sh.

    python3 stats.py RESULTS.tsv line METRIC      one line: medians of tool and floor, ratios
    python3 stats.py RESULTS.tsv summary          the final table

RESULTS.tsv rows (tab separated): metric, side, run, value
  side  = tool | floor | info      (info: a single value, e.g. peak RSS in kB, a count)
  value = microseconds for timings, else the raw number
Timings of one metric with the same run number are a pair (measured back to back, order
alternating). "ratio" = median(tool) / median(floor); "paired" = the median of the per-pair
ratios tool/floor (the statistic the peer benchmark reported, and the one PASS/MISS uses:
each pair shares the machine's load of that moment, so it survives the drift that moves
whole pairs by +-30% on shared cores); "ratio of minimums" = min(tool) / min(floor).
"""
import statistics
import sys
from collections import defaultdict

# metric -> (label, target kind, target value, target text)
TARGETS = {
    "deploy": ("deploy 1,000 migrations (one tx)", "ratio", 1.15, "paired <= 1.15x psql -1 -f all_up.sql"),
    "rollback": ("rollback all 1,000", "ratio", 1.15, "paired <= 1.15x psql -1 -f all_down.sql"),
    "status10k": ("status, nothing to do, 10k migrations / 20k commits", "abs_ms", 150.0, "<= 150 ms"),
    "rss_status10k": ("  peak RSS of that status", "abs_mb", 64.0, "<= 64 MB"),
    "stmts_status10k": ("  SQL statements of that status (server log)", "count", 3, "<= 3"),
    "status1k": ("status, nothing to do, 1k migrations", "ratio", 1.5, "paired <= 1.5x psql -c 'select 1'"),
}
ORDER = ["deploy", "rollback", "status10k", "rss_status10k", "stmts_status10k", "status1k"]


def load(path):
    data = defaultdict(lambda: defaultdict(dict))  # metric -> side -> run -> value
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            m, side, run, v = parts
            data[m][side][run] = float(v)
    return data


def figures(data, m):
    d = data.get(m)
    if not d:
        return None
    tool = list(d.get("tool", {}).values())
    floor = list(d.get("floor", {}).values())
    out = {"n": len(tool)}
    if tool:
        out["tool"] = statistics.median(tool) / 1e6
        out["tool_min"] = min(tool) / 1e6
        out["tool_max"] = max(tool) / 1e6
    if floor:
        out["floor"] = statistics.median(floor) / 1e6
    if tool and floor:
        out["ratio"] = out["tool"] / out["floor"]
        out["min_ratio"] = min(tool) / min(floor)
        pairs = [d["tool"][r] / d["floor"][r] for r in d["tool"] if r in d["floor"]]
        if pairs:
            out["paired"] = statistics.median(pairs)
            out["paired_min"], out["paired_max"] = min(pairs), max(pairs)
    if "info" in d:
        out["info"] = list(d["info"].values())[0]
    return out


def fmt_s(x):
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.3f} s"


def line(data, m):
    f = figures(data, m)
    if not f:
        return "(not measured)"
    if "tool" not in f:
        return f"{f.get('info')}"
    s = f"tool median {fmt_s(f['tool'])} (min {fmt_s(f['tool_min'])}, max {fmt_s(f['tool_max'])}, n={f['n']})"
    if "floor" in f:
        s += f" | floor median {fmt_s(f['floor'])} | ratio of medians x{f['ratio']:.3f}"
        if "paired" in f:
            s += f" | median paired ratio x{f['paired']:.3f} (range x{f['paired_min']:.2f}-x{f['paired_max']:.2f})"
        if f["n"] > 1:
            s += f" | ratio of minimums x{f['min_ratio']:.3f}"
    return s


def summary(data):
    rows = []
    for m in ORDER:
        label, kind, target, ttext = TARGETS[m]
        f = figures(data, m)
        if f is None:
            rows.append((label, "not measured", ttext, "-"))
            continue
        if kind == "ratio":
            if "ratio" not in f:
                rows.append((label, "failed", ttext, "MISS"))
                continue
            val = f.get("paired", f["ratio"])
            shown = (f"x{val:.3f} paired (medians {fmt_s(f['tool'])} vs {fmt_s(f['floor'])}"
                     f" = x{f['ratio']:.3f}; minimums x{f['min_ratio']:.3f})")
        elif kind == "abs_ms":
            if "tool" not in f:
                rows.append((label, "failed", ttext, "MISS"))
                continue
            val = f["tool"] * 1000
            shown = f"{val:.1f} ms"
            if "floor" in f:
                shown += f" (floor {f['floor'] * 1000:.1f} ms, x{f['ratio']:.2f})"
        elif kind == "abs_mb":
            val = f["info"] / 1024
            shown = f"{val:.1f} MB"
        else:
            val = f["info"]
            shown = f"{int(val)}"
        rows.append((label, shown, ttext, "PASS" if val <= target else "MISS"))
    w = [max(len(r[i]) for r in rows + [("figure", "measured", "target", "result")]) for i in range(4)]
    out = []
    hdr = ("figure", "measured", "target", "result")
    out.append("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    out.append("  ".join("-" * w[i] for i in range(4)))
    for r in rows:
        out.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    return "\n".join(out)


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    data = load(path)
    if cmd == "line":
        print(line(data, sys.argv[3]))
    elif cmd == "summary":
        print(summary(data))
    elif cmd == "get":  # get METRIC KEY -> one number (for the script)
        f = figures(data, sys.argv[3]) or {}
        v = f.get(sys.argv[4])
        print("" if v is None else v)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
