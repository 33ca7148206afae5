//! Turning a listing of the migrations folder into migrations (config v2 layout).
//!
//! Accepted: `<version>_<name>/up.sql` + `down.sql`, and legacy flat files
//! `<version>_<name>.up.sql` / `.down.sql`. Folders that do not start with digits and `_`
//! (Hasura's `squashed_…`) are skipped; config v1 `up.yaml`/`down.yaml` are ignored.

use super::{LayoutProblem, Migration, MigrationFile, Version};
use std::collections::BTreeMap;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationEntryKind {
    /// A folder.
    Dir,
    /// A regular file.
    File,
    /// Anything else (symlink, submodule): never read.
    Other,
}

/// One entry of the migrations folder, with the files inside it when it is a folder.
#[derive(Clone, Debug)]
pub struct MigrationDirEntry {
    /// Entry name.
    pub name: String,
    /// Kind of entry.
    pub kind: MigrationEntryKind,
    /// Blob id for files.
    pub blob: Option<String>,
    /// For folders: `(file name, blob id)` of the regular files inside.
    pub files: Vec<(String, String)>,
}

/// Result of reading a migrations folder listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Migrations found (unvalidated: duplicates are detected by `MigrationSet::new`).
    pub migrations: Vec<Migration>,
    /// Problems with individual entries.
    pub problems: Vec<LayoutProblem>,
    /// Paths of ignored config v1 `up.yaml`/`down.yaml` files.
    pub ignored_yaml: Vec<String>,
}

/// Splits `<digits>_<name>` into version and name. `None` when it does not start with digits.
/// `Some(Err(()))` when the digits do not fit a bigint.
fn split_version(stem: &str) -> Option<Result<(Version, &str), ()>> {
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<Version>().map(|v| (v, name)).map_err(|_| ()))
}

/// Parses the listing of `dir` (a path relative to the repository root).
pub fn parse_migration_listing(dir: &str, entries: &[MigrationDirEntry]) -> Listing {
    let mut out = Listing::default();
    // Flat legacy files, grouped by stem.
    type Pair = (Option<MigrationFile>, Option<MigrationFile>);
    let mut flat: BTreeMap<String, Pair> = BTreeMap::new();
    for e in entries {
        let location = join(dir, &e.name);
        match e.kind {
            MigrationEntryKind::Dir => {
                let (version, name) = match split_version(&e.name) {
                    None => continue,
                    Some(Err(())) => {
                        out.problems
                            .push(LayoutProblem::VersionOutOfRange { location });
                        continue;
                    }
                    Some(Ok(v)) => v,
                };
                let mut up = None;
                let mut down = None;
                for (file, blob) in &e.files {
                    let f = MigrationFile {
                        path: join(&location, file),
                        blob: blob.clone(),
                    };
                    match file.as_str() {
                        "up.sql" => up = Some(f),
                        "down.sql" => down = Some(f),
                        "up.yaml" | "down.yaml" => out.ignored_yaml.push(f.path),
                        _ => {}
                    }
                }
                if up.is_none() && down.is_none() {
                    // A folder with only config v1 YAML (or nothing) is not a v2 migration.
                    continue;
                }
                if up.is_none() {
                    out.problems.push(LayoutProblem::MissingUp { location });
                    continue;
                }
                out.migrations.push(Migration {
                    version,
                    name: name.to_string(),
                    location,
                    up,
                    down,
                });
            }
            MigrationEntryKind::File => {
                let (stem, is_up) = if let Some(s) = e.name.strip_suffix(".up.sql") {
                    (s, true)
                } else if let Some(s) = e.name.strip_suffix(".down.sql") {
                    (s, false)
                } else {
                    continue;
                };
                let Some(blob) = e.blob.clone() else { continue };
                let slot = flat.entry(stem.to_string()).or_default();
                let f = MigrationFile {
                    path: location,
                    blob,
                };
                if is_up {
                    slot.0 = Some(f);
                } else {
                    slot.1 = Some(f);
                }
            }
            MigrationEntryKind::Other => {}
        }
    }
    for (stem, (up, down)) in flat {
        let location = join(dir, &stem);
        let (version, name) = match split_version(&stem) {
            None => continue,
            Some(Err(())) => {
                out.problems
                    .push(LayoutProblem::VersionOutOfRange { location });
                continue;
            }
            Some(Ok(v)) => v,
        };
        if up.is_none() {
            out.problems.push(LayoutProblem::MissingUp { location });
            continue;
        }
        out.migrations.push(Migration {
            version,
            name: name.to_string(),
            location,
            up,
            down,
        });
    }
    out.migrations.sort_by_key(|m| m.version);
    out
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, files: &[&str]) -> MigrationDirEntry {
        MigrationDirEntry {
            name: name.into(),
            kind: MigrationEntryKind::Dir,
            blob: None,
            files: files
                .iter()
                .map(|f| (f.to_string(), format!("blob-{name}-{f}")))
                .collect(),
        }
    }

    fn file(name: &str) -> MigrationDirEntry {
        MigrationDirEntry {
            name: name.into(),
            kind: MigrationEntryKind::File,
            blob: Some(format!("blob-{name}")),
            files: vec![],
        }
    }

    #[test]
    fn folders_flat_files_and_skips() {
        let l = parse_migration_listing(
            "hasura/migrations",
            &[
                dir("1_init", &["up.sql", "down.sql"]),
                dir("2_with space", &["up.sql", "down.yaml"]),
                dir("squashed_1_to_2", &["up.sql"]),
                dir("default", &["x"]),
                file("3_flat.up.sql"),
                file("3_flat.down.sql"),
                file("README.md"),
            ],
        );
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        let v: Vec<_> = l
            .migrations
            .iter()
            .map(|m| (m.version, m.name.as_str()))
            .collect();
        assert_eq!(v, vec![(1, "init"), (2, "with space"), (3, "flat")]);
        assert_eq!(l.migrations[1].location, "hasura/migrations/2_with space");
        assert!(l.migrations[1].down.is_none());
        assert_eq!(
            l.ignored_yaml,
            vec!["hasura/migrations/2_with space/down.yaml"]
        );
        assert_eq!(
            l.migrations[2].down.as_ref().unwrap().path,
            "hasura/migrations/3_flat.down.sql"
        );
    }

    #[test]
    fn out_of_range_and_missing_up() {
        let l = parse_migration_listing(
            "migrations",
            &[
                dir("99999999999999999999_big", &["up.sql"]),
                dir("5_downonly", &["down.sql"]),
            ],
        );
        assert_eq!(l.migrations.len(), 0);
        assert_eq!(l.problems.len(), 2);
    }

    #[test]
    fn duplicates_are_all_reported() {
        let l = parse_migration_listing(
            "m",
            &[
                dir("1_a", &["up.sql"]),
                dir("1_b", &["up.sql"]),
                dir("2_a", &["up.sql"]),
                file("2_c.up.sql"),
            ],
        );
        let err = super::super::MigrationSet::new(l.migrations).unwrap_err();
        assert_eq!(err.len(), 2);
    }
}
