//! Turning a listing of the migrations folder into migrations (config v2 layout).
//!
//! Accepted: `<version>_<name>/up.sql` + `down.sql`, and legacy flat files
//! `<version>_<name>.up.sql` / `.down.sql`. Folders that do not start with digits and `_`
//! (Hasura's `squashed_…`) are skipped. Legacy `up.yaml`/`down.yaml` (a list of API calls,
//! see [`super::legacy`]) stand in for the `.sql` of the same direction when it is absent, as
//! the Hasura CLI ran them; beside a `.sql` of the same direction they are ignored, and said so.

use super::join_path as join;
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
    /// Object id: the blob for files, the tree for folders (git sources only).
    pub id: Option<String>,
    /// For folders: `(file name, blob id)` of the regular files inside, or `None` when the
    /// folder has not been read yet (it is then resolved lazily with [`classify_folder`]).
    pub files: Option<Vec<(String, String)>>,
}

/// What a migration folder turned out to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FolderKind {
    /// up.sql (and maybe down.sql).
    Migration {
        /// up.sql.
        up: MigrationFile,
        /// down.sql.
        down: Option<MigrationFile>,
    },
    /// Neither up.sql nor up.yaml nor a down: not a migration (an empty folder, a README).
    NotAMigration,
    /// down.sql without up.sql.
    MissingUp,
}

/// Classifies the files of a migration folder at `location`; also returns the paths of
/// YAML files ignored because a `.sql` of the same direction is there.
pub fn classify_folder(location: &str, files: &[(String, String)]) -> (FolderKind, Vec<String>) {
    let (mut up, mut down, mut up_yaml, mut down_yaml) = (None, None, None, None);
    for (file, blob) in files {
        let f = MigrationFile {
            path: join(location, file),
            blob: blob.clone(),
        };
        match file.as_str() {
            "up.sql" => up = Some(f),
            "down.sql" => down = Some(f),
            "up.yaml" => up_yaml = Some(f),
            "down.yaml" => down_yaml = Some(f),
            _ => {}
        }
    }
    let mut yaml = Vec::new();
    let mut pick = |sql: Option<MigrationFile>, y: Option<MigrationFile>| match (sql, y) {
        (Some(sql), Some(y)) => {
            yaml.push(y.path);
            Some(sql)
        }
        (sql, y) => sql.or(y),
    };
    let up = pick(up, up_yaml);
    let down = pick(down, down_yaml);
    let kind = match (up, down) {
        (Some(up), down) => FolderKind::Migration { up, down },
        // A lone down.yaml never ran anything with the Hasura CLI either.
        (None, Some(d)) if super::legacy::is_yaml(&d.path) => FolderKind::NotAMigration,
        (None, Some(_)) => FolderKind::MissingUp,
        (None, None) => FolderKind::NotAMigration,
    };
    (kind, yaml)
}

/// Result of reading a migrations folder listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Migrations found (unvalidated: duplicates are detected by `MigrationSet::new`).
    pub migrations: Vec<Migration>,
    /// Problems with individual entries.
    pub problems: Vec<LayoutProblem>,
    /// Paths of `up.yaml`/`down.yaml` files ignored beside a `.sql` of the same direction.
    pub ignored_yaml: Vec<String>,
    /// Versioned folders that hold no migration (no up.sql or up.yaml): skipped, and said so.
    pub skipped_folders: Vec<String>,
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
                let Some(files) = &e.files else {
                    out.migrations.push(Migration {
                        version,
                        name: name.to_string(),
                        location,
                        tree: e.id.clone(),
                        resolved: false,
                        up: None,
                        down: None,
                    });
                    continue;
                };
                let (kind, yaml) = classify_folder(&location, files);
                out.ignored_yaml.extend(yaml);
                match kind {
                    FolderKind::NotAMigration => out.skipped_folders.push(location),
                    FolderKind::MissingUp => {
                        out.problems.push(LayoutProblem::MissingUp { location });
                    }
                    FolderKind::Migration { up, down } => out.migrations.push(Migration {
                        version,
                        name: name.to_string(),
                        location,
                        tree: e.id.clone(),
                        resolved: true,
                        up: Some(up),
                        down,
                    }),
                }
            }
            MigrationEntryKind::File => {
                let (stem, is_up) = if let Some(s) = e.name.strip_suffix(".up.sql") {
                    (s, true)
                } else if let Some(s) = e.name.strip_suffix(".down.sql") {
                    (s, false)
                } else {
                    continue;
                };
                let Some(blob) = e.id.clone() else { continue };
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
            tree: None,
            resolved: true,
            up,
            down,
        });
    }
    out.migrations.sort_by_key(|m| m.version);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, files: &[&str]) -> MigrationDirEntry {
        MigrationDirEntry {
            name: name.into(),
            kind: MigrationEntryKind::Dir,
            id: Some(format!("tree-{name}")),
            files: Some(
                files
                    .iter()
                    .map(|f| (f.to_string(), format!("blob-{name}-{f}")))
                    .collect(),
            ),
        }
    }

    fn file(name: &str) -> MigrationDirEntry {
        MigrationDirEntry {
            name: name.into(),
            kind: MigrationEntryKind::File,
            id: Some(format!("blob-{name}")),
            files: None,
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
        // No down.sql: the legacy down.yaml stands in for it.
        assert_eq!(
            l.migrations[1].down.as_ref().unwrap().path,
            "hasura/migrations/2_with space/down.yaml"
        );
        assert!(l.ignored_yaml.is_empty());
        assert_eq!(
            l.migrations[2].down.as_ref().unwrap().path,
            "hasura/migrations/3_flat.down.sql"
        );
    }

    #[test]
    fn unread_folders_are_listed_unresolved() {
        let mut e = dir("7_later", &[]);
        e.files = None;
        let l = parse_migration_listing("m", &[e]);
        assert_eq!(l.migrations.len(), 1);
        assert!(!l.migrations[0].resolved);
        assert_eq!(l.migrations[0].tree.as_deref(), Some("tree-7_later"));
        let (kind, yaml) = classify_folder("m/7_later", &[("down.yaml".into(), "b".into())]);
        assert_eq!(kind, FolderKind::NotAMigration);
        assert!(yaml.is_empty());
    }

    #[test]
    fn yaml_stands_in_for_missing_sql_of_the_same_direction() {
        let f = |names: &[&str]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| (n.to_string(), format!("b-{n}")))
                .collect()
        };
        let (kind, ignored) = classify_folder("m/1_x", &f(&["up.yaml", "down.yaml"]));
        let FolderKind::Migration { up, down } = kind else {
            panic!("{kind:?}")
        };
        assert_eq!(up.path, "m/1_x/up.yaml");
        assert_eq!(down.unwrap().path, "m/1_x/down.yaml");
        assert!(ignored.is_empty());
        let (kind, ignored) = classify_folder("m/1_x", &f(&["up.sql", "up.yaml", "down.yaml"]));
        let FolderKind::Migration { up, down } = kind else {
            panic!("{kind:?}")
        };
        assert_eq!(up.path, "m/1_x/up.sql");
        assert_eq!(down.unwrap().path, "m/1_x/down.yaml");
        assert_eq!(ignored, vec!["m/1_x/up.yaml"]);
        let l = parse_migration_listing(
            "m",
            &[
                dir("5_empty", &["README.md"]),
                dir("6_downonly", &["down.yaml"]),
            ],
        );
        assert!(l.migrations.is_empty() && l.problems.is_empty());
        assert_eq!(l.skipped_folders, vec!["m/5_empty", "m/6_downonly"]);
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
