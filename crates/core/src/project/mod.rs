//! The project model: migrations found at a revision, and the validated set of them.
//!
//! Everything here is pure: it works on directory listings handed to it by `source`,
//! never on git or the file system directly.

/// The default prelude for Hasura projects (Hasura's server creates pgcrypto on start): run
/// before the migrations of a scratch replay, and before a first deploy's.
pub const DEFAULT_PRELUDE: &str = "CREATE EXTENSION IF NOT EXISTS pgcrypto;";

mod layout;
pub mod legacy;
pub mod sql;
pub mod txcontrol;

pub use layout::{
    classify_folder, parse_migration_listing, FolderKind, Listing, MigrationDirEntry,
    MigrationEntryKind,
};

use std::collections::BTreeMap;

/// `dir/name` for repository paths; `name` at the root (empty `dir`), `dir` for an empty name.
pub fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A migration version: a non-negative integer that fits `bigint`.
pub type Version = i64;

/// One file of a migration: where it is and which git blob holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationFile {
    /// Path relative to the repository root (`hasura/migrations/17_x/up.sql`).
    pub path: String,
    /// Git blob id (hex). For working-tree sources this is the id git would give the file.
    pub blob: String,
}

/// One migration of the target project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Numeric version (the part before the first `_`).
    pub version: Version,
    /// Everything after the first `_`.
    pub name: String,
    /// Folder (or flat file stem) relative to the repository root, for messages.
    pub location: String,
    /// Git tree id of the migration folder (git sources; `None` for flat files and the
    /// working tree). Equal ids mean equal files, so nothing inside needs reading.
    pub tree: Option<String>,
    /// Whether `up`/`down` have been read from the folder (folders are listed lazily).
    pub resolved: bool,
    /// The up SQL file, if the migration has one.
    pub up: Option<MigrationFile>,
    /// The down SQL file, if the migration has one.
    pub down: Option<MigrationFile>,
}

impl Migration {
    /// Folder name as the user sees it (`1700000000001_create_users`).
    pub fn label(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }
}

/// A problem with the layout of the migrations folder at a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutProblem {
    /// Two folders claim the same version.
    DuplicateVersion {
        /// The version.
        version: Version,
        /// The first location.
        first: String,
        /// The second location.
        second: String,
    },
    /// A numeric prefix that does not fit `bigint`.
    VersionOutOfRange {
        /// The offending entry.
        location: String,
    },
    /// A migration folder without an `up.sql`.
    MissingUp {
        /// The folder.
        location: String,
    },
    /// A symbolic link or a submodule where a migration folder or file belongs: never followed.
    Unfollowed {
        /// The entry.
        location: String,
        /// `symbolic link` or `submodule`.
        kind: &'static str,
    },
    /// A migration folder name with control characters (a newline, an escape sequence) or
    /// bytes that are not UTF-8: it could not be shown or recorded faithfully.
    BadName {
        /// The entry (as read, lossily).
        location: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl LayoutProblem {
    /// What to do about the problem, for a `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            LayoutProblem::DuplicateVersion { .. } => {
                "rename one of the folders so that every version is unique".into()
            }
            LayoutProblem::VersionOutOfRange { .. } => format!(
                "versions must fit a bigint (at most {}): rename the folder",
                i64::MAX
            ),
            LayoutProblem::MissingUp { .. } => {
                "add the up.sql (or delete the folder) in a new commit".into()
            }
            LayoutProblem::Unfollowed { kind, .. } => format!(
                "replace the {kind} with the real files in a new commit; git-migrate never follows \
                 links or submodules (they can point outside the repository)"
            ),
            LayoutProblem::BadName { .. } => {
                "rename the folder to `<version>_<name>` in printable UTF-8 in a new commit".into()
            }
        }
    }
}

impl std::fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutProblem::DuplicateVersion {
                version,
                first,
                second,
            } => write!(
                f,
                "duplicate migration version {version}: {first} and {second}"
            ),
            LayoutProblem::VersionOutOfRange { location } => {
                write!(f, "migration version of {location} does not fit a bigint")
            }
            LayoutProblem::MissingUp { location } => {
                write!(f, "migration {location} has no up.sql")
            }
            LayoutProblem::Unfollowed { location, kind } => {
                write!(f, "{location} is a {kind}; git-migrate does not follow it")
            }
            LayoutProblem::BadName { location, why } => {
                write!(f, "migration folder \"{}\" {why}", location.escape_debug())
            }
        }
    }
}

/// The validated migrations of a project, sorted by version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationSet {
    by_version: BTreeMap<Version, Migration>,
}

impl MigrationSet {
    /// Builds the set, reporting every duplicate at once.
    pub fn new(migrations: Vec<Migration>) -> Result<MigrationSet, Vec<LayoutProblem>> {
        let mut by_version: BTreeMap<Version, Migration> = BTreeMap::new();
        let mut problems = Vec::new();
        for m in migrations {
            if let Some(existing) = by_version.get(&m.version) {
                problems.push(LayoutProblem::DuplicateVersion {
                    version: m.version,
                    first: existing.location.clone(),
                    second: m.location.clone(),
                });
                continue;
            }
            by_version.insert(m.version, m);
        }
        if problems.is_empty() {
            Ok(MigrationSet { by_version })
        } else {
            Err(problems)
        }
    }

    /// Looks a version up.
    pub fn get(&self, version: Version) -> Option<&Migration> {
        self.by_version.get(&version)
    }

    /// Whether the version is present.
    pub fn contains(&self, version: Version) -> bool {
        self.by_version.contains_key(&version)
    }

    /// Migrations in ascending version order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Migration> {
        self.by_version.values()
    }

    /// Looks a version up for updating.
    pub fn get_mut(&mut self, version: Version) -> Option<&mut Migration> {
        self.by_version.get_mut(&version)
    }

    /// Removes a version (a folder that turned out not to be a migration).
    pub fn remove(&mut self, version: Version) -> Option<Migration> {
        self.by_version.remove(&version)
    }

    /// Number of migrations.
    pub fn len(&self) -> usize {
        self.by_version.len()
    }

    /// Whether there are no migrations.
    pub fn is_empty(&self) -> bool {
        self.by_version.is_empty()
    }
}
