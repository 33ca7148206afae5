//! Hasura's `migrate create/squash/delete` on the working tree, with git-migrate's safety rules:
//! what the commands `create`, `squash` and `delete` do ([`create`], [`squash`], [`delete`]) and
//! what they share.
//!
//! Besides `metadata export` and `seed create`, these are the only commands that write files:
//! they change the migrations folder of the working tree and never touch the index or commits.
//! Database state (the ledger, and Hasura's `schema_migrations` / `cli_state` when they exist)
//! changes only when asked for (`squash` with a database, `squash --state-only`,
//! `delete --server`), in one transaction under the deploy lock, recorded as a `repair`
//! deployment, and never by running migration SQL.
//!
//! Squash and other databases: a squash replaces versions that databases may have applied. The
//! squashed migration gets a new version (so `check` sees a new migration, not an edited one)
//! unless newer migrations follow the range; then it keeps `--to`'s version, as Hasura does, so
//! that it still runs before them. Every database that has the range applied must record the
//! replacement (`squash` with `--database-url`, or later `squash --state-only`) before it deploys
//! the squash commit; otherwise that deploy would revert the old versions and apply the new one.
//!
//! Every change is planned first (`plan_*`), so a refused one changes nothing; then it is carried
//! out (`apply_*`). Nothing here prints or reads the environment: the caller connects to the
//! database, asks for confirmations, and renders the returned plans, warnings and reports.

pub mod create;
pub mod delete;
pub mod drift;
pub mod squash;

use crate::execute::ExecError;
use crate::ledger::{DbState, Ledger, LedgerError};
use crate::project::{
    parse_migration_listing, Migration, MigrationDirEntry, MigrationEntryKind, MigrationSet,
    Version,
};
use crate::source::{ProjectLocation, Repo, Source, SourceError, TreeRef};
use postgres::GenericClient;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of the authoring commands. Each carries what its message, causes and hints need; the
/// message is the `Display`.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    /// A name that cannot be one path component.
    #[error("invalid {what} {name:?}: {why}")]
    InvalidName {
        /// What is named ("migration name").
        what: String,
        /// The name.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A file operation failed.
    #[error("{what}")]
    Io {
        /// What failed ("cannot read <path>").
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A SQL file that is not UTF-8.
    #[error("{path} is not valid UTF-8")]
    NotUtf8 {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// No version above the highest one fits in a bigint.
    #[error("version {max} is the largest bigint")]
    VersionOverflow {
        /// The highest version.
        max: Version,
    },
    /// A version named by a flag is not in the migrations folder.
    #[error("{flag} {version}: there is no migration {version} in {dir}/ (working tree)")]
    NoSuchMigration {
        /// `--from` or `--to`.
        flag: &'static str,
        /// The version.
        version: Version,
        /// The migrations folder.
        dir: String,
        /// The lowest and highest versions there, if any.
        span: Option<(Version, Version)>,
    },
    /// `--to` below `--from`.
    #[error("--to {to} is below --from {from}")]
    ToBelowFrom {
        /// `--from`.
        from: Version,
        /// `--to`.
        to: Version,
    },
    /// The range holds one migration.
    #[error("nothing to squash: {from}..{to} holds one migration")]
    NothingToSquash {
        /// `--from`.
        from: Version,
        /// `--to`.
        to: Version,
    },
    /// A no-transaction migration in the range.
    #[error("{label} is a no-transaction migration ({which} starts with `{}`); it cannot be squashed with others; nothing was changed", crate::project::txcontrol::NO_TRANSACTION_MARKER)]
    NoTransaction {
        /// The migration.
        label: String,
        /// `up.sql` or `down.sql`.
        which: &'static str,
    },
    /// Migrations of the range without a down, and no `--allow-empty-down`.
    #[error("{} of the migrations to squash have no down SQL, so the squashed down.sql could not undo the squashed up.sql; nothing was changed", .labels.len())]
    NoDown {
        /// The migrations.
        labels: Vec<String>,
    },
    /// `squash --version` names another migration.
    #[error("--version {version} is taken by {location}")]
    SquashVersionTaken {
        /// The version.
        version: Version,
        /// The migration that has it.
        location: String,
    },
    /// The squashed migration would run before a migration that precedes the range.
    #[error("--version {version} would run before {before}, which precedes the squashed range")]
    RunsBefore {
        /// The version.
        version: Version,
        /// The migration before the range.
        before: String,
    },
    /// The squashed migration would run after a migration that follows the range.
    #[error("--version {version} would run after {after}, which follows the squashed range")]
    RunsAfter {
        /// The version.
        version: Version,
        /// The migration after the range.
        after: String,
        /// `--to`.
        to: Version,
    },
    /// The folder for the sources of the squash exists.
    #[error("{dir}/ already exists; nothing was changed")]
    SourcesFolderExists {
        /// The folder.
        dir: String,
    },
    /// The folder of the squashed migration exists.
    #[error("{folder}/ already exists; nothing was changed")]
    SquashFolderExists {
        /// The folder.
        folder: String,
    },
    /// Part of the range is applied.
    #[error("the migrations to squash are out of sync with {db}: {} of {total} are applied; nothing was changed", .applied.len())]
    OutOfSync {
        /// The database.
        db: String,
        /// Applied, labels.
        applied: Vec<String>,
        /// Not applied, labels.
        not_applied: Vec<String>,
        /// How many there are.
        total: usize,
    },
    /// The database ran other SQL than the working tree holds, or left rows dirty.
    #[error("{db} ran other SQL than the working tree holds for the migrations to squash; nothing was changed")]
    OtherSql {
        /// The database.
        db: String,
        /// What differs.
        differences: Vec<Difference>,
    },
    /// The range was applied when planned and is no longer under the lock.
    #[error("{db} changed meanwhile: the migrations to squash are no longer applied; nothing was changed")]
    ChangedMeanwhile {
        /// The database.
        db: String,
    },
    /// `squash --state-only --version` names no migration.
    #[error("--version {version}: there is no migration {version} in the working tree")]
    NoSquashedMigration {
        /// The version.
        version: Version,
    },
    /// The migration named by `--state-only --version` is not the squash of the range.
    #[error("{label} is not the squash of {from}..{}: its up.sql does not name (only) versions of that range in `-- from <version>_<name>` lines", .to.map(|t| t.to_string()).unwrap_or_else(|| "the latest".into()))]
    NotASquash {
        /// The migration.
        label: String,
        /// `--from`.
        from: Version,
        /// `--to`.
        to: Option<Version>,
    },
    /// The database records both the squashed migration and versions it replaces.
    #[error("{db} records {version} as applied and also versions it was squashed from; nothing was changed")]
    StillApplied {
        /// The database.
        db: String,
        /// The squashed version.
        version: Version,
        /// The replaced versions still recorded.
        present: Vec<Version>,
    },
    /// Applied versions of the range that the squashed migration does not hold.
    #[error(
        "{db} has versions of the range applied that {label} does not hold; nothing was changed"
    )]
    ExtraApplied {
        /// The database.
        db: String,
        /// The squashed migration.
        label: String,
        /// The versions.
        extra: Vec<Version>,
    },
    /// The database recorded the squashed versions under other names.
    #[error("{db} recorded the squashed versions under other names; nothing was changed")]
    Renamed {
        /// The database.
        db: String,
        /// Version, the ledger's name, the squashed file's name.
        renamed: Vec<(Version, String, String)>,
    },
    /// `delete --version` names no migration of the folder.
    #[error("there is no migration {version} in {dir}/ (working tree); nothing was deleted")]
    NotInFolder {
        /// The version.
        version: Version,
        /// The migrations folder.
        dir: String,
    },
    /// Migrations to delete are applied in the database.
    #[error("{} of the migrations to delete are applied in {db}; nothing was deleted", .labels.len())]
    DeleteApplied {
        /// The database.
        db: String,
        /// The applied migrations.
        labels: Vec<String>,
        /// Their versions.
        versions: Vec<Version>,
    },
    /// `delete --server` on a database without migration state.
    #[error("{db} has no migration state (no {schema}.migrations, no Hasura state); nothing was changed")]
    NoState {
        /// The database.
        db: String,
        /// The ledger's schema.
        schema: String,
    },
    /// `delete --server --version` names versions the database does not record.
    #[error("{db} does not record {} as applied; nothing was changed", list(.missing))]
    NotRecorded {
        /// The database.
        db: String,
        /// The versions.
        missing: Vec<Version>,
    },
    /// `create` without a down (the message and cause depend on what was given).
    #[error("{}", .missing.message())]
    EmptyDown {
        /// What is missing.
        missing: MissingDown,
        /// Whether up SQL was given.
        up_given: bool,
    },
    /// The up SQL of `create` is not UTF-8.
    #[error("the up SQL is not valid UTF-8")]
    UpNotUtf8(#[source] std::string::FromUtf8Error),
    /// `create --version` names another migration.
    #[error("version {version} is taken by {location}")]
    CreateVersionTaken {
        /// The version.
        version: Version,
        /// The migration that has it.
        location: String,
    },
    /// The folder of the new migration exists.
    #[error("{folder}/ already exists")]
    FolderExists {
        /// The folder.
        folder: String,
    },
    /// Reading git or the working tree.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Reading or writing the ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Taking the deploy lock or committing.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// How a database's record of a migration differs from the working tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The row is dirty (a no-transaction migration did not finish).
    Dirty {
        /// The migration.
        label: String,
    },
    /// The row's checksum differs from the working tree's up.sql.
    Checksum {
        /// The migration.
        label: String,
        /// The ledger's checksum.
        ledger: String,
        /// The working tree's.
        tree: String,
    },
}

/// What `create` lacks to write a migration that can be rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingDown {
    /// No SQL given at all.
    NoSql,
    /// No `--down-sql`.
    NoDownSql,
    /// `--down-sql` without statements.
    EmptyDownSql,
}

impl MissingDown {
    fn message(self) -> &'static str {
        match self {
            MissingDown::NoSql => {
                "no SQL given: refusing to create a migration with an empty up.sql and down.sql"
            }
            MissingDown::NoDownSql => {
                "no --down-sql given: refusing to create a migration that cannot be rolled back"
            }
            MissingDown::EmptyDownSql => "--down-sql is empty (only whitespace or comments): refusing to create a migration that cannot be rolled back",
        }
    }
}

pub(crate) fn list(v: &[Version]) -> String {
    v.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by `seed`).

/// The project in the working tree.
pub struct WorkProject {
    /// The working tree.
    pub tree: TreeRef,
    /// Its root on disk.
    pub root: PathBuf,
    /// Where the project is.
    pub location: ProjectLocation,
}

impl WorkProject {
    /// Finds the project in the working tree (bare repositories have none).
    pub fn find(repo: &Repo, project_dir: Option<&str>) -> Result<WorkProject, SourceError> {
        let tree = repo.tree(&Source::Worktree)?;
        let root = match &tree {
            TreeRef::Fs { root, .. } => root.clone(),
            TreeRef::Git { .. } => unreachable!("the working tree is read from disk"),
        };
        let location = repo.locate_project(&tree, project_dir)?;
        Ok(WorkProject {
            tree,
            root,
            location,
        })
    }

    /// The migrations folder of `database`.
    pub fn migrations_dir(&self, database: Option<&str>) -> String {
        database_folder(
            &self.location,
            &self.location.config.migrations_directory,
            database,
        )
    }
}

use crate::project::join_path as join;

/// The folder of one database inside a per-database folder setting (`migrations_directory`,
/// `seeds_directory`): `<dir>/<database>` for config v3, `<dir>` for config v2, which has a
/// single database. The name was checked when given, and against the revision when the
/// project was read (`source::Repo::locate_project` refuses a database other than `default`
/// in a config v2 project).
pub(crate) fn database_folder(
    location: &ProjectLocation,
    setting: &str,
    database: Option<&str>,
) -> String {
    let base = join(&location.dir, setting.trim_end_matches('/'));
    if location.config.version >= 3 {
        return join(&base, database.unwrap_or("default"));
    }
    base
}

/// Rejects names that cannot be one path component.
pub fn validate_name(what: &str, name: &str) -> Result<(), AuthoringError> {
    let why = if name.trim().is_empty() {
        Some("it is empty")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else if name == "." || name == ".." {
        Some("it names a special folder")
    } else if name.trim() != name {
        Some("it starts or ends with whitespace")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(AuthoringError::InvalidName {
            what: what.to_string(),
            name: name.to_string(),
            why,
        }),
    }
}

/// The current time in Unix milliseconds (what Hasura uses as versions).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Lists the migrations of a folder of the working tree, every folder read.
pub fn migrations_at(repo: &Repo, tree: &TreeRef, dir: &str) -> Result<MigrationSet, SourceError> {
    let Some(entries) = repo.list(tree, dir)? else {
        return Ok(MigrationSet::default());
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let numbered = e.name.as_bytes().first().is_some_and(u8::is_ascii_digit);
        let files = if e.kind == MigrationEntryKind::Dir && numbered {
            Some(
                repo.list(tree, &join(dir, &e.name))?
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f.kind == MigrationEntryKind::File)
                    .map(|f| (f.name, f.id.unwrap_or_default()))
                    .collect(),
            )
        } else {
            None
        };
        out.push(MigrationDirEntry {
            name: e.name,
            kind: e.kind,
            id: e.id,
            files,
        });
    }
    let listing = parse_migration_listing(dir, &out);
    let mut problems = listing.problems;
    let set = match MigrationSet::new(listing.migrations) {
        Ok(s) => s,
        Err(p) => {
            problems.extend(p);
            MigrationSet::default()
        }
    };
    if !problems.is_empty() {
        return Err(SourceError::Layout {
            at: "the working tree".into(),
            problems,
        });
    }
    Ok(set)
}

pub(crate) fn io_error(what: String) -> impl FnOnce(std::io::Error) -> AuthoringError {
    move |source| AuthoringError::Io { what, source }
}

pub(crate) fn read_text(root: &Path, path: &str) -> Result<String, AuthoringError> {
    let bytes = std::fs::read(root.join(path)).map_err(io_error(format!("cannot read {path}")))?;
    String::from_utf8(bytes).map_err(|source| AuthoringError::NotUtf8 {
        path: path.to_string(),
        source,
    })
}

/// The paths on disk (repository-relative) a migration consists of: its folder, or its flat
/// `.up.sql`/`.down.sql` files.
pub(crate) fn migration_paths(m: &Migration) -> Vec<String> {
    let flat =
        m.up.as_ref()
            .is_some_and(|u| u.path.ends_with(".up.sql") && !u.path.ends_with("/up.sql"));
    if flat {
        m.up.iter()
            .chain(m.down.iter())
            .map(|f| f.path.clone())
            .collect()
    } else {
        vec![m.location.clone()]
    }
}

/// Changes undone when a later step fails, so that a failed command leaves the working tree as
/// it found it.
#[derive(Default)]
pub(crate) struct Undo {
    pub(crate) created: Vec<PathBuf>,
    pub(crate) moved: Vec<(PathBuf, PathBuf)>,
}

impl Undo {
    pub(crate) fn rollback(self) {
        for (from, to) in self.moved.into_iter().rev() {
            let _ = std::fs::rename(&to, &from);
        }
        for p in self.created.into_iter().rev() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Writes a new migration folder with its two files.
pub(crate) fn write_migration(
    root: &Path,
    folder: &str,
    up: &[u8],
    down: &[u8],
) -> Result<(), AuthoringError> {
    let abs = root.join(folder);
    if let Some(parent) = abs.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io_error(format!("cannot create {}", parent.display())))?;
    }
    std::fs::create_dir(&abs).map_err(io_error(format!("cannot create {folder}/")))?;
    let write = || -> std::io::Result<()> {
        std::fs::write(abs.join("up.sql"), up)?;
        std::fs::write(abs.join("down.sql"), down)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_dir_all(&abs);
        AuthoringError::Io {
            what: format!("cannot write the files of {folder}/"),
            source,
        }
    })
}

/// A new version: now in milliseconds, or just above the highest existing one when the clock is
/// behind it.
pub(crate) fn next_version(max: Option<Version>) -> Result<Version, AuthoringError> {
    let now = now_ms();
    match max {
        Some(m) if m >= now => m
            .checked_add(1)
            .ok_or(AuthoringError::VersionOverflow { max: m }),
        _ => Ok(now),
    }
}

// ---------------------------------------------------------------------------------------------
// Database state shared by squash and delete --server.

/// The database an authoring command reads or records state in (the caller connects).
pub struct Database<'a> {
    /// The ledger.
    pub ledger: &'a Ledger,
    /// Target, redacted, for messages.
    pub name: String,
    /// Which of Hasura's stores the project's CLI reads (config v2: schema_migrations, v3:
    /// cli_state).
    pub config_version: u8,
    /// The database of the project (`default` when none is named).
    pub database: &'a str,
    /// Who is recorded as having made the change.
    pub actor: &'a str,
}

/// What a database records as applied.
pub(crate) struct Applied {
    /// Target, redacted, for messages.
    pub(crate) db: String,
    /// The ledger read (its `live.ledger_exists` says whether there is one).
    pub(crate) state: DbState,
    /// Versions Hasura's state lists for the database, when the ledger records none.
    pub(crate) hasura: Option<BTreeSet<Version>>,
}

impl Applied {
    /// Whether the ledger is what says which versions are applied (else Hasura's state).
    pub(crate) fn by_ledger(&self) -> bool {
        !self.state.live.applied.is_empty() || self.hasura.is_none()
    }

    /// Whether `v` is applied.
    pub(crate) fn has(&self, v: Version) -> bool {
        if self.by_ledger() {
            self.state.live.applied.contains_key(&v)
        } else {
            self.hasura.as_ref().is_some_and(|h| h.contains(&v))
        }
    }

    /// Every version recorded anywhere.
    pub(crate) fn versions(&self) -> BTreeSet<Version> {
        let mut out: BTreeSet<Version> = self.state.live.applied.keys().copied().collect();
        if let Some(h) = &self.hasura {
            out.extend(h.iter().copied());
        }
        out
    }

    /// Where the state is kept, for messages.
    pub(crate) fn tables(&self, ledger: &Ledger) -> String {
        let mut t = Vec::new();
        if self.state.live.ledger_exists {
            t.push(format!("{}.migrations", ledger.schema()));
        }
        let stores = self.state.hasura_stores();
        if stores.schema_migrations {
            t.push("hdb_catalog.schema_migrations".into());
        }
        if stores.cli_state {
            t.push("hdb_catalog.hdb_version.cli_state".into());
        }
        t.join(", ")
    }
}

/// Reads the ledger and, when it records nothing, Hasura's state for the database.
pub(crate) fn read_applied(
    client: &mut impl GenericClient,
    db: &Database<'_>,
) -> Result<Applied, AuthoringError> {
    let state = db.ledger.read(client)?;
    let hasura = state
        .hasura_state
        .as_ref()
        .and_then(|h| h.choose(db.config_version, db.database))
        .map(|(_, m)| m.keys().copied().collect());
    Ok(Applied {
        db: db.name.clone(),
        state,
        hasura,
    })
}

/// Runs `f` in a transaction holding the deploy lock (the one `deploy` takes; waits up to a
/// minute for it) and commits when `f` succeeds.
pub(crate) fn with_lock<T>(
    client: &mut postgres::Client,
    ledger: &Ledger,
    f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, AuthoringError>,
) -> Result<T, AuthoringError> {
    crate::execute::with_lock(client, ledger, Duration::from_secs(60), &mut |_| {}, f)
}

/// A ledger row for a migration recorded without running it.
pub(crate) struct NewRow {
    pub(crate) version: Version,
    pub(crate) name: String,
    pub(crate) up: Vec<u8>,
    pub(crate) down: Vec<u8>,
}

/// git's blob id of some bytes.
fn blob_id(bytes: &[u8]) -> Option<String> {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .ok()
        .map(|o| o.to_string())
}

/// git's tree id of a migration folder holding exactly up.sql and down.sql (what the folder's
/// tree will be once committed), so that the planner recognises it without reading files.
fn folder_tree_id(up: &[u8], down: &[u8]) -> Option<String> {
    let up = git2::Oid::hash_object(git2::ObjectType::Blob, up).ok()?;
    let down = git2::Oid::hash_object(git2::ObjectType::Blob, down).ok()?;
    let mut tree = Vec::new();
    for (name, id) in [("down.sql", down), ("up.sql", up)] {
        tree.extend_from_slice(format!("100644 {name}\0").as_bytes());
        tree.extend_from_slice(id.as_bytes());
    }
    git2::Oid::hash_object(git2::ObjectType::Tree, &tree)
        .ok()
        .map(|o| o.to_string())
}

/// A change of the database state: versions removed, one recorded as applied, nothing executed.
pub(crate) struct StateChange<'a> {
    pub(crate) remove: &'a [Version],
    pub(crate) add: Option<&'a NewRow>,
    pub(crate) target_ref: &'a str,
    pub(crate) plan: serde_json::Value,
}

/// Removes `remove` from the database state and records `add` as applied, nothing executed
/// ([`Ledger::record_state_edit`], the ledger's one writer of such rows), inside the caller's
/// transaction.
pub(crate) fn write_state(
    tx: &mut postgres::Transaction<'_>,
    db: &Database<'_>,
    applied: &Applied,
    change: StateChange<'_>,
) -> Result<Option<i64>, AuthoringError> {
    let row = change.add.map(|n| crate::ledger::LedgerRow {
        version: n.version,
        name: n.name.clone(),
        up_sha256: crate::checksum::sha256_hex(&n.up),
        up_blob: blob_id(&n.up),
        down_sha256: Some(crate::checksum::sha256_hex(&n.down)),
        down_sql: String::from_utf8(n.down.clone()).ok(),
        down_blob: blob_id(&n.down),
        folder_tree: folder_tree_id(&n.up, &n.down),
        computed_down: None,
    });
    let edit = crate::ledger::StateEdit {
        remove: change.remove,
        add: row.as_ref(),
        target_ref: change.target_ref,
        plan: change.plan,
        identity: db.actor,
    };
    Ok(db.ledger.record_state_edit(tx, &applied.state, &edit)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_id_matches_git() {
        // `printf 'x' > up.sql; printf 'y' > down.sql; git add .; git write-tree`
        let repo_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(repo_dir.path()).unwrap();
        let mut b = repo.treebuilder(None).unwrap();
        b.insert("up.sql", repo.blob(b"x").unwrap(), 0o100644)
            .unwrap();
        b.insert("down.sql", repo.blob(b"y").unwrap(), 0o100644)
            .unwrap();
        let id = b.write().unwrap().to_string();
        assert_eq!(folder_tree_id(b"x", b"y"), Some(id));
    }

    #[test]
    fn names() {
        assert!(validate_name("n", "add users").is_ok());
        for bad in ["", " ", "a/b", "a\\b", "a\nb", "..", " x"] {
            assert!(validate_name("n", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_version_stays_above_the_highest() {
        assert_eq!(next_version(Some(i64::MAX - 1)).unwrap(), i64::MAX);
        assert!(matches!(
            next_version(Some(i64::MAX)),
            Err(AuthoringError::VersionOverflow { max: i64::MAX })
        ));
        assert!(next_version(Some(1)).unwrap() > 1);
    }
}
