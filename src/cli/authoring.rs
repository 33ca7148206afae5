//! What `create`, `squash` and `delete` ([`super::create`], [`super::squash`],
//! [`super::delete`]) share: Hasura's `migrate create/squash/delete` on the working tree, with
//! git-migrate's safety rules.
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

use super::error::{CommandError, Kind};
use super::Ctx;
use git_migrate_core::ledger::{DbState, Ledger};
use git_migrate_core::project::{
    parse_migration_listing, Migration, MigrationDirEntry, MigrationEntryKind, MigrationSet,
    Version,
};
use git_migrate_core::source::{ProjectLocation, Source, TreeRef};
use postgres::GenericClient;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by `seed`).

/// The project in the working tree.
pub(super) struct WorkProject {
    /// The working tree.
    pub tree: TreeRef,
    /// Its root on disk.
    pub root: PathBuf,
    /// Where the project is.
    pub location: ProjectLocation,
}

/// Finds the project in the working tree (bare repositories have none).
pub(super) fn work_project(ctx: &Ctx) -> Result<WorkProject, CommandError> {
    let tree = ctx.repo.tree(&Source::Worktree)?;
    let root = match &tree {
        TreeRef::Fs { root, .. } => root.clone(),
        TreeRef::Git { .. } => unreachable!("the working tree is read from disk"),
    };
    let location = ctx
        .repo
        .locate_project(&tree, ctx.project_dir().as_deref())?;
    Ok(WorkProject {
        tree,
        root,
        location,
    })
}

pub(super) use git_migrate_core::project::join_path as join;

/// The folder of one database inside a per-database folder setting (`migrations_directory`,
/// `seeds_directory`): `<dir>/<database>` for config v3, `<dir>` for config v2, which has a
/// single database. The name was checked when given, and against the revision when the
/// project was read (`source::Repo::locate_project` refuses a database other than `default`
/// in a config v2 project).
pub(super) fn database_folder(
    location: &ProjectLocation,
    setting: &str,
    database: Option<&str>,
) -> Result<String, CommandError> {
    let base = join(&location.dir, setting.trim_end_matches('/'));
    if location.config.version >= 3 {
        return Ok(join(&base, database.unwrap_or("default")));
    }
    Ok(base)
}

/// Rejects names that cannot be one path component.
pub(super) fn validate_name(what: &str, name: &str) -> Result<(), CommandError> {
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
        Some(why) => Err(
            CommandError::new(Kind::Usage, format!("invalid {what} {name:?}: {why}"))
                .hint("use letters, digits, _ and - (spaces are allowed inside)"),
        ),
    }
}

/// The current time in Unix milliseconds (what Hasura uses as versions).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Lists the migrations of a folder of the working tree, every folder read.
pub(super) fn migrations_at(
    ctx: &Ctx,
    tree: &TreeRef,
    dir: &str,
) -> Result<MigrationSet, CommandError> {
    let Some(entries) = ctx.repo.list(tree, dir)? else {
        return Ok(MigrationSet::default());
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let numbered = e.name.as_bytes().first().is_some_and(u8::is_ascii_digit);
        let files = if e.kind == MigrationEntryKind::Dir && numbered {
            Some(
                ctx.repo
                    .list(tree, &join(dir, &e.name))?
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
        return Err(git_migrate_core::source::SourceError::Layout {
            at: "the working tree".into(),
            problems,
        }
        .into());
    }
    Ok(set)
}

pub(super) fn io_error(what: String, e: std::io::Error) -> CommandError {
    CommandError::new(Kind::Failure, what).cause(e.to_string())
}

pub(super) fn read_text(root: &Path, path: &str) -> Result<String, CommandError> {
    let bytes =
        std::fs::read(root.join(path)).map_err(|e| io_error(format!("cannot read {path}"), e))?;
    String::from_utf8(bytes).map_err(|e| {
        CommandError::new(Kind::Usage, format!("{path} is not valid UTF-8"))
            .cause(e.to_string())
            .hint("SQL files must be UTF-8")
    })
}

/// The paths on disk (repository-relative) a migration consists of: its folder, or its flat
/// `.up.sql`/`.down.sql` files.
pub(super) fn migration_paths(m: &Migration) -> Vec<String> {
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

/// Whether a database was named (`--database-url`, `DATABASE_URL`, PG* variables).
pub(super) fn database_given(ctx: &Ctx) -> bool {
    ctx.db_target().is_ok()
}

/// Changes undone when a later step fails, so that a failed command leaves the working tree as
/// it found it.
#[derive(Default)]
pub(super) struct Undo {
    pub(super) created: Vec<PathBuf>,
    pub(super) moved: Vec<(PathBuf, PathBuf)>,
}

impl Undo {
    pub(super) fn rollback(self) {
        for (from, to) in self.moved.into_iter().rev() {
            let _ = std::fs::rename(&to, &from);
        }
        for p in self.created.into_iter().rev() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Writes a new migration folder with its two files.
pub(super) fn write_migration(
    root: &Path,
    folder: &str,
    up: &[u8],
    down: &[u8],
) -> Result<(), CommandError> {
    let abs = root.join(folder);
    if let Some(parent) = abs.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| io_error(format!("cannot create {}", parent.display()), e))?;
    }
    std::fs::create_dir(&abs).map_err(|e| io_error(format!("cannot create {folder}/"), e))?;
    let write = || -> std::io::Result<()> {
        std::fs::write(abs.join("up.sql"), up)?;
        std::fs::write(abs.join("down.sql"), down)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_dir_all(&abs);
        io_error(format!("cannot write the files of {folder}/"), e)
    })
}

// ---------------------------------------------------------------------------------------------
// Database state shared by squash and delete --server.

/// What a database records as applied.
pub(super) struct Applied {
    /// Target, redacted, for messages.
    pub(super) db: String,
    /// The ledger read (its `live.ledger_exists` says whether there is one).
    pub(super) state: DbState,
    /// Versions Hasura's state lists for the database, when the ledger records none.
    pub(super) hasura: Option<BTreeSet<Version>>,
}

impl Applied {
    /// Whether the ledger is what says which versions are applied (else Hasura's state).
    pub(super) fn by_ledger(&self) -> bool {
        !self.state.live.applied.is_empty() || self.hasura.is_none()
    }

    /// Whether `v` is applied.
    pub(super) fn has(&self, v: Version) -> bool {
        if self.by_ledger() {
            self.state.live.applied.contains_key(&v)
        } else {
            self.hasura.as_ref().is_some_and(|h| h.contains(&v))
        }
    }

    /// Every version recorded anywhere.
    pub(super) fn versions(&self) -> BTreeSet<Version> {
        let mut out: BTreeSet<Version> = self.state.live.applied.keys().copied().collect();
        if let Some(h) = &self.hasura {
            out.extend(h.iter().copied());
        }
        out
    }

    /// Where the state is kept, for messages.
    pub(super) fn tables(&self, ledger: &Ledger) -> String {
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

/// Reads the ledger and, when it records nothing, Hasura's state for `database`.
pub(super) fn read_applied(
    client: &mut impl GenericClient,
    ledger: &Ledger,
    db: &str,
    config_version: u8,
    database: &str,
) -> Result<Applied, CommandError> {
    let state = ledger.read(client)?;
    let hasura = state
        .hasura_state
        .as_ref()
        .and_then(|h| h.choose(config_version, database))
        .map(|(_, m)| m.keys().copied().collect());
    Ok(Applied {
        db: db.to_string(),
        state,
        hasura,
    })
}

/// Runs `f` in a transaction holding the deploy lock (the one `deploy` takes; waits up to a
/// minute for it) and commits when `f` succeeds.
pub(super) fn with_lock<T>(
    client: &mut postgres::Client,
    ledger: &Ledger,
    f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, CommandError>,
) -> Result<T, CommandError> {
    git_migrate_core::execute::with_lock(client, ledger, Duration::from_secs(60), &mut |_| {}, f)
}

/// A ledger row for a migration recorded without running it.
pub(super) struct NewRow {
    pub(super) version: Version,
    pub(super) name: String,
    pub(super) up: Vec<u8>,
    pub(super) down: Vec<u8>,
}

/// git's blob id of some bytes.
pub(super) fn blob_id(bytes: &[u8]) -> Option<String> {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .ok()
        .map(|o| o.to_string())
}

/// git's tree id of a migration folder holding exactly up.sql and down.sql (what the folder's
/// tree will be once committed), so that the planner recognises it without reading files.
pub(super) fn folder_tree_id(up: &[u8], down: &[u8]) -> Option<String> {
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

/// Removes `remove` from the database state and records `add` as applied, nothing executed
/// ([`Ledger::record_state_edit`], the ledger's one writer of such rows), inside the caller's
/// transaction.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_state(
    tx: &mut postgres::Transaction<'_>,
    ledger: &Ledger,
    applied: &Applied,
    remove: &[Version],
    add: Option<&NewRow>,
    target_ref: &str,
    plan: serde_json::Value,
    identity: &str,
) -> Result<Option<i64>, CommandError> {
    let row = add.map(|n| git_migrate_core::ledger::LedgerRow {
        version: n.version,
        name: n.name.clone(),
        up_sha256: git_migrate_core::checksum::sha256_hex(&n.up),
        up_blob: blob_id(&n.up),
        down_sha256: Some(git_migrate_core::checksum::sha256_hex(&n.down)),
        down_sql: String::from_utf8(n.down.clone()).ok(),
        down_blob: blob_id(&n.down),
        folder_tree: folder_tree_id(&n.up, &n.down),
        computed_down: None,
    });
    let edit = git_migrate_core::ledger::StateEdit {
        remove,
        add: row.as_ref(),
        target_ref,
        plan,
        identity,
    };
    Ok(ledger.record_state_edit(tx, &applied.state, &edit)?)
}

/// A new version: now in milliseconds, or just above the highest existing one when the clock is
/// behind it.
pub(super) fn next_version(max: Option<Version>) -> Result<Version, CommandError> {
    let now = now_ms();
    match max {
        Some(m) if m >= now => m.checked_add(1).ok_or_else(|| {
            CommandError::new(Kind::Usage, format!("version {m} is the largest bigint"))
                .hint("pass --version")
        }),
        _ => Ok(now),
    }
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
}
