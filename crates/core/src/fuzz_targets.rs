//! Fuzz target bodies (issue 7 item 9). Each is a plain `fn(&[u8])` that feeds the bytes to the
//! real code and panics when an invariant breaks; `fuzz/fuzz_targets/*.rs` are one-line
//! libFuzzer wrappers around them (`cargo +nightly fuzz run <target>`, see fuzz/README.md).
//!
//! The unit tests below replay every file of `fuzz/corpus/<target>/` and a fixed-seed
//! pseudo-random pass of mutated corpus entries on stable, so the invariants stay checked in
//! CI without a fuzzer.

use crate::check::rules::{self, CheckInput, EntryFact, FileFact, Text};
use crate::config::{relative_dir, HasuraConfig};
use crate::metadata::v3::{build_v3_snapshot, build_v3_snapshot_with, BuildCache};
use crate::metadata::{
    build_snapshot, describe_changes, snapshot_sha256, MetadataError, MetadataFiles,
};
use crate::project::txcontrol::{transaction_control, transaction_control_by_tokens};
use crate::project::{
    parse_migration_listing, sql, MigrationDirEntry, MigrationEntryKind, MigrationSet,
};
use std::collections::BTreeMap;

/// A fuzz target: its name (as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target (the unit tests replay each one's corpus).
#[cfg(test)]
const TARGETS: [Target; 4] = [
    ("folder_name", folder_name),
    ("hasura_config", hasura_config),
    ("metadata_snapshot", metadata_snapshot),
    ("txcontrol", txcontrol),
];

/// Migration folder names: the listing parser (`project::layout`) and the `check` rules over
/// names, plus `parse(format(version, name)) == (version, name)`.
///
/// Input: the first 8 bytes (little-endian, sign bit cleared) are a version for the round trip;
/// then one entry per line, whose first byte picks kind and side (`% 6`) and whose rest is the
/// name.
pub fn folder_name(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    // Round trip: a folder written as `<version>_<name>` reads back as exactly that.
    if data.len() >= 8 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&data[..8]);
        let version = i64::from_le_bytes(v) & i64::MAX;
        let name = String::from_utf8_lossy(&data[8..]).into_owned();
        let label = format!("{version}_{name}");
        let listing = parse_migration_listing("m", &[folder(&label, &["up.sql", "down.sql"])]);
        assert!(
            listing.problems.is_empty(),
            "{label:?}: {:?}",
            listing.problems
        );
        assert_eq!(listing.migrations.len(), 1, "{label:?}");
        let m = &listing.migrations[0];
        assert_eq!((m.version, m.name.as_str()), (version, name.as_str()));
        assert_eq!(m.label(), label);
        assert_eq!(m.location, format!("m/{label}"));
    }

    // A whole folder listing, at the base and the tip of a change.
    let mut tip: Vec<MigrationDirEntry> = Vec::new();
    let mut input = CheckInput {
        migrations_dir: "migrations".into(),
        ..Default::default()
    };
    for (i, line) in text.split('\n').enumerate() {
        let mut chars = line.chars();
        let Some(sel) = chars.next() else { continue };
        let name: String = chars.collect();
        if name.is_empty() {
            continue;
        }
        let id = format!("{i:04x}");
        let files: &[&str] = match sel as u32 % 6 {
            0 => &["up.sql", "down.sql"],
            1 => &["up.sql"],
            2 => &["down.sql", "up.yaml"],
            3 => &["Up.sql", "down.sql", "x.sql"],
            _ => &[],
        };
        let kind = match sel as u32 % 6 {
            4 => MigrationEntryKind::File,
            5 => MigrationEntryKind::Other,
            _ => MigrationEntryKind::Dir,
        };
        let mut e = folder(&name, files);
        e.kind = kind;
        e.id = Some(id.clone());
        if kind != MigrationEntryKind::Dir {
            e.files = None;
        }
        tip.push(e);
        // Every third entry existed before, every sixth one with other content.
        let facts: BTreeMap<String, FileFact> = files
            .iter()
            .map(|f| {
                let fact = FileFact {
                    kind: MigrationEntryKind::File,
                    id: format!("{id}/{f}"),
                };
                (f.to_string(), fact)
            })
            .collect();
        for f in facts.values() {
            // The name doubles as SQL, so the text rules see fuzzed text too.
            input.texts.insert(f.id.clone(), Text::Utf8(name.clone()));
        }
        let fact = EntryFact {
            kind,
            id: id.clone(),
        };
        if i % 3 == 0 {
            let mut old = fact.clone();
            if i % 6 == 0 {
                old.id.push('~');
            }
            input.base.insert(name.clone(), old);
            if kind == MigrationEntryKind::Dir {
                input.base_files.insert(name.clone(), facts.clone());
            }
        }
        input.tip.insert(name.clone(), fact);
        if kind == MigrationEntryKind::Dir {
            input.tip_files.insert(name, facts);
        }
    }

    let listing = parse_migration_listing("m", &tip);
    for m in &listing.migrations {
        assert!(m.version >= 0);
        assert!(m.location.starts_with("m/"), "{}", m.location);
        // format(parse(x)) parses back to the same thing (`0001_x` formats as `1_x`).
        let again = parse_migration_listing("m", &[folder(&m.label(), &["up.sql"])]);
        assert_eq!(again.migrations.len(), 1, "{}", m.label());
        assert_eq!(again.migrations[0].version, m.version);
        assert_eq!(again.migrations[0].name, m.name);
    }
    let total = listing.migrations.len();
    match MigrationSet::new(listing.migrations) {
        Ok(set) => assert_eq!(set.len(), total),
        Err(dups) => assert!(!dups.is_empty()),
    }

    // The check rules over the same names.
    let findings = rules::evaluate(&input);
    for f in &findings {
        assert!(
            f.path.starts_with("migrations/") || f.path == "migrations",
            "{f:?}"
        );
        assert!(!f.message.is_empty() && !f.hint.is_empty(), "{f:?}");
    }
    assert!(
        findings
            .windows(2)
            .all(|w| (&w[0].path, w[0].rule) <= (&w[1].path, w[1].rule)),
        "findings are sorted"
    );
    assert_eq!(findings, rules::evaluate(&input), "deterministic");
    let (tip_needed, base_needed) = rules::folders_needed(&input);
    assert!(tip_needed.iter().all(|n| input.tip.contains_key(n)));
    assert!(base_needed.iter().all(|n| input.base.contains_key(n)));
    for id in rules::blobs_needed(&input) {
        let known = input
            .tip_files
            .values()
            .chain(input.base_files.values())
            .any(|fs| fs.values().any(|f| f.id == id))
            || input
                .tip
                .values()
                .chain(input.base.values())
                .any(|e| e.id == id);
        assert!(known, "blob {id} needed but never listed");
    }
}

/// A folder entry holding `files` (blob ids derived from the names).
fn folder(name: &str, files: &[&str]) -> MigrationDirEntry {
    MigrationDirEntry {
        name: name.to_string(),
        kind: MigrationEntryKind::Dir,
        id: Some(format!("tree:{name}")),
        files: Some(
            files
                .iter()
                .map(|f| (f.to_string(), format!("blob:{name}/{f}")))
                .collect(),
        ),
    }
}

/// Hasura's `config.yaml`: [`HasuraConfig::parse`] never panics, and what it accepts is
/// version 2 or 3 with folders that stay inside the project.
pub fn hasura_config(data: &[u8]) {
    match HasuraConfig::parse(data, "hasura/config.yaml", "fuzz") {
        Ok(c) => {
            assert!(c.version == 2 || c.version == 3, "{c:?}");
            for dir in [
                &c.metadata_directory,
                &c.migrations_directory,
                &c.seeds_directory,
            ] {
                assert!(!dir.is_empty(), "{c:?}");
                assert!(!dir.starts_with('/') && !dir.starts_with('\\'), "{c:?}");
                assert!(
                    dir.split('/')
                        .all(|p| !p.is_empty() && p != "." && p != ".."),
                    "{c:?}"
                );
                // Normalising is idempotent.
                assert_eq!(relative_dir(dir).as_deref(), Some(dir.as_str()));
            }
            let default = c.migrations_directory_for_default();
            assert!(default.starts_with(&c.migrations_directory));
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("hasura/config.yaml"), "{message}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(d) = relative_dir(text) {
            assert_eq!(relative_dir(&d).as_deref(), Some(d.as_str()), "{text:?}");
            assert!(!d.split('/').any(|p| p == ".."), "{text:?}");
        }
    }
}

/// Splits fuzz input into metadata files: chunks separated by NUL bytes, each `path\ncontent`.
fn metadata_files(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for chunk in data.split(|b| *b == 0) {
        let (path, content) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], &chunk[i + 1..]),
            None => (chunk, &[][..]),
        };
        let path = String::from_utf8_lossy(path).trim().to_string();
        if !path.is_empty() {
            files.insert(path, content.to_vec());
        }
    }
    files
}

/// Metadata snapshots: config v3 (`databases/databases.yaml` with nested `!include`s, resolved
/// over an in-memory folder, the pure entry point `build_v3_snapshot`) and config v2. Never
/// panics; a build is deterministic and the same with a shared cache; errors name a file.
pub fn metadata_snapshot(data: &[u8]) {
    let files = metadata_files(data);
    let v3 = build_v3_snapshot(&files, "hasura/metadata", "fuzz");
    match &v3 {
        Ok(v) => {
            assert!(v.is_object(), "{v}");
            assert_eq!(v["version"], 3, "{v}");
            assert!(v["sources"].is_array(), "{v}");
            // Equal input, equal hash; a snapshot has no changes against itself.
            assert_eq!(snapshot_sha256(v), snapshot_sha256(&v.clone()));
            assert!(describe_changes(v, v).is_empty(), "{v}");
        }
        Err(e) => check_error(e),
    }
    // Same result again, and through a cache shared by two builds (the `metadata diff` path).
    let cache = BuildCache::new();
    for _ in 0..2 {
        let again = build_v3_snapshot_with(&files, "hasura/metadata", "fuzz", &cache, None)
            .map(|b| b.value);
        match (&v3, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("v3 build not deterministic: {v3:?} vs {again:?}"),
        }
    }

    // Config v2: the top-level files only.
    let v2 = MetadataFiles {
        dir: "hasura/metadata".into(),
        at: "fuzz".into(),
        files: files
            .iter()
            .filter(|(p, _)| !p.contains('/'))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect(),
    };
    match build_snapshot(&v2) {
        Ok(v) => {
            assert!(v.is_object(), "{v}");
            assert!(v["tables"].is_array(), "{v}");
            assert!(describe_changes(&v, &v).is_empty(), "{v}");
            if let Ok(v3) = &v3 {
                // Different shapes compare without panicking.
                let _ = describe_changes(&v, v3);
            }
        }
        Err(e) => check_error(&e),
    }
}

/// Every metadata error names a file of the folder and the source.
fn check_error(e: &MetadataError) {
    let message = e.to_string();
    assert!(message.contains("@ fuzz"), "{message}");
    match e {
        MetadataError::Include { chain, .. } => {
            assert!(!chain.is_empty(), "{message}");
            assert!(
                chain.iter().all(|p| p.starts_with("hasura/metadata/")),
                "{message}"
            );
        }
        MetadataError::Syntax { path, .. }
        | MetadataError::Encoding { path, .. }
        | MetadataError::Shape { path, .. }
        | MetadataError::Unsupported { path, .. } => {
            assert!(path.starts_with("hasura/metadata/"), "{message}");
        }
    }
}

/// Transaction control in migration SQL ([`transaction_control`]) and the crate's own SQL
/// lexing helpers (`project::sql`): never panic, positions inside the text, and each finding's
/// statement is what stands at its line and column.
pub fn txcontrol(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let found = transaction_control(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut last = (0, 0);
    for t in &found {
        assert!(t.line >= 1 && t.line <= lines.len(), "{t:?}");
        let line = lines[t.line - 1];
        assert!(
            t.column >= 1 && t.column <= line.chars().count() + 1,
            "{t:?}"
        );
        assert!((t.line, t.column) > last, "in file order: {found:?}");
        last = (t.line, t.column);
        assert!(!t.statement.is_empty(), "{t:?}");
        // The statement is what stands there (NUL bytes are read as spaces).
        let at: String = line
            .chars()
            .skip(t.column - 1)
            .map(|c| if c == '\0' { ' ' } else { c })
            .collect();
        let first_line = t.statement.lines().next().unwrap_or_default();
        assert!(at.starts_with(first_line), "{t:?} at {at:?}");
        let word: String = first_line
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(
            ["begin", "start", "commit", "end", "rollback", "abort", "prepare"]
                .contains(&word.as_str()),
            "{t:?}"
        );
    }

    // Where the parser reads the file, the scanner fallback must find every statement it finds:
    // the fallback may over-report (a column alias named `end` in a `BEGIN ATOMIC` body ends the
    // body early for a token scanner), never miss one.
    let nul_free = text.replace('\0', " ");
    if pg_query::parse(&nul_free, 0).is_ok() {
        let by_tokens = transaction_control_by_tokens(&text);
        for f in &found {
            assert!(
                by_tokens.contains(f),
                "the scanner fallback misses {f:?}: {by_tokens:?}"
            );
        }
    }

    // The crate's own splitter and position helpers.
    let mut end = 0;
    for r in sql::split_statements(&text) {
        assert!(
            r.start >= end && r.start < r.end && r.end <= text.len(),
            "{r:?}"
        );
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        let (line, col) = sql::line_col_of_byte(&text, r.start);
        assert!(line >= 1 && line <= lines.len() && col >= 1, "{r:?}");
        end = r.end;
    }
    let _ = sql::is_effectively_empty(&text);
    let (line, col) = sql::line_col(&text, data.len() / 2 + 1);
    assert!(line >= 1 && line <= lines.len() && col >= 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("fuzz/corpus")
            .join(target);
        let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        out.sort();
        assert!(!out.is_empty(), "{} is empty", dir.display());
        out
    }

    /// Every corpus file through its target.
    #[test]
    fn corpus_replays() {
        for (name, target) in TARGETS {
            for (path, bytes) in corpus(name) {
                let r = std::panic::catch_unwind(|| target(&bytes));
                assert!(r.is_ok(), "{name}: {} fails", path.display());
            }
        }
    }

    /// xorshift64*: small, fast, deterministic.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Tokens worth inserting, per target (what the fuzzer's dictionary would hold).
    fn dictionary(target: &str) -> &'static [&'static str] {
        match target {
            "txcontrol" => &[
                ";",
                "commit",
                "BEGIN",
                "begin atomic",
                " end",
                "rollback to ",
                "$$",
                "$a$",
                "'",
                "E'\\'",
                "\"",
                "/*",
                "*/",
                "--",
                "\n",
                "case ",
                "start transaction",
                "prepare ",
                "é",
                "\0",
            ],
            "metadata_snapshot" => &[
                "\0",
                "\n",
                "!include ",
                "\"!include ",
                "databases/databases.yaml\n",
                "tables.yaml",
                "../",
                "- ",
                ": ",
                "<<: *a",
                "&a ",
                "[",
                "{",
                "version: 3\n",
                "  ",
                "name: default\n",
                "tables: ",
            ],
            "hasura_config" => &[
                "version: ",
                "2",
                "3",
                "\n",
                "metadata_directory: ",
                "migrations_directory: ",
                "../",
                "/",
                "./",
                "seeds_directory: ",
                "'",
                "~",
                "{",
                "[",
            ],
            _ => &[
                "\n",
                "_",
                "0",
                "1",
                "9",
                ".up.sql",
                ".down.sql",
                "/",
                " ",
                "\u{7}",
            ],
        }
    }

    fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], dict: &[&str]) {
        for _ in 0..=rng.below(4) {
            let len = input.len();
            match rng.below(6) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    input[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let b = rng.next() as u8;
                    input.insert(rng.below(len + 1), b);
                }
                2 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + 1 + rng.below(8)).min(len);
                    input.drain(a..b);
                }
                3 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + 1 + rng.below(16)).min(len);
                    let piece = input[a..b].to_vec();
                    let at = rng.below(len + 1);
                    input.splice(at..at, piece);
                }
                4 if !other.is_empty() => {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(32)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[a..b].iter().copied());
                }
                _ => {
                    let token = dict[rng.below(dict.len())].as_bytes();
                    let at = rng.below(len + 1);
                    input.splice(at..at, token.iter().copied());
                }
            }
        }
        input.truncate(4096);
    }

    /// A fixed-seed pass of mutated corpus entries through each target: a bounded fuzzing
    /// run that CI can afford on stable.
    #[test]
    fn pseudo_random_pass() {
        for (name, target) in TARGETS {
            let seeds = corpus(name);
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
            // About a second each in a debug build on a busy machine.
            let rounds = match name {
                "hasura_config" => 20_000,
                "txcontrol" => 8_000,
                "folder_name" => 1_200,
                _ => 600,
            };
            for round in 0..rounds {
                let mut input = seeds[rng.below(seeds.len())].1.clone();
                let other = &seeds[rng.below(seeds.len())].1;
                mutate(&mut rng, &mut input, other, dictionary(name));
                let r = std::panic::catch_unwind(|| target(&input));
                assert!(
                    r.is_ok(),
                    "{name}: round {round} fails on {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}
