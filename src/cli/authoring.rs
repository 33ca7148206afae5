//! `create`, `squash`, `delete`: Hasura's `migrate create/squash/delete` (hasura-cli.md
//! §5.3–§5.5, design §11) on the working tree, with git-migrate's safety rules.
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
use clap::Args;
use git_migrate_core::ledger::{quote_ident, DbState, Ledger};
use git_migrate_core::project::sql::is_effectively_empty;
use git_migrate_core::project::{
    parse_migration_listing, Migration, MigrationDirEntry, MigrationEntryKind, MigrationSet,
    Version,
};
use git_migrate_core::source::{ProjectLocation, Source, TreeRef};
use postgres::types::Type;
use postgres::GenericClient;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Migration name (the folder is <version>_<name>).
    pub name: String,
    /// SQL for up.sql.
    #[arg(
        long,
        value_name = "SQL",
        conflicts_with = "sql_from_file",
        allow_hyphen_values = true
    )]
    pub up_sql: Option<String>,
    /// SQL for down.sql: the statements that undo the up.
    #[arg(long, value_name = "SQL", allow_hyphen_values = true)]
    pub down_sql: Option<String>,
    /// Copy up.sql from this file.
    #[arg(long, value_name = "FILE")]
    pub sql_from_file: Option<PathBuf>,
    /// Create the migration even though its down.sql is empty (it then cannot be rolled back).
    #[arg(long)]
    pub allow_empty_down: bool,
    /// Version to use instead of the current time in milliseconds.
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(i64).range(0..))]
    pub version: Option<i64>,
}

/// Arguments of `squash`.
#[derive(Args, Debug)]
pub struct SquashArgs {
    /// First version to squash.
    #[arg(long, value_name = "V")]
    pub from: Version,
    /// Last version to squash (default: the latest).
    #[arg(long, value_name = "V")]
    pub to: Option<Version>,
    /// Name of the squashed migration.
    #[arg(long, value_name = "NAME", default_value = "squashed")]
    pub name: String,
    /// Delete the source folders instead of moving them to squashed_<from>_to_<to>/.
    #[arg(long)]
    pub delete_source: bool,
    /// Squash even when some downs are missing or empty (the squashed down skips them).
    #[arg(long)]
    pub allow_empty_down: bool,
    /// Version of the squashed migration (default: the current time in milliseconds, or --to's
    /// version when newer migrations follow the range). Required with --state-only.
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(i64).range(0..))]
    pub version: Option<i64>,
    /// Write no files: record in the database (--database-url) that the squashed migration
    /// --version, already in the working tree, replaces the versions it was squashed from.
    #[arg(long, requires = "version")]
    pub state_only: bool,
    /// Print what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Version to delete (repeatable).
    #[arg(
        long = "version",
        value_name = "V",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub versions: Vec<Version>,
    /// Every migration.
    #[arg(long)]
    pub all: bool,
    /// Remove only the database state (the ledger row and Hasura's state); keep the files. No
    /// SQL runs.
    #[arg(long)]
    pub server: bool,
    /// Do not ask, and delete files even when the database has the migration applied.
    #[arg(long)]
    pub force: bool,
}

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
fn migrations_at(ctx: &Ctx, tree: &TreeRef, dir: &str) -> Result<MigrationSet, CommandError> {
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

fn io_error(what: String, e: std::io::Error) -> CommandError {
    CommandError::new(Kind::Failure, what).cause(e.to_string())
}

fn read_text(root: &Path, path: &str) -> Result<String, CommandError> {
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
fn migration_paths(m: &Migration) -> Vec<String> {
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
fn database_given(ctx: &Ctx) -> bool {
    ctx.db_target().is_ok()
}

fn db_failure(what: &str) -> impl FnOnce(postgres::Error) -> CommandError + '_ {
    move |e| {
        CommandError::new(
            Kind::Failure,
            format!(
                "{what}: {}; nothing was changed",
                git_migrate_core::db::describe_pg_error(&e)
            ),
        )
    }
}

/// Changes undone when a later step fails, so that a failed command leaves the working tree as
/// it found it.
#[derive(Default)]
struct Undo {
    created: Vec<PathBuf>,
    moved: Vec<(PathBuf, PathBuf)>,
}

impl Undo {
    fn rollback(self) {
        for (from, to) in self.moved.into_iter().rev() {
            let _ = std::fs::rename(&to, &from);
        }
        for p in self.created.into_iter().rev() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Writes a new migration folder with its two files.
fn write_migration(root: &Path, folder: &str, up: &[u8], down: &[u8]) -> Result<(), CommandError> {
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
// create

/// `git migrate create`.
pub(crate) fn cmd_create(ctx: &Ctx, args: &CreateArgs) -> Result<(), CommandError> {
    validate_name("migration name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = database_folder(
        &wp.location,
        &wp.location.config.migrations_directory,
        ctx.database_name.as_deref(),
    )?;
    let up: Vec<u8> = match (&args.up_sql, &args.sql_from_file) {
        (Some(s), _) => s.clone().into_bytes(),
        (None, Some(f)) => std::fs::read(f).map_err(|e| {
            CommandError::new(
                Kind::Usage,
                format!("cannot read --sql-from-file {}", f.display()),
            )
            .cause(e.to_string())
        })?,
        (None, None) => vec![],
    };
    let up_text = String::from_utf8(up).map_err(|e| {
        CommandError::new(Kind::Usage, "the up SQL is not valid UTF-8")
            .cause(e.to_string())
            .hint("SQL files must be UTF-8")
    })?;
    let up_given = args.up_sql.is_some() || args.sql_from_file.is_some();
    let down = args.down_sql.clone().unwrap_or_default();
    if is_effectively_empty(&down) && !args.allow_empty_down {
        let (message, cause) = if !up_given && args.down_sql.is_none() {
            (
                "no SQL given: refusing to create a migration with an empty up.sql and down.sql",
                "`hasura migrate create` writes two empty files here; an empty down.sql means the migration can never be rolled back",
            )
        } else if args.down_sql.is_none() {
            (
                "no --down-sql given: refusing to create a migration that cannot be rolled back",
                "an empty down.sql means `rollback` and `apply --down` refuse this migration",
            )
        } else {
            (
                "--down-sql is empty (only whitespace or comments): refusing to create a migration that cannot be rolled back",
                "a down.sql without statements cannot reverse anything",
            )
        };
        let mut e = CommandError::new(Kind::Usage, message)
            .cause(cause)
            .hint("pass --down-sql '<the statements that undo the up>', e.g. --down-sql 'DROP TABLE orders;'");
        if !up_given {
            e = e.hint("give the up SQL with --up-sql '<SQL>' or --sql-from-file <file>");
        }
        return Err(e.hint(
            "or pass --allow-empty-down to create it anyway (then write down.sql before committing)",
        ));
    }
    let set = migrations_at(ctx, &wp.tree, &dir)?;
    let max = set.iter().next_back().map(|m| m.version);
    let version = match args.version {
        Some(v) => {
            if let Some(m) = set.get(v) {
                return Err(CommandError::new(
                    Kind::Usage,
                    format!("version {v} is taken by {}", m.location),
                )
                .hint("leave out --version to use the current time"));
            }
            if let Some(max) = max.filter(|m| v <= *m) {
                ctx.ui.warn(&format!(
                    "version {v} is not above the highest existing version ({max}); `git migrate check` reports it as out-of-order"
                ));
            }
            v
        }
        None => next_version(max)?,
    };
    let folder = join(&dir, &format!("{version}_{}", args.name));
    if wp.root.join(&folder).exists() {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{folder}/ already exists"),
        ));
    }
    write_migration(&wp.root, &folder, up_text.as_bytes(), down.as_bytes())?;
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "name": args.name,
            "path": folder,
            "up": join(&folder, "up.sql"),
            "down": join(&folder, "down.sql"),
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!("Created {folder}/ (up.sql, down.sql)"));
    }
    if !up_given {
        ctx.ui.warn(
            "up.sql and down.sql are empty: write the SQL before committing (an empty up.sql applies as a no-op)",
        );
    } else if is_effectively_empty(&up_text) {
        ctx.ui.warn("up.sql holds no statements");
    }
    if is_effectively_empty(&down) && up_given {
        ctx.ui
            .warn("down.sql is empty: this migration cannot be rolled back until you write it");
    }
    Ok(())
}

/// A new version: now in milliseconds, or just above the highest existing one when the clock is
/// behind it.
fn next_version(max: Option<Version>) -> Result<Version, CommandError> {
    let now = now_ms();
    match max {
        Some(m) if m >= now => m.checked_add(1).ok_or_else(|| {
            CommandError::new(Kind::Usage, format!("version {m} is the largest bigint"))
                .hint("pass --version")
        }),
        _ => Ok(now),
    }
}

// ---------------------------------------------------------------------------------------------
// Database state shared by squash and delete --server.

/// What a database records as applied.
struct Applied {
    /// Target, redacted, for messages.
    db: String,
    /// The ledger read (its `live.ledger_exists` says whether there is one).
    state: DbState,
    /// Versions Hasura's state lists for the database, when the ledger records none.
    hasura: Option<BTreeSet<Version>>,
}

impl Applied {
    /// Whether the ledger is what says which versions are applied (else Hasura's state).
    fn by_ledger(&self) -> bool {
        !self.state.live.applied.is_empty() || self.hasura.is_none()
    }

    /// Whether `v` is applied.
    fn has(&self, v: Version) -> bool {
        if self.by_ledger() {
            self.state.live.applied.contains_key(&v)
        } else {
            self.hasura.as_ref().is_some_and(|h| h.contains(&v))
        }
    }

    /// Every version recorded anywhere.
    fn versions(&self) -> BTreeSet<Version> {
        let mut out: BTreeSet<Version> = self.state.live.applied.keys().copied().collect();
        if let Some(h) = &self.hasura {
            out.extend(h.iter().copied());
        }
        out
    }

    /// Where the state is kept, for messages.
    fn tables(&self, ledger: &Ledger) -> String {
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
fn read_applied(
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
fn with_lock<T>(
    client: &mut postgres::Client,
    ledger: &Ledger,
    f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, CommandError>,
) -> Result<T, CommandError> {
    let mut failed = None;
    let done = git_migrate_core::execute::with_lock(
        client,
        ledger,
        Duration::from_secs(60),
        &mut |_| {},
        |tx| {
            f(tx).map_err(|e| {
                failed = Some(e);
                // Stands for the error kept in `failed`; rolls the transaction back.
                git_migrate_core::execute::ExecError::Refused(vec![])
            })
        },
    );
    match (done, failed) {
        (Ok(out), _) => Ok(out),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
    }
}

/// A ledger row for a migration recorded without running it.
struct NewRow {
    version: Version,
    name: String,
    up: Vec<u8>,
    down: Vec<u8>,
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

/// Removes `remove` from the database state and records `add` as applied, nothing executed:
/// the ledger (with a `repair` deployment row, so `log` shows who did it) when it is what
/// records the applied versions, and Hasura's stores (`schema_migrations`, `cli_state` under
/// `database`) when they exist. Runs inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn write_state(
    tx: &mut postgres::Transaction<'_>,
    ledger: &Ledger,
    applied: &Applied,
    database: &str,
    remove: &[Version],
    add: Option<&NewRow>,
    target_ref: &str,
    plan: serde_json::Value,
    identity: &str,
) -> Result<Option<i64>, CommandError> {
    let mut deployment = None;
    if applied.state.live.ledger_exists && !applied.state.live.applied.is_empty() {
        let s = quote_ident(ledger.schema());
        let actor = git_migrate_core::ledger::actor_with_role(tx, identity);
        let deployed = applied.state.live.deployed_commit.clone();
        let plan = plan.to_string();
        let row = tx
            .query_typed_one(
                &format!(
                    "INSERT INTO {s}.deployments (started_at, finished_at, actor, tool_version, kind, target_ref,
                        from_commit, to_commit, worktree_dirty, metadata_sha256, status, plan)
                     VALUES (now(), clock_timestamp(), $1, $2, 'repair', $3, $4, $4, $5,
                        (SELECT sha256 FROM {s}.metadata WHERE id = 1), 'ok', $6::text::jsonb)
                     RETURNING id"
                ),
                &[
                    (&actor, Type::TEXT),
                    (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                    (&target_ref, Type::TEXT),
                    (&deployed, Type::TEXT),
                    (&applied.state.live.deployed_dirty, Type::BOOL),
                    (&plan, Type::TEXT),
                ],
            )
            .map_err(db_failure("recording the change in the ledger"))?;
        let id: i64 = row.get(0);
        deployment = Some(id);
        delete_versions(
            tx,
            &format!("DELETE FROM {s}.migrations WHERE version = ANY($1)"),
            remove,
        )?;
        if let Some(n) = add {
            let up_sha = git_migrate_core::checksum::sha256_hex(&n.up);
            let down_sha = git_migrate_core::checksum::sha256_hex(&n.down);
            let down_sql = String::from_utf8(n.down.clone()).ok();
            tx.query_typed(
                &format!(
                    "INSERT INTO {s}.migrations (version, name, database, up_sha256, up_blob, down_sha256, down_sql,
                        down_blob, folder_tree, applied_commit, deployment_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)"
                ),
                &[
                    (&n.version, Type::INT8),
                    (&n.name, Type::TEXT),
                    (&database, Type::TEXT),
                    (&up_sha, Type::TEXT),
                    (&blob_id(&n.up), Type::TEXT),
                    (&down_sha, Type::TEXT),
                    (&down_sql, Type::TEXT),
                    (&blob_id(&n.down), Type::TEXT),
                    (&folder_tree_id(&n.up, &n.down), Type::TEXT),
                    (&id, Type::INT8),
                ],
            )
            .map_err(db_failure("recording the squashed migration in the ledger"))?;
        }
    }
    // Hasura's stores, with the statement every deployment uses. A version both removed and
    // added (a squash that keeps --to's version) is only added: the two would collide.
    let added: Vec<Version> = add.iter().map(|n| n.version).collect();
    let removed: Vec<Version> = remove
        .iter()
        .copied()
        .filter(|v| !added.contains(v))
        .collect();
    let ctes = git_migrate_core::ledger::cli_state::sync_ctes(
        applied.state.hasura_stores(),
        "$1",
        "$2",
        "$3",
    );
    if !ctes.is_empty() {
        tx.query_typed(
            &format!("WITH nothing AS (SELECT 1){ctes}\nSELECT 1"),
            &[
                (&added, Type::INT8_ARRAY),
                (&removed, Type::INT8_ARRAY),
                (&database, Type::TEXT),
            ],
        )
        .map_err(db_failure("updating Hasura's migration state"))?;
    }
    Ok(deployment)
}

/// Runs `sql` (`DELETE … WHERE version = ANY($1)`) with the versions as a bigint array.
fn delete_versions(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    versions: &[Version],
) -> Result<(), CommandError> {
    let v: Vec<Version> = versions.to_vec();
    tx.query_typed(sql, &[(&v, Type::INT8_ARRAY)])
        .map(|_| ())
        .map_err(db_failure("removing versions from the database state"))
}

// ---------------------------------------------------------------------------------------------
// squash

/// One migration of the range, read.
struct Part {
    migration: Migration,
    up: String,
    down: Option<String>,
}

/// The combined files: ups ascending, downs descending, each after a `-- from` line.
fn combine(sources: &[Part]) -> (String, String) {
    fn part(label: &str, text: &str) -> String {
        let mut s = format!("-- from {label}\n{text}");
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }
    let up: Vec<String> = sources
        .iter()
        .map(|s| part(&s.migration.label(), &s.up))
        .collect();
    let down: Vec<String> = sources
        .iter()
        .rev()
        .map(|s| match &s.down {
            Some(d) => part(&s.migration.label(), d),
            None => format!(
                "-- from {}: no down migration (skipped with --allow-empty-down)\n",
                s.migration.label()
            ),
        })
        .collect();
    (up.join("\n"), down.join("\n"))
}

/// The `-- from <version>_<name>` lines of a squashed up.sql.
fn squashed_labels(up: &str) -> Vec<(Version, String)> {
    up.lines()
        .filter_map(|l| l.strip_prefix("-- from "))
        .filter_map(|rest| {
            let (digits, name) = rest.trim_end().split_once('_')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((digits.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// The exact trailer that lets `check` accept the removed versions.
fn trailer(versions: &[Version]) -> String {
    let v: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
    format!("Migration-Allow: edited-migration {}", v.join(" "))
}

/// Checks that the database has all of `range` applied (Some(true)), none (Some(false)), and
/// refuses a mix, dirty rows and checksums that differ from the working tree's up.sql.
fn squash_state(
    applied: &Applied,
    range: &[(Version, String)],
    ups: &BTreeMap<Version, Vec<u8>>,
) -> Result<bool, CommandError> {
    let (on, off): (Vec<_>, Vec<_>) = range.iter().partition(|(v, _)| applied.has(*v));
    if on.is_empty() {
        return Ok(false);
    }
    let labels = |l: &[&(Version, String)]| {
        l.iter()
            .map(|(v, n)| format!("{v}_{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !off.is_empty() {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "the migrations to squash are out of sync with {}: {} of {} are applied; nothing was changed",
                applied.db,
                on.len(),
                range.len()
            ),
        )
        .cause(format!("applied: {}", labels(&on)))
        .cause(format!("not applied: {}", labels(&off)))
        .hint("deploy (or roll back) so that the range is applied entirely or not at all, then squash; or squash a smaller range"));
    }
    let mut e = CommandError::new(
        Kind::Refused,
        format!(
            "{} ran other SQL than the working tree holds for the migrations to squash; nothing was changed",
            applied.db
        ),
    );
    for (v, n) in range {
        let Some(a) = applied.state.live.applied.get(v) else {
            continue;
        };
        if a.dirty {
            e = e.cause(format!(
                "{v}_{n} is marked dirty (a no-transaction migration did not finish)"
            ));
        } else if let Some(up) = ups.get(v) {
            let sha = git_migrate_core::checksum::sha256_hex(up);
            if sha != a.up_sha256 {
                e = e.cause(format!(
                    "{v}_{n}: the ledger has {}, the working tree has {sha}",
                    a.up_sha256
                ));
            }
        }
    }
    if !e.causes.is_empty() {
        return Err(e.hint("squash only migrations whose files are exactly what ran; fix the ledger first (`git migrate status` shows the differences)"));
    }
    Ok(true)
}

/// `git migrate squash`.
pub(crate) fn cmd_squash(ctx: &Ctx, args: &SquashArgs) -> Result<(), CommandError> {
    validate_name("migration name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = database_folder(
        &wp.location,
        &wp.location.config.migrations_directory,
        ctx.database_name.as_deref(),
    )?;
    let set = migrations_at(ctx, &wp.tree, &dir)?;
    if args.state_only {
        return squash_state_only(ctx, args, &wp, &set);
    }
    let missing = |v: Version, flag: &str| {
        CommandError::new(
            Kind::Usage,
            format!("{flag} {v}: there is no migration {v} in {dir}/ (working tree)"),
        )
        .hint(match set.iter().next_back() {
            Some(m) => format!(
                "versions there run from {} to {}",
                set.iter().next().map(|m| m.version).unwrap_or(m.version),
                m.version
            ),
            None => "the folder holds no migrations".into(),
        })
    };
    if !set.contains(args.from) {
        return Err(missing(args.from, "--from"));
    }
    let last = set
        .iter()
        .next_back()
        .map(|m| m.version)
        .unwrap_or(args.from);
    let to = args.to.unwrap_or(last);
    if !set.contains(to) {
        return Err(missing(to, "--to"));
    }
    if to < args.from {
        return Err(CommandError::new(
            Kind::Usage,
            format!("--to {to} is below --from {}", args.from),
        ));
    }
    let range: Vec<&Migration> = set
        .iter()
        .filter(|m| (args.from..=to).contains(&m.version))
        .collect();
    if range.len() < 2 {
        return Err(CommandError::new(
            Kind::Usage,
            format!("nothing to squash: {}..{to} holds one migration", args.from),
        )
        .hint("give a --to above --from (default: the latest migration)"));
    }

    // Read the range.
    let mut sources = Vec::with_capacity(range.len());
    let mut no_down = Vec::new();
    for m in &range {
        let up_file = m.up.as_ref().expect("migrations in a set have an up.sql");
        let up = read_text(&wp.root, &up_file.path)?;
        let down = match &m.down {
            Some(d) => Some(read_text(&wp.root, &d.path)?),
            None => None,
        };
        for (which, text) in [("up.sql", Some(&up)), ("down.sql", down.as_ref())] {
            if text.is_some_and(|t| git_migrate_core::project::txcontrol::is_no_transaction(t)) {
                return Err(CommandError::new(
                    Kind::Refused,
                    format!(
                        "{} is a no-transaction migration ({which} starts with `{}`); it cannot be squashed with others; nothing was changed",
                        m.label(),
                        git_migrate_core::check::rules::NO_TRANSACTION_MARKER
                    ),
                )
                .hint("squash the migrations before or after it separately"));
            }
        }
        let down = down.filter(|d| !is_effectively_empty(d));
        if down.is_none() {
            no_down.push(m.label());
        }
        sources.push(Part {
            migration: (*m).clone(),
            up,
            down,
        });
    }
    if !no_down.is_empty() {
        if !args.allow_empty_down {
            let mut e = CommandError::new(
                Kind::Refused,
                format!(
                    "{} of the migrations to squash have no down SQL, so the squashed down.sql could not undo the squashed up.sql; nothing was changed",
                    no_down.len()
                ),
            );
            for l in &no_down {
                e = e.cause(format!("{l}: down.sql is missing or empty"));
            }
            return Err(e
                .hint("write those down.sql files first")
                .hint("or pass --allow-empty-down: the squashed down.sql then skips them and cannot fully reverse the up"));
        }
        ctx.ui.warn(&format!(
            "the squashed down.sql skips {} migration(s) without a down: {}",
            no_down.len(),
            no_down.join(", ")
        ));
    }

    // The new version: a new timestamp when the range ends the history; --to's version when
    // newer migrations follow, so that the squashed SQL still runs before them.
    let followers = set.iter().filter(|m| m.version > to).count();
    let version = match args.version {
        Some(v) => {
            if set.contains(v) && !(args.from..=to).contains(&v) {
                return Err(CommandError::new(
                    Kind::Usage,
                    format!(
                        "--version {v} is taken by {}",
                        set.get(v).map(|m| m.location.as_str()).unwrap_or("")
                    ),
                ));
            }
            v
        }
        None if followers == 0 => next_version(Some(last))?,
        None => to,
    };
    if let Some(before) = set
        .iter()
        .rev()
        .find(|m| m.version < args.from)
        .filter(|m| version <= m.version)
    {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "--version {version} would run before {}, which precedes the squashed range",
                before.label()
            ),
        ));
    }
    if followers > 0 {
        if let Some(after) = set
            .iter()
            .find(|m| m.version > to)
            .filter(|m| version >= m.version)
        {
            return Err(CommandError::new(
                Kind::Usage,
                format!(
                    "--version {version} would run after {}, which follows the squashed range",
                    after.label()
                ),
            )
            .hint(format!(
                "leave out --version (the squashed migration then keeps version {to})"
            )));
        }
    }
    let (up, down) = combine(&sources);
    let folder = join(&dir, &format!("{version}_{}", args.name));
    let first = range[0].version;
    let squashed_dir = join(&dir, &format!("squashed_{first}_to_{to}"));
    if wp.root.join(&squashed_dir).exists() {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{squashed_dir}/ already exists; nothing was changed"),
        )
        .hint("move or delete it first (it holds the sources of an earlier squash)"));
    }
    if wp.root.join(&folder).exists() && !range.iter().any(|m| m.location == folder) {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{folder}/ already exists; nothing was changed"),
        ));
    }
    let versions: Vec<Version> = range.iter().map(|m| m.version).collect();
    let labels: Vec<(Version, String)> =
        range.iter().map(|m| (m.version, m.name.clone())).collect();
    let ups: BTreeMap<Version, Vec<u8>> = sources
        .iter()
        .map(|s| (s.migration.version, s.up.clone().into_bytes()))
        .collect();

    // The database, when one is given: all of the range applied, or none.
    let ledger = ctx.ledger();
    let database = ctx.database_name.as_deref().unwrap_or("default");
    let config_version = wp.location.config.version;
    let mut db = None;
    if database_given(ctx) {
        let (target, mut client) = ctx.connect()?;
        let applied = read_applied(
            &mut client,
            &ledger,
            &target.redacted(),
            config_version,
            database,
        )?;
        let all = squash_state(&applied, &labels, &ups)?;
        db = Some((client, applied.db.clone(), all));
    }

    if args.dry_run {
        ctx.ui.out(&format!(
            "Would squash {} migrations ({first}..{to}) into {folder}/",
            versions.len()
        ));
        ctx.ui.out(&format!(
            "Would {} the source folders{}",
            if args.delete_source { "delete" } else { "move" },
            if args.delete_source {
                String::new()
            } else {
                format!(" to {squashed_dir}/")
            }
        ));
        if let Some((_, name, all)) = &db {
            ctx.ui.out(&if *all {
                format!("Would record {version} as applied in {name} in place of the squashed versions (no SQL runs)")
            } else {
                format!("{name} has none of them applied: nothing to record")
            });
        }
        ctx.ui.info("dry run: nothing was changed");
        return Ok(());
    }

    // Files: new folder, sources moved aside (undone if the database step fails).
    let mut undo = Undo::default();
    let move_sources = |undo: &mut Undo| -> Result<(), CommandError> {
        let target = wp.root.join(&squashed_dir);
        std::fs::create_dir(&target)
            .map_err(|e| io_error(format!("cannot create {squashed_dir}/"), e))?;
        undo.created.push(target.clone());
        for m in &range {
            for p in migration_paths(m) {
                let from = wp.root.join(&p);
                let name = Path::new(&p).file_name().unwrap_or_default();
                let to = target.join(name);
                std::fs::rename(&from, &to).map_err(|e| io_error(format!("cannot move {p}"), e))?;
                undo.moved.push((from, to));
            }
        }
        Ok(())
    };
    // Move first: the new folder may reuse --to's version (and even its folder name).
    if let Err(e) = move_sources(&mut undo) {
        undo.rollback();
        return Err(e);
    }
    if let Err(e) = write_migration(&wp.root, &folder, up.as_bytes(), down.as_bytes()) {
        undo.rollback();
        return Err(e);
    }
    undo.created.push(wp.root.join(&folder));

    let mut recorded = None;
    if let Some((client, name, true)) = &mut db {
        let name = name.clone();
        let result = with_lock(client, &ledger, |tx| {
            let applied = read_applied(tx, &ledger, &name, config_version, database)?;
            if !squash_state(&applied, &labels, &ups)? {
                return Err(CommandError::new(
                    Kind::Refused,
                    format!("{name} changed meanwhile: the migrations to squash are no longer applied; nothing was changed"),
                ));
            }
            let new = NewRow {
                version,
                name: args.name.clone(),
                up: up.clone().into_bytes(),
                down: down.clone().into_bytes(),
            };
            let target_ref = format!("squash {first}..{to} into {version}");
            let plan = serde_json::json!({"squash": {"from": versions, "into": version, "executed": false}});
            write_state(
                tx,
                &ledger,
                &applied,
                database,
                &versions,
                Some(&new),
                &target_ref,
                plan,
                &ctx.actor,
            )
        });
        match result {
            Ok(id) => recorded = Some((name, id)),
            Err(e) => {
                undo.rollback();
                return Err(e);
            }
        }
    }
    if args.delete_source {
        if let Err(e) = std::fs::remove_dir_all(wp.root.join(&squashed_dir)) {
            ctx.ui.warn(&format!(
                "could not delete {squashed_dir}/ ({e}); delete it by hand"
            ));
        }
    }

    let trailer = trailer(&versions);
    let state_cmd = format!(
        "git migrate squash --from {first} --to {to} --state-only --version {version}{} --database-url <url>",
        ctx.database_name
            .as_deref()
            .map(|d| format!(" --database-name {d}"))
            .unwrap_or_default()
    );
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "name": args.name,
            "path": folder,
            "squashed": versions,
            "sources": if args.delete_source { serde_json::Value::Null } else { serde_json::Value::String(squashed_dir.clone()) },
            "database": match (&recorded, &db) {
                (Some((name, id)), _) => serde_json::json!({"target": name, "recorded": true, "deployment_id": id}),
                (None, Some((_, name, _))) => serde_json::json!({"target": name, "recorded": false}),
                (None, None) => serde_json::Value::Null,
            },
            "trailer": trailer,
            "state_only_command": state_cmd,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    ctx.ui.out(&format!(
        "Squashed {} migrations ({first}..{to}) into {folder}/",
        versions.len()
    ));
    ctx.ui.out(&format!(
        "  up.sql runs their ups in order; down.sql runs their downs in reverse order{}",
        if version == to {
            format!(" (version {to} is kept because newer migrations follow the range)")
        } else {
            String::new()
        }
    ));
    if args.delete_source {
        ctx.ui.out("Deleted the source folders.");
    } else {
        ctx.ui.out(&format!(
            "Moved the source folders to {squashed_dir}/ (ignored by git-migrate and Hasura; delete it when you no longer need it)."
        ));
    }
    match (&recorded, &db) {
        (Some((name, _)), _) => ctx.ui.out(&format!(
            "{name}: had all {} applied; the ledger now records {version} in their place (no SQL ran).",
            versions.len()
        )),
        (None, Some((_, name, _))) => ctx.ui.out(&format!(
            "{name}: none of them is applied there; nothing to record."
        )),
        (None, None) => ctx.ui.out(
            "No database given: only files were written (pass --database-url to also record the squash in a database that has them applied).",
        ),
    }
    ctx.ui.out("");
    ctx.ui.out("Next:");
    ctx.ui.out(&format!(
        "  1. Commit. `git migrate check` reports the removed versions as edited-migration; put this trailer in the commit message:\n       {trailer}"
    ));
    ctx.ui.out(&format!(
        "  2. Every other database that has {first}..{to} applied must record the squash before it deploys that commit\n     (otherwise the deploy reverts them and applies {version}):\n       {state_cmd}"
    ));
    if recorded.is_some() {
        ctx.ui.out(
            "  Until the squash is committed, `status` against HEAD shows the squashed versions as pending: deploy the new commit, not the old HEAD.",
        );
    }
    Ok(())
}

/// `squash --state-only`: the squashed migration is already in the working tree (committed,
/// pulled); record it in the database in place of the versions its `-- from` lines name.
fn squash_state_only(
    ctx: &Ctx,
    args: &SquashArgs,
    wp: &WorkProject,
    set: &MigrationSet,
) -> Result<(), CommandError> {
    let version = args
        .version
        .expect("clap requires --version with --state-only");
    if !database_given(ctx) {
        return Err(CommandError::new(
            Kind::Usage,
            "--state-only changes the database state, but no database is given",
        )
        .hint("pass --database-url postgresql://… (or set DATABASE_URL)"));
    }
    let Some(m) = set.get(version) else {
        return Err(CommandError::new(
            Kind::Usage,
            format!("--version {version}: there is no migration {version} in the working tree"),
        )
        .hint("check out the commit that holds the squashed migration first"));
    };
    let up_file = m.up.as_ref().expect("migrations in a set have an up.sql");
    let up = read_text(&wp.root, &up_file.path)?;
    let down = match &m.down {
        Some(d) => read_text(&wp.root, &d.path)?,
        None => String::new(),
    };
    let to = args.to.unwrap_or(Version::MAX);
    let range = args.from..=to;
    let labels = squashed_labels(&up);
    if labels.is_empty() || labels.iter().any(|(v, _)| !range.contains(v)) {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "{} is not the squash of {}..{}: its up.sql does not name (only) versions of that range in `-- from <version>_<name>` lines",
                m.label(),
                args.from,
                args.to.map(|t| t.to_string()).unwrap_or_else(|| "the latest".into())
            ),
        )
        .hint("pass the --from, --to and --version that `git migrate squash` printed"));
    }
    let versions: Vec<Version> = labels.iter().map(|(v, _)| *v).collect();
    let list = |v: &[Version]| {
        v.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ledger = ctx.ledger();
    let (target, mut client) = ctx.connect()?;
    let name = target.redacted();
    let database = ctx.database_name.as_deref().unwrap_or("default");
    let config_version = wp.location.config.version;
    enum Outcome {
        AlreadyDone,
        NothingApplied,
        Recorded(Option<i64>),
    }
    let outcome = with_lock(&mut client, &ledger, |tx| {
        let applied = read_applied(tx, &ledger, &name, config_version, database)?;
        let present: Vec<Version> = versions
            .iter()
            .copied()
            .filter(|v| applied.has(*v))
            .collect();
        // The squashed migration may keep the version of the last one it replaces (newer
        // migrations followed the range); then that row is rewritten.
        let reused = versions.contains(&version);
        let already = if reused {
            present == [version]
                && applied.state.live.applied.get(&version).is_none_or(|a| {
                    a.up_sha256 == git_migrate_core::checksum::sha256_hex(up.as_bytes())
                })
        } else {
            applied.has(version) && present.is_empty()
        };
        if already {
            return Ok(Outcome::AlreadyDone);
        }
        if applied.has(version) && !reused {
            return Err(CommandError::new(
                Kind::Refused,
                format!("{name} records {version} as applied and also versions it was squashed from; nothing was changed"),
            )
            .cause(format!("still applied: {}", list(&present)))
            .hint("check the schema, then remove them with `git migrate delete --server --version …`"));
        }
        if present.is_empty() {
            return Ok(Outcome::NothingApplied);
        }
        // Applied versions of the range that the squashed file does not hold would be lost.
        let extra: Vec<Version> = applied
            .versions()
            .into_iter()
            .filter(|v| range.contains(v) && !versions.contains(v))
            .collect();
        if !extra.is_empty() {
            return Err(CommandError::new(
                Kind::Refused,
                format!(
                    "{name} has versions of the range applied that {} does not hold; nothing was changed",
                    m.label()
                ),
            )
            .cause(format!("not in the squashed migration: {}", list(&extra)))
            .hint("give the exact --from and --to that `git migrate squash` printed"));
        }
        // All applied (or refused as out of sync / dirty), under the same names.
        squash_state(&applied, &labels, &BTreeMap::new())?;
        let renamed: Vec<String> = labels
            .iter()
            .filter_map(|(v, n)| {
                let a = applied.state.live.applied.get(v)?;
                (a.name != *n)
                    .then(|| format!("{v}: the ledger says {:?}, the squashed file {n:?}", a.name))
            })
            .collect();
        if !renamed.is_empty() {
            let mut e = CommandError::new(
                Kind::Refused,
                format!(
                    "{name} recorded the squashed versions under other names; nothing was changed"
                ),
            );
            for r in renamed {
                e = e.cause(r);
            }
            return Err(
                e.hint("check that this database ran the same migrations as the one squashed")
            );
        }
        let new = NewRow {
            version,
            name: m.name.clone(),
            up: up.as_bytes().to_vec(),
            down: down.as_bytes().to_vec(),
        };
        let (first, last) = (versions[0], versions[versions.len() - 1]);
        let target_ref = format!("squash {first}..{last} into {version} (--state-only)");
        let plan =
            serde_json::json!({"squash": {"from": versions, "into": version, "executed": false}});
        write_state(
            tx,
            &ledger,
            &applied,
            database,
            &versions,
            Some(&new),
            &target_ref,
            plan,
            &ctx.actor,
        )
        .map(Outcome::Recorded)
    })?;
    let (first, last) = (versions[0], versions[versions.len() - 1]);
    let (recorded, id) = match outcome {
        Outcome::AlreadyDone if ctx.json => (false, None),
        Outcome::NothingApplied if ctx.json => (false, None),
        Outcome::AlreadyDone => {
            ctx.ui.out(&format!(
                "{name} already records {} in place of {}; nothing to do.",
                m.label(),
                list(&versions)
            ));
            (false, None)
        }
        Outcome::NothingApplied => {
            ctx.ui.out(&format!(
                "{name} has none of {} applied; nothing to record (a deploy applies {} normally).",
                list(&versions),
                m.label()
            ));
            (false, None)
        }
        Outcome::Recorded(id) => {
            if !ctx.json {
                ctx.ui.out(&format!(
                    "{name}: recorded {} as applied in place of {} version(s) ({first}..{last}); no SQL ran.",
                    m.label(),
                    versions.len(),
                ));
            }
            (true, id)
        }
    };
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "squashed": versions,
            "target": name,
            "recorded": recorded,
            "deployment_id": id,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// delete

/// `git migrate delete`.
pub(crate) fn cmd_delete(ctx: &Ctx, args: &DeleteArgs) -> Result<(), CommandError> {
    if args.server {
        return delete_server(ctx, args);
    }
    let wp = work_project(ctx)?;
    let dir = database_folder(
        &wp.location,
        &wp.location.config.migrations_directory,
        ctx.database_name.as_deref(),
    )?;
    let set = migrations_at(ctx, &wp.tree, &dir)?;
    let chosen: Vec<&Migration> = if args.all {
        set.iter().collect()
    } else {
        let mut out = Vec::new();
        for v in &args.versions {
            match set.get(*v) {
                Some(m) => out.push(m),
                None => {
                    return Err(CommandError::new(
                        Kind::Usage,
                        format!(
                        "there is no migration {v} in {dir}/ (working tree); nothing was deleted"
                    ),
                    )
                    .hint("to remove only the database's record of it, add --server"))
                }
            }
        }
        out
    };
    if chosen.is_empty() {
        ctx.ui
            .out(&format!("{dir}/ holds no migrations; nothing to delete."));
        return Ok(());
    }
    // A database that has them applied would revert them on its next deploy.
    if database_given(ctx) && !args.force {
        let (target, mut client) = ctx.connect().map_err(|e| {
            e.hint("pass --force to delete the files without checking the database")
        })?;
        let applied = read_applied(
            &mut client,
            &ctx.ledger(),
            &target.redacted(),
            wp.location.config.version,
            ctx.database_name.as_deref().unwrap_or("default"),
        )?;
        let on: Vec<String> = chosen
            .iter()
            .filter(|m| applied.has(m.version))
            .map(|m| m.label())
            .collect();
        if !on.is_empty() {
            let list: Vec<String> = chosen
                .iter()
                .filter(|m| applied.has(m.version))
                .map(|m| format!("--version {}", m.version))
                .collect();
            return Err(CommandError::new(
                Kind::Refused,
                format!(
                    "{} of the migrations to delete are applied in {}; nothing was deleted",
                    on.len(),
                    applied.db
                ),
            )
            .cause(format!("applied: {}", on.join(", ")))
            .cause("without their files, the next deploy there would revert them")
            .hint(format!(
                "to forget them in the database too (no SQL runs): git migrate delete --server {}",
                list.join(" ")
            ))
            .hint("or pass --force to delete the files anyway"));
        }
    }
    if args.all && !args.force {
        ctx.ui.confirm_or_refuse(
            &format!(
                "Delete all {} migrations in {dir}/ from the working tree?",
                chosen.len()
            ),
            &format!(
                "--all deletes {} migrations and there is no terminal to confirm it",
                chosen.len()
            ),
            "nothing was deleted",
            "pass --force to delete them without asking",
        )?;
    }
    let mut deleted = Vec::new();
    for m in &chosen {
        for p in migration_paths(m) {
            let abs = wp.root.join(&p);
            let r = if abs.is_dir() {
                std::fs::remove_dir_all(&abs)
            } else {
                std::fs::remove_file(&abs)
            };
            r.map_err(|e| io_error(format!("cannot delete {p}"), e))?;
            deleted.push(p);
        }
    }
    if ctx.json {
        let v = serde_json::json!({
            "deleted": chosen.iter().map(|m| m.version).collect::<Vec<_>>(),
            "paths": deleted,
            "server": false,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for p in &deleted {
            ctx.ui.out(&format!("Deleted {p}"));
        }
        ctx.ui.info(
            "the database state was not touched (add --server for that); committed files come back with `git restore`",
        );
    }
    Ok(())
}

/// `delete --server`: forget versions in the database state; keep the files; run nothing.
fn delete_server(ctx: &Ctx, args: &DeleteArgs) -> Result<(), CommandError> {
    let ledger = ctx.ledger();
    let database = ctx.database_name.as_deref().unwrap_or("default");
    if let Some(d) = &ctx.database_name {
        validate_name("database name", d)?;
    }
    // Which of Hasura's stores the project's CLI reads (config v2: schema_migrations, v3:
    // cli_state); without a readable project, assume config v2.
    let config_version = work_project(ctx)
        .map(|wp| wp.location.config.version)
        .unwrap_or(2);
    let (target, mut client) = ctx.connect()?;
    let name = target.redacted();
    let preview = read_applied(&mut client, &ledger, &name, config_version, database)?;
    let stores = preview.state.hasura_stores();
    if !preview.state.live.ledger_exists && !stores.schema_migrations && !stores.cli_state {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "{name} has no migration state (no {}.migrations, no Hasura state); nothing was changed",
                ledger.schema()
            ),
        ));
    }
    if args.all && !args.force {
        let n = preview.versions().len();
        ctx.ui.confirm_or_refuse(
            &format!("Remove all {n} versions from the migration state of {name}?"),
            &format!("--all --server forgets {n} applied versions and there is no terminal to confirm it"),
            "nothing was changed",
            "pass --force to do it without asking",
        )?;
    }
    let done = with_lock(&mut client, &ledger, |tx| {
        let applied = read_applied(tx, &ledger, &name, config_version, database)?;
        let recorded = applied.versions();
        let versions: Vec<Version> = if args.all {
            recorded.iter().copied().collect()
        } else {
            let missing: Vec<String> = args
                .versions
                .iter()
                .filter(|v| !recorded.contains(v))
                .map(|v| v.to_string())
                .collect();
            if !missing.is_empty() {
                return Err(CommandError::new(
                    Kind::Refused,
                    format!(
                        "{name} does not record {} as applied; nothing was changed",
                        missing.join(", ")
                    ),
                )
                .hint("`git migrate status --table` lists what the database records"));
            }
            let mut v = args.versions.clone();
            v.sort_unstable();
            v.dedup();
            v
        };
        if versions.is_empty() {
            return Ok(None);
        }
        let plan = serde_json::json!({"delete_state": versions, "executed": false});
        let id = write_state(
            tx,
            &ledger,
            &applied,
            database,
            &versions,
            None,
            "delete --server",
            plan,
            &ctx.actor,
        )?;
        Ok(Some((versions, id, applied.tables(&ledger))))
    })?;
    let Some((versions, id, tables)) = done else {
        if ctx.json {
            let v = serde_json::json!({"deleted": [], "server": true, "target": name});
            ctx.ui
                .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            ctx.ui.out(&format!(
                "{name} records no applied versions; nothing to delete."
            ));
        }
        return Ok(());
    };
    if ctx.json {
        let v = serde_json::json!({
            "deleted": versions,
            "server": true,
            "target": name,
            "deployment_id": id,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!(
            "Removed {} version(s) from the migration state of {name} ({tables}): {}",
            versions.len(),
            versions
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        ctx.ui.out(
            "No SQL ran: whatever those migrations created is still in the database, and the files are unchanged.",
        );
        ctx.ui
            .info("the next deploy of a commit that holds these migrations applies them again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(v: Version, name: &str, up: &str, down: Option<&str>) -> Part {
        Part {
            migration: Migration {
                version: v,
                name: name.into(),
                location: format!("migrations/{v}_{name}"),
                tree: None,
                resolved: true,
                up: None,
                down: None,
            },
            up: up.into(),
            down: down.map(str::to_string),
        }
    }

    #[test]
    fn combine_orders_ups_forward_and_downs_backward() {
        let (up, down) = combine(&[
            source(1, "a", "create table a ();", Some("drop table a;\n")),
            source(2, "b", "create table b ();\n", None),
        ]);
        assert_eq!(
            up,
            "-- from 1_a\ncreate table a ();\n\n-- from 2_b\ncreate table b ();\n"
        );
        assert_eq!(
            down,
            "-- from 2_b: no down migration (skipped with --allow-empty-down)\n\n-- from 1_a\ndrop table a;\n"
        );
        assert_eq!(
            squashed_labels(&up),
            vec![(1, "a".to_string()), (2, "b".to_string())]
        );
    }

    #[test]
    fn names_and_trailer() {
        assert!(validate_name("n", "add users").is_ok());
        for bad in ["", " ", "a/b", "a\\b", "a\nb", "..", " x"] {
            assert!(validate_name("n", bad).is_err(), "{bad:?}");
        }
        assert_eq!(trailer(&[1, 2]), "Migration-Allow: edited-migration 1 2");
    }

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
