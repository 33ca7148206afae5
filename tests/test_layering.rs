//! The core keeps its layers (issue 14): the module graph of `crates/core/src` is read from the
//! sources, as the source scans of `test_pooler` read them, and every edge must run to the same
//! layer or a lower one, no chain of edges may close a cycle, nothing may name the command-line
//! crate, and nothing may print. The layers are the ones the core's top-level doc comment lists
//! (`crates/core/src/lib.rs`, "Layers"): that list is the one copy of the rule, and this test
//! reads it.
//!
//! The command-line crate (`src/`) may use anything in the core; its own files must not form
//! cycles either.

use crate::common::source::{code_only, rust_files, without_tests};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module: its path below the crate root (`["verify", "replay"]`; empty for the root).
type Module = Vec<String>;

/// The files of one crate, as code: comments, string contents and `#[cfg(test)] mod` blocks
/// blanked out.
struct Crate {
    files: BTreeMap<Module, String>,
}

fn read_crate(src: &Path) -> Crate {
    let mut files = BTreeMap::new();
    for (path, text) in rust_files(&[src.to_path_buf()]) {
        let rel = path.strip_prefix(src).unwrap().with_extension("");
        let mut module: Module = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let last = module.last().cloned().unwrap_or_default();
        if matches!(last.as_str(), "mod" | "lib" | "main") {
            module.pop();
        }
        files.insert(module, without_tests(&code_only(&text)));
    }
    Crate { files }
}

/// Every path a file names: `use` trees expanded (`a::{b, c::d}`), and paths in code.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        for p in expand_use(after[..end].trim()) {
            out.push(split_path(&p));
        }
        rest = &after[end..];
    }
    // Paths in expressions and types: a run of `ident::ident…`.
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && (is_ident(bytes[i]) || code[i..].starts_with("::")) {
                i += if bytes[i] == b':' { 2 } else { 1 };
            }
            let p = &code[start..i];
            if p.contains("::") {
                out.push(split_path(p));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn find_word(s: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(n) = s[from..].find(word) {
        let at = from + n;
        let before = s[..at].chars().next_back();
        let after = s[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary(before) && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn split_path(p: &str) -> Vec<String> {
    p.split("::")
        .map(|s| s.split_whitespace().collect::<String>())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().trim().to_string()];
    };
    let prefix = &tree[..open];
    let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for ch in body.chars() {
        match ch {
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            '{' => {
                depth += 1;
                cur.push(ch)
            }
            '}' => {
                depth -= 1;
                cur.push(ch)
            }
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand_use(p))
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

impl Crate {
    /// The file a path names, if it names one of this crate's (the longest prefix that is a
    /// module).
    fn resolve(&self, from: &Module, path: &[String], own_name: &str) -> Option<Module> {
        let mut segs: Vec<String> = path.to_vec();
        let base: Vec<String> = match segs.first().map(String::as_str) {
            Some("crate") => {
                segs.remove(0);
                vec![]
            }
            Some(name) if name == own_name => {
                segs.remove(0);
                vec![]
            }
            Some("super") | Some("self") => {
                // Module paths, not file paths: `super` of `a::b` is `a`, whether `a::b` is
                // `a/b.rs` or `a/b/mod.rs`.
                let mut base = from.clone();
                while let Some(s) = segs.first().map(String::as_str) {
                    match s {
                        "self" => {}
                        "super" => {
                            base.pop();
                        }
                        _ => break,
                    }
                    segs.remove(0);
                }
                base
            }
            _ => return None,
        };
        let full: Vec<String> = base.into_iter().chain(segs).collect();
        (1..=full.len())
            .rev()
            .map(|n| full[..n].to_vec())
            .find(|m| self.files.contains_key(m))
    }

    /// Every edge between two files of this crate.
    fn edges(&self, own_name: &str) -> BTreeSet<(Module, Module)> {
        let mut out = BTreeSet::new();
        for (from, code) in &self.files {
            if from.is_empty() {
                continue; // the crate root declares modules; that is not a dependency
            }
            for p in paths_in(code) {
                if let Some(to) = self.resolve(from, &p, own_name) {
                    if &to != from && !to.is_empty() {
                        out.insert((from.clone(), to));
                    }
                }
            }
        }
        out
    }
}

/// The strongly connected components of more than one file.
fn cycles(edges: &BTreeSet<(Module, Module)>) -> Vec<Vec<Module>> {
    let mut graph: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
        graph.entry(b).or_default();
    }
    // Kosaraju: finishing order on the graph, then components on the reversed graph.
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for &start in graph.keys() {
        if !seen.insert(start) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&child) = graph[node].get(next) {
                stack.push((node, next + 1));
                if seen.insert(child) {
                    stack.push((child, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    let mut reverse: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (a, b) in edges {
        reverse.entry(b).or_default().push(a);
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for &node in order.iter().rev() {
        if !assigned.insert(node) {
            continue;
        }
        let mut comp = vec![node.clone()];
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for &m in reverse.get(n).map(Vec::as_slice).unwrap_or(&[]) {
                if assigned.insert(m) {
                    comp.push(m.clone());
                    stack.push(m);
                }
            }
        }
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

/// The layers of the core's doc comment: `//! N. Title: [`a`], [`b`] …`, a numbered item
/// possibly spanning lines; every top-level module named in backticks belongs to layer N.
fn layers(lib_rs: &str, modules: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut current: Option<usize> = None;
    for line in lib_rs.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        let number = doc
            .split_once(". ")
            .and_then(|(n, _)| n.parse::<usize>().ok());
        match number {
            Some(n) => current = Some(n),
            None if doc.is_empty() || doc.starts_with('#') => current = None,
            None => {}
        }
        let Some(layer) = current else { continue };
        for (n, part) in doc.split('`').enumerate() {
            if n % 2 == 1 && modules.contains(part) {
                out.entry(part.to_string()).or_insert(layer);
            }
        }
    }
    out
}

/// Everything wrong with the core at `core_src` (and the command-line crate at `cli_src`).
fn violations(core_src: &Path, cli_src: Option<&Path>) -> Vec<String> {
    let core = read_crate(core_src);
    let mut out = BTreeSet::new();
    let top: BTreeSet<String> = core
        .files
        .keys()
        .filter_map(|m| m.first().cloned())
        .collect();
    let lib_rs = std::fs::read_to_string(core_src.join("lib.rs")).unwrap();
    let layer_of = layers(&lib_rs, &top);
    for m in &top {
        if !layer_of.contains_key(m) {
            out.insert(format!(
                "module `{m}` is in no layer: name it in the \"Layers\" list of {}",
                core_src.join("lib.rs").display()
            ));
        }
    }
    let show = |m: &Module| m.join("/");
    for (module, code) in &core.files {
        for p in paths_in(code) {
            let first = p.first().map(String::as_str);
            if first == Some("git_migrate")
                || (first == Some("crate") && p.get(1).map(String::as_str) == Some("cli"))
            {
                out.insert(format!(
                    "{}: names the command line ({}): the core must not know it",
                    show(module),
                    p.join("::")
                ));
            }
        }
        for mac in ["println!", "eprintln!", "print!", "eprint!", "dbg!"] {
            if code.contains(mac) {
                out.insert(format!(
                    "{}: prints ({mac}): only the command line prints; return what to say",
                    show(module)
                ));
            }
        }
    }
    let edges = core.edges("git_migrate_core");
    for (a, b) in &edges {
        let (la, lb) = (layer_of.get(&a[0]), layer_of.get(&b[0]));
        if let (Some(la), Some(lb)) = (la, lb) {
            if lb > la {
                out.insert(format!(
                    "{} (layer {la}) uses {} (layer {lb}): an upward edge",
                    show(a),
                    show(b)
                ));
            }
        }
    }
    for comp in cycles(&edges) {
        out.insert(format!(
            "a cycle in the core: {}",
            comp.iter().map(show).collect::<Vec<_>>().join(" <-> ")
        ));
    }
    if let Some(cli_src) = cli_src {
        let cli = read_crate(cli_src);
        for comp in cycles(&cli.edges("git_migrate")) {
            out.insert(format!(
                "a cycle in the command line: {}",
                comp.iter().map(show).collect::<Vec<_>>().join(" <-> ")
            ));
        }
    }
    out.into_iter().collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_core_keeps_its_layers_and_the_command_line_has_no_cycles() {
    let found = violations(&root().join("crates/core/src"), Some(&root().join("src")));
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_command_line_crate_depends_on_the_terminal_crates() {
    let core = std::fs::read_to_string(root().join("crates/core/Cargo.toml")).unwrap();
    let deps = core
        .split("[dependencies]")
        .nth(1)
        .expect("the core has dependencies");
    for name in [
        "clap",
        "console",
        "indicatif",
        "git-migrate ",
        "git-migrate.",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(name)),
            "crates/core/Cargo.toml depends on {name}: only the command line may"
        );
    }
}

/// The checker itself finds what it must: an upward edge, a cycle, a `use crate::cli`, a
/// print, and a module left out of the layers.
#[test]
fn the_layering_check_finds_upward_edges_cycles_and_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "lib.rs",
        "//! # Layers\n//!\n//! 1. Below: [`low`], [`other`].\n//! 2. Above:\n//!    [`high`].\n\npub mod low;\npub mod high;\npub mod other;\npub mod stray;\n",
    );
    write("high.rs", "use crate::low::f;\npub fn h() { f() }\n");
    write(
        "low.rs",
        "pub fn f() { crate::high::h() }\n// crate::stray::x in a comment is no edge\n",
    );
    write("other/mod.rs", "mod a;\nmod b;\n");
    write(
        "other/a.rs",
        "use super::b::g;\npub fn a() { g(); let s = \"crate::high::h\"; }\n",
    );
    write(
        "other/b.rs",
        "pub fn g() { super::a::a(); println!(\"x\"); }\nuse crate::cli::ui;\n#[cfg(test)]\nmod tests { use crate::high::h; }\n",
    );
    write("stray.rs", "pub fn x() {}\n");
    let found = violations(src, None).join("\n");
    for want in [
        "low (layer 1) uses high (layer 2): an upward edge",
        "a cycle in the core: high <-> low",
        "a cycle in the core: other/a <-> other/b",
        "other/b: names the command line (crate::cli::ui)",
        "other/b: prints (println!)",
        "module `stray` is in no layer",
    ] {
        assert!(found.contains(want), "missing {want:?} in:\n{found}");
    }
    // Strings, comments and unit tests name nothing.
    assert!(!found.contains("other/a (layer 1) uses high"), "{found}");
    assert!(!found.contains("other/b (layer 1) uses high"), "{found}");
    assert!(!found.contains("uses stray"), "{found}");
}
