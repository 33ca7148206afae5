#!/usr/bin/env python3
"""Figures of the code's shape (issue 14): the module graph, `pub` items, the longest functions.

    python3 bench/house.py [TREE]

TREE is a checkout (default: this one). It reads every crate under TREE (the root `src/` and
`crates/*/src/`), builds the graph of modules (one node a file, one edge a `crate::`/`super::`/
other-crate path that resolves to another file), and prints:

- the cycles (strongly connected components of more than one file);
- the upward edges: from the core into the command layer (`cli`), which the layering test
  (`tests/test_layering.rs`) forbids;
- the number of `pub` items (`pub` alone, not `pub(crate)`/`pub(super)`) outside the command layer;
- the 10 longest functions (lines from `fn` to its closing brace).

The layering test is the rule; this script only measures, so that a closing note can give the
same figures for any revision (run it on a `git worktree` of the older commit).
"""

import os
import re
import sys
from collections import defaultdict

TREE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))


def crates(tree):
    """(crate name as written in paths, src dir) for every crate of the tree."""
    out = []
    root_src = os.path.join(tree, "src")
    if os.path.isdir(root_src):
        out.append(("git_migrate", root_src))
    cdir = os.path.join(tree, "crates")
    if os.path.isdir(cdir):
        for name in sorted(os.listdir(cdir)):
            src = os.path.join(cdir, name, "src")
            manifest = os.path.join(cdir, name, "Cargo.toml")
            if os.path.isdir(src) and os.path.exists(manifest):
                m = re.search(r'^name\s*=\s*"([^"]+)"', open(manifest).read(), re.M)
                out.append((m.group(1).replace("-", "_"), src))
    return out


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_tests(text):
    """Blanks `#[cfg(test)] mod … { … }` blocks (after `strip_comments`), keeping line numbers."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + "\n" * text.count("\n", m.start(), i) + text[i:]


def strip_comments(text):
    """Drops comments and the contents of string literals (a `/*` inside a glob is not a comment)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            start, depth, i = i, 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append("\n" * text.count("\n", start, i))
        elif re.match(r'r#*"', text[i : i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            stop = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, stop))
            i = stop
        elif c == '"':
            start, i = i, i + 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""' + "\n" * text.count("\n", start, i))
        elif c == "'" and re.match(r"'(?:\\.|[^\\'])'", text[i : i + 4]):
            j = text.index("'", i + 1 + (text[i + 1] == "\\"))
            out.append("' '")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree_text):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree_text = tree_text.strip()
    i = tree_text.find("{")
    if i < 0:
        return [tree_text.split(" as ")[0].strip()]
    prefix = tree_text[:i]
    body = tree_text[i + 1 : tree_text.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            for e in expand_use(p):
                out.append(prefix + e)
    return out


def main():
    cs = crates(TREE)
    modules = {}  # (crate, path tuple) -> file
    texts = {}
    for crate, src in cs:
        for dirpath, _, files in os.walk(src):
            for f in files:
                if f.endswith(".rs"):
                    p = os.path.join(dirpath, f)
                    key = (crate, module_of(src, p))
                    modules[key] = p
                    texts[key] = strip_tests(strip_comments(open(p).read()))
    names = {c for c, _ in cs}

    def resolve(crate, segs):
        for n in range(len(segs), 0, -1):
            k = (crate, tuple(segs[:n]))
            if k in modules:
                return k
        return None

    edges = set()
    for (crate, mod), text in texts.items():
        if not mod:
            continue  # the crate root declares modules; that is not a dependency
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            paths += expand_use(m.group(1))
        paths += re.findall(r"\b((?:crate|super|%s)(?:::\w+)+)" % "|".join(names), text)
        for p in paths:
            segs = [s for s in re.split(r"::", p.replace(" ", "").replace("\n", "")) if s]
            if not segs:
                continue
            if segs[0] == "crate":
                target = resolve(crate, segs[1:])
            elif segs[0] in ("super", "self"):
                # Module paths, not file paths: `super` of `a::b` is `a` (a/b.rs or a/b/mod.rs).
                base = list(mod)
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        base = base[:-1]
                    segs = segs[1:]
                target = resolve(crate, base + segs)
            elif segs[0] in names:
                target = resolve(segs[0], segs[1:])
            else:
                continue
            if target and target != (crate, mod) and target[1]:
                edges.add(((crate, mod), target))

    def show(k):
        return "/".join(k[1]) or k[0]

    # Strongly connected components (Tarjan, iterative enough for this size).
    graph = defaultdict(list)
    for a, b in edges:
        graph[a].append(b)
    sys.setrecursionlimit(10000)
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in list(modules):
        if v not in index:
            strong(v)

    def is_cli(k):
        return k[1][:1] == ("cli",) or k[0].endswith("_cli") or k[0] == "git_migrate" and any(
            c.endswith("_core") for c in names
        )

    upward = sorted((a, b) for a, b in edges if is_cli(b) and not is_cli(a))

    pub_items = 0
    for key, p in modules.items():
        if is_cli(key):
            continue
        for line in texts[key].splitlines():
            if re.match(r"\s*pub\s+(?:async\s+|unsafe\s+|const\s+)*(fn|struct|enum|trait|type|const|static|mod|use)\b", line):
                pub_items += 1

    fns = []
    for key, p in modules.items():
        lines = texts[key].splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+|async\s+|unsafe\s+)*fn\s+(\w+)", lines[i])
            if m:
                depth, started, j = 0, False, i
                while j < len(lines):
                    code = lines[j]
                    depth += code.count("{") - code.count("}")
                    started = started or "{" in code
                    if started and depth <= 0:
                        break
                    if not started and code.rstrip().endswith(";"):
                        break
                    j += 1
                if started:
                    fns.append((j - i + 1, os.path.relpath(p, TREE), m.group(1)))
                i = j + 1 if started else i + 1
            else:
                i += 1
    fns.sort(reverse=True)

    total = sum(len(open(p).read().splitlines()) for p in modules.values())
    cli_lines = sum(len(open(p).read().splitlines()) for k, p in modules.items() if is_cli(k))
    print(f"tree: {TREE}")
    print(f"crates: {', '.join(c for c, _ in cs)}; files: {len(modules)}; lines: {total} (command layer {cli_lines})")
    print(f"module edges: {len(edges)}")
    print(f"cycles: {len(sccs)}")
    for comp in sccs:
        print("  " + " <-> ".join(show(k) for k in comp))
    print(f"upward edges (core -> command layer): {len(upward)}")
    for a, b in upward:
        print(f"  {show(a)} -> {show(b)}")
    print(f"pub items outside the command layer: {pub_items}")
    print("10 longest functions:")
    for n, f, name in fns[:10]:
        print(f"  {n:4d}  {name}  ({f})")


main()
