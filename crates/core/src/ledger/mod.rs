//! The ledger: git-migrate's tables in the target database (design §5.1), the advisory lock,
//! and Hasura's migration state (`hdb_catalog.schema_migrations`, `hdb_version.cli_state`)
//! kept in step when it exists ([`cli_state`]); adopting a database the Hasura CLI manages
//! ([`adopt`]).
//!
//! Read commands never create anything; the schema is created inside the first mutating
//! transaction. Every write uses bound parameters.

pub mod adopt;
mod attempts;
pub mod cli_state;
pub mod dirty;
pub mod hasura;

use crate::plan::{AppliedMigration, LiveState};
use crate::project::Version;
use crate::verify::fingerprint::Fingerprint;
pub use attempts::FailedAttempt;
use cli_state::{HasuraState, HasuraStores};
use postgres::types::Type;
use postgres::{GenericClient, SimpleQueryMessage};
use serde::Serialize;

/// The ledger's own format version (2: `migrations.dirty_direction`, for no-transaction
/// migrations; older ledgers are upgraded by the next deployment, [`Ledger::upgrade`]).
pub(crate) const SCHEMA_VERSION: i32 = 4;

/// The ledger format that added `migrations.computed_down`.
pub(crate) const COMPUTED_DOWNS_SINCE: i32 = 4;

/// A table never analyzed has no row estimate: below this size its rows are counted instead.
pub(crate) const COUNT_ROWS_UP_TO: i64 = 64 * 1024 * 1024;

/// At most this many [`LedgerFinding`]s are read and reported.
const FINDINGS_SHOWN: usize = 50;

use crate::checksum::is_checksum;

/// Errors talking to the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A query failed.
    #[error("{what}: {}", crate::db::describe_pg_error(.source))]
    Query {
        /// What we were doing.
        what: &'static str,
        /// Cause.
        #[source]
        source: postgres::Error,
    },
    /// The role lacks a privilege the ledger needs (SQLSTATE 42501).
    #[error("{what}: {}", crate::db::describe_pg_error(.source))]
    Permission {
        /// What we were doing.
        what: &'static str,
        /// What to grant.
        advice: String,
        /// Cause.
        #[source]
        source: postgres::Error,
    },
    /// The ledger holds something we cannot read (edited by hand?).
    #[error("the ledger table {table} holds an unexpected value: {detail}")]
    Corrupt {
        /// Table.
        table: String,
        /// What.
        detail: String,
    },
    /// The ledger was written by a newer git-migrate.
    #[error("the ledger in schema {schema} has format version {found}; this git-migrate understands up to {SCHEMA_VERSION}")]
    TooNew {
        /// Schema.
        schema: String,
        /// Version found.
        found: i32,
    },
}

fn q(what: &'static str) -> impl FnOnce(postgres::Error) -> LedgerError {
    move |source| match permission_advice(what, &source) {
        Some(advice) => LedgerError::Permission {
            what,
            advice,
            source,
        },
        None => LedgerError::Query { what, source },
    }
}

/// What to grant when a ledger statement fails for lack of a privilege.
fn permission_advice(what: &str, e: &postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    if *db.code() != postgres::error::SqlState::INSUFFICIENT_PRIVILEGE {
        return None;
    }
    let msg = db.message();
    Some(
        if let Some(name) = msg.strip_prefix("permission denied for database ") {
            format!(
            "creating the ledger (schema git_migrate, or `ledger_schema:`) needs the CREATE privilege \
             on the database: GRANT CREATE ON DATABASE {name} TO <the role git-migrate connects as>, \
             or create the schema for that role first (CREATE SCHEMA git_migrate AUTHORIZATION <role>)"
        )
        } else if let Some(schema) = msg.strip_prefix("permission denied for schema ") {
            format!(
            "{what} needs USAGE on schema {schema} and SELECT, INSERT, UPDATE, DELETE on its tables: \
             GRANT USAGE ON SCHEMA {schema} TO <role>; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL \
             TABLES IN SCHEMA {schema} TO <role>; GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO \
             <role> (or deploy as the role that owns the ledger)"
        )
        } else {
            "the role git-migrate connects as lacks a privilege on the ledger: deploy as the role that \
         owns it, or grant it SELECT, INSERT, UPDATE, DELETE on the ledger's tables"
            .to_string()
        },
    )
}

impl LedgerError {
    /// What to do about the error, for `hint:` lines.
    pub fn hints(&self) -> Vec<String> {
        match self {
            LedgerError::Permission { advice, .. } => vec![advice.clone()],
            LedgerError::Corrupt { .. } => vec![
                "the ledger looks edited by hand; inspect it with `git migrate log` and psql"
                    .into(),
            ],
            _ => vec![],
        }
    }
}

/// The last successful deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentSummary {
    /// Id.
    pub id: i64,
    /// deploy, rollback, …
    pub kind: String,
    /// As typed.
    pub target_ref: Option<String>,
    /// From commit.
    pub from_commit: Option<String>,
    /// To commit.
    pub to_commit: Option<String>,
    /// Started at (text as the server renders it).
    pub started_at: String,
    /// Who.
    pub actor: Option<String>,
    /// Worktree dirty.
    pub worktree_dirty: bool,
    /// Versions reverted.
    pub reverted: Vec<Version>,
    /// Versions applied.
    pub applied: Vec<Version>,
    /// ok / failed / partial.
    pub status: String,
    /// How long it ran, in milliseconds (history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Why it failed (history only; a failed attempt's error as shown then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything read from the database in one go.
#[derive(Clone, Debug, Default)]
pub struct DbState {
    /// The planner's view.
    pub live: LiveState,
    /// The last successful deployment.
    pub last: Option<DeploymentSummary>,
    /// Whether Hasura's `hdb_catalog.schema_migrations` exists.
    pub hasura_schema_migrations: bool,
    /// Whether Hasura's `hdb_catalog.hdb_version` exists with a jsonb `cli_state` column.
    pub hasura_cli_state: bool,
    /// Versions Hasura's state lists for the `default` database (both stores, counted once),
    /// read only when the ledger records no migration (a Hasura-managed database).
    pub hasura_applied: i64,
    /// Hasura's migration state, read only when the ledger records no migration and a store
    /// exists: what adoption works from ([`adopt`]).
    pub hasura_state: Option<HasuraState>,
    /// The Hasura database name the state was read for (`default` unless `--database-name`).
    pub database: String,
    /// The ledger's format version (`None`: no ledger, or no `schema_version` row).
    pub schema_version: Option<i32>,
    /// Where the ledger disagrees with its own history (rows or deployments edited by hand).
    pub findings: Vec<LedgerFinding>,
}

/// A disagreement between the ledger's rows and its deployment history: the trace of a hand
/// edit (a row deleted or inserted, a deployment deleted, the metadata row changed). Found by
/// one query in [`Ledger::read`]; turned into plan problems by [`LedgerFinding::problem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerFinding {
    /// Deployment `deployment` applied `version`, no later one reverted it, and the ledger has
    /// no row for it.
    RowMissing {
        /// The version.
        version: Version,
        /// The deployment that applied it last.
        deployment: i64,
    },
    /// Deployment `deployment` reverted `version` last, yet the ledger still has a row for it.
    RowNotReverted {
        /// The version.
        version: Version,
        /// The deployment that reverted it.
        deployment: i64,
    },
    /// A row that no deployment applied: its `deployment_id` is empty, or names a deployment
    /// that does not list the version.
    RowUnrecorded {
        /// The version.
        version: Version,
        /// Its `deployment_id`.
        deployment: Option<i64>,
    },
    /// A row whose `deployment_id` names a deployment missing from the history.
    DeploymentMissing {
        /// The version.
        version: Version,
        /// The missing deployment.
        deployment: i64,
    },
    /// A row whose `up_sha256` is not a checksum git-migrate writes (`sha256:` and 64 hex
    /// digits).
    ChecksumMalformed {
        /// The version.
        version: Version,
        /// What the row holds.
        found: String,
    },
    /// The metadata row's checksum is not the one the last deployment recorded.
    MetadataChanged {
        /// The deployment that recorded the metadata last.
        deployment: i64,
        /// What it recorded.
        recorded: Option<String>,
        /// What the metadata row says.
        found: Option<String>,
    },
}

impl LedgerFinding {
    fn from_row(r: &postgres::SimpleQueryRow) -> Option<LedgerFinding> {
        let version = r.get(1).and_then(|v| v.parse().ok());
        let deployment = r.get(2).and_then(|v| v.parse().ok());
        Some(match r.get(0)? {
            "missing" => LedgerFinding::RowMissing {
                version: version?,
                deployment: deployment?,
            },
            "reverted" => LedgerFinding::RowNotReverted {
                version: version?,
                deployment: deployment?,
            },
            "unrecorded" => LedgerFinding::RowUnrecorded {
                version: version?,
                deployment,
            },
            "no-deployment" => LedgerFinding::DeploymentMissing {
                version: version?,
                deployment: deployment?,
            },
            "checksum" => LedgerFinding::ChecksumMalformed {
                version: version?,
                found: r.get(3).unwrap_or_default().to_string(),
            },
            "metadata" => LedgerFinding::MetadataChanged {
                deployment: deployment?,
                recorded: r.get(3).map(str::to_string),
                found: r.get(4).map(str::to_string),
            },
            _ => return None,
        })
    }

    /// The migration it is about (`None` for the metadata row).
    pub fn version(&self) -> Option<Version> {
        match self {
            LedgerFinding::RowMissing { version, .. }
            | LedgerFinding::RowNotReverted { version, .. }
            | LedgerFinding::RowUnrecorded { version, .. }
            | LedgerFinding::DeploymentMissing { version, .. }
            | LedgerFinding::ChecksumMalformed { version, .. } => Some(*version),
            LedgerFinding::MetadataChanged { .. } => None,
        }
    }

    /// Whether the finding is about the metadata row (the rest are about migration rows).
    pub(crate) fn is_metadata(&self) -> bool {
        matches!(self, LedgerFinding::MetadataChanged { .. })
    }

    /// The finding as a plan problem: what the ledger says, what its history says, and how to
    /// put it right.
    pub fn problem(&self, schema: &str) -> crate::plan::Problem {
        let m = format!("{schema}.migrations");
        let d = format!("{schema}.deployments");
        let (version, message, causes, hints) = match self {
            LedgerFinding::RowMissing { version, deployment } => (
                Some(*version),
                format!("the ledger has no row for migration {version}, but its history says it is applied"),
                vec![
                    format!("{d}: deployment #{deployment} applied {version} and no later deployment reverted it"),
                    format!("{m}: no row for {version} (deleted by hand?)"),
                ],
                vec![
                    format!("if {version} is in fact applied, record it without running it: git migrate apply --version {version} --type up --skip-execution"),
                    format!("if it is not, apply it: git migrate apply --version {version} --type up"),
                ],
            ),
            LedgerFinding::RowNotReverted { version, deployment } => (
                Some(*version),
                format!("the ledger has a row for migration {version}, but its history says it was reverted"),
                vec![
                    format!("{d}: deployment #{deployment} reverted {version} and no later deployment applied it"),
                    format!("{m}: a row for {version} (inserted by hand?)"),
                ],
                ghost_hints(*version),
            ),
            LedgerFinding::RowUnrecorded { version, deployment } => (
                Some(*version),
                format!("the ledger has a row for migration {version} that no deployment applied"),
                vec![match deployment {
                    Some(id) => format!("{m}: the row for {version} names deployment #{id}, which did not apply {version} ({d})"),
                    None => format!("{m}: the row for {version} names no deployment (inserted by hand?)"),
                }],
                ghost_hints(*version),
            ),
            LedgerFinding::DeploymentMissing { version, deployment } => (
                Some(*version),
                format!("the ledger's history has lost deployment #{deployment}, which applied migration {version}"),
                vec![format!(
                    "{m}: the row for {version} names deployment #{deployment}, which is not in {d} (deleted by hand?)"
                )],
                vec![
                    "the commit the database is at is read from the newest deployment: with one deleted, it may be wrong".into(),
                    format!("if {version} is applied, re-record it: git migrate apply --version {version} --type down --skip-execution, then git migrate apply --version {version} --type up --skip-execution"),
                ],
            ),
            LedgerFinding::ChecksumMalformed { version, found } => (
                Some(*version),
                format!("the ledger's checksum of migration {version} is not one git-migrate writes"),
                vec![format!(
                    "{m}: up_sha256 of {version} is {found:?}, expected sha256:<64 hex digits>"
                )],
                vec![format!(
                    "record the checksum of the file as it is in git: git migrate repair --accept {version}"
                )],
            ),
            LedgerFinding::MetadataChanged {
                deployment,
                recorded,
                found,
            } => (
                None,
                format!("the ledger's metadata row ({schema}.metadata) was changed outside git-migrate"),
                vec![
                    format!(
                        "{d}: deployment #{deployment} left the metadata at {}",
                        recorded.as_deref().unwrap_or("(none)")
                    ),
                    format!(
                        "{schema}.metadata: sha256 {}",
                        found.as_deref().unwrap_or("(none)")
                    ),
                ],
                vec!["write the metadata of the deployed commit again: git migrate metadata apply <commit>".into()],
            ),
        };
        crate::plan::Problem {
            kind: crate::plan::ProblemKind::LedgerEdited,
            version,
            message,
            causes,
            hints,
        }
    }
}

fn ghost_hints(version: Version) -> Vec<String> {
    vec![
        format!("if {version} is not applied, drop the row without running anything: git migrate apply --version {version} --type down --skip-execution"),
        format!("if it is applied, record it properly: drop the row as above, then git migrate apply --version {version} --type up --skip-execution"),
    ]
}

impl DbState {
    /// The Hasura database name (`default` when not read from a ledger).
    pub fn database_name(&self) -> &str {
        if self.database.is_empty() {
            cli_state::DEFAULT_DATABASE
        } else {
            &self.database
        }
    }

    /// Which Hasura state stores exist (kept in step by every deployment).
    pub fn hasura_stores(&self) -> HasuraStores {
        HasuraStores {
            schema_migrations: self.hasura_schema_migrations,
            cli_state: self.hasura_cli_state,
        }
    }
}

/// The ledger in a given schema.
#[derive(Clone, Debug)]
pub struct Ledger {
    schema: String,
    /// The Hasura database name this run's migrations belong to (`cli_state` key).
    database: String,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            schema: "git_migrate".into(),
            database: cli_state::DEFAULT_DATABASE.into(),
        }
    }
}

pub use crate::quote::{quote_ident, quote_literal};

fn parse_bool(s: Option<&str>) -> bool {
    matches!(s, Some("t") | Some("true"))
}

fn parse_array(s: Option<&str>) -> Vec<Version> {
    s.unwrap_or("{}")
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

fn empty_hasura_state(schema_migrations: bool, cli_state: bool) -> HasuraState {
    HasuraState {
        schema_migrations: schema_migrations.then(Default::default),
        cli_state: cli_state.then(Default::default),
    }
}

/// One row of Hasura's state: part 0 is `schema_migrations (version, dirty)`, part 1 is
/// `cli_state -> 'migrations'`.
fn parse_hasura_row(
    part: usize,
    r: &postgres::SimpleQueryRow,
    h: &mut HasuraState,
) -> Result<(), LedgerError> {
    match part {
        0 => {
            let version: Version =
                r.get(0)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| LedgerError::Corrupt {
                        table: "hdb_catalog.schema_migrations".into(),
                        detail: "a row without a version".into(),
                    })?;
            h.schema_migrations
                .get_or_insert_with(Default::default)
                .insert(version, parse_bool(r.get(1)));
        }
        1 => {
            if let Some(text) = r.get(0) {
                let parsed =
                    cli_state::parse_migrations(text).map_err(|detail| LedgerError::Corrupt {
                        table: "hdb_catalog.hdb_version (cli_state)".into(),
                        detail,
                    })?;
                h.cli_state
                    .get_or_insert_with(Default::default)
                    .extend(parsed);
            }
        }
        _ => {}
    }
    Ok(())
}

impl Ledger {
    /// A ledger in `schema`.
    pub fn new(schema: &str) -> Ledger {
        Ledger {
            schema: schema.to_string(),
            database: cli_state::DEFAULT_DATABASE.into(),
        }
    }

    /// The same ledger, for the migrations of another Hasura database (config v3
    /// `migrations/<database>/`): the key under `cli_state.migrations`.
    pub fn with_database(mut self, database: &str) -> Ledger {
        self.database = database.to_string();
        self
    }

    /// The Hasura database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(table))
    }

    /// The advisory lock key: stable per ledger schema.
    pub fn lock_key(&self) -> i64 {
        let h = crate::checksum::sha256_hex(format!("git-migrate:{}", self.schema).as_bytes());
        i64::from_str_radix(&h[7..22], 16).unwrap_or(0x6769_746d_6967)
    }

    /// Reads the live state in two round trips (existence checks, then all ledger rows, the
    /// metadata row, the last deployment and, when the ledger records no migration, Hasura's
    /// migration state, in one simple query). Creates nothing.
    pub fn read(&self, c: &mut impl GenericClient) -> Result<DbState, LedgerError> {
        let sql = format!(
            "SELECT to_regclass({}) IS NOT NULL, to_regclass('hdb_catalog.schema_migrations') IS NOT NULL, \
             to_regclass({}) IS NOT NULL, \
             EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass('hdb_catalog.hdb_version') \
                     AND attname = 'cli_state' AND atttypid = 'jsonb'::regtype AND NOT attisdropped)",
            quote_literal(&self.t("migrations")),
            quote_literal(&self.t("schema_version"))
        );
        let rows = c.simple_query(&sql).map_err(q("checking for the ledger"))?;
        let first = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        });
        let (exists, hasura, has_version, cli_state) = match first {
            Some(r) => (
                parse_bool(r.get(0)),
                parse_bool(r.get(1)),
                parse_bool(r.get(2)),
                parse_bool(r.get(3)),
            ),
            None => (false, false, false, false),
        };
        let mut state = DbState {
            hasura_schema_migrations: hasura,
            hasura_cli_state: cli_state,
            ..Default::default()
        };
        // Hasura's state, two result sets (placeholders keep their positions fixed), read
        // only while the ledger records no migration (`guard`).
        let hasura_sql = |guard: &str| {
            format!(
                "{};\n{}",
                if hasura {
                    format!("SELECT version, dirty FROM hdb_catalog.schema_migrations{guard} ORDER BY version")
                } else {
                    "SELECT NULL, NULL WHERE false".into()
                },
                if cli_state {
                    format!("SELECT cli_state -> 'migrations' FROM hdb_catalog.hdb_version{guard}")
                } else {
                    "SELECT NULL WHERE false".into()
                }
            )
        };
        if !exists {
            if hasura || cli_state {
                let msgs = c
                    .simple_query(&hasura_sql(""))
                    .map_err(q("reading Hasura's migration state"))?;
                let mut h = empty_hasura_state(hasura, cli_state);
                let mut part = 0;
                for m in &msgs {
                    match m {
                        SimpleQueryMessage::CommandComplete(_) => part += 1,
                        SimpleQueryMessage::Row(r) => parse_hasura_row(part, r, &mut h)?,
                        _ => {}
                    }
                }
                state.hasura_applied = h.version_count(&self.database) as i64;
                state.hasura_state = Some(h);
            }
            state.database = self.database.clone();
            return Ok(state);
        }
        state.live.ledger_exists = true;
        let sql = format!(
            "SELECT version, name, up_sha256, up_blob, applied_commit, down_sql IS NOT NULL, dirty, folder_tree FROM {m} ORDER BY version;\n\
             SELECT sha256, tree_id, commit FROM {md} WHERE id = 1;\n\
             SELECT id, kind, target_ref, from_commit, to_commit, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), actor, worktree_dirty, reverted, applied, status \
               FROM {d} WHERE status = 'ok' AND kind <> 'metadata' ORDER BY id DESC LIMIT 1;\n\
             SELECT {v};\n\
             {h};\n\
             {f}",
            f = self.findings_sql(),
            h = hasura_sql(&format!(
                " WHERE NOT EXISTS (SELECT 1 FROM {})",
                self.t("migrations")
            )),
            m = self.t("migrations"),
            md = self.t("metadata"),
            d = self.t("deployments"),
            v = if has_version {
                format!("max(version) FROM {}", self.t("schema_version"))
            } else {
                "NULL".into()
            }
        );
        let msgs = c.simple_query(&sql).map_err(q("reading the ledger"))?;
        let mut h = empty_hasura_state(hasura, cli_state);
        let mut part = 0;
        for m in &msgs {
            match m {
                SimpleQueryMessage::CommandComplete(_) => part += 1,
                SimpleQueryMessage::Row(r) => match part {
                    0 => {
                        let version: Version =
                            r.get(0).and_then(|v| v.parse().ok()).ok_or_else(|| {
                                LedgerError::Corrupt {
                                    table: self.t("migrations"),
                                    detail: "a row without a version".into(),
                                }
                            })?;
                        // Checked here, not in the findings query: a regular expression over
                        // every row cost the server 12 ms per 1,000 rows.
                        if let Some(found) = r.get(2).filter(|s| !is_checksum(s)) {
                            state.findings.push(LedgerFinding::ChecksumMalformed {
                                version,
                                found: found.to_string(),
                            });
                        }
                        state.live.applied.insert(
                            version,
                            AppliedMigration {
                                version,
                                name: r.get(1).unwrap_or_default().to_string(),
                                up_sha256: r.get(2).unwrap_or_default().to_string(),
                                up_blob: r.get(3).map(str::to_string),
                                folder_tree: r.get(7).map(str::to_string),
                                applied_commit: r.get(4).map(str::to_string),
                                has_down_sql: parse_bool(r.get(5)),
                                dirty: parse_bool(r.get(6)),
                            },
                        );
                    }
                    1 => {
                        state.live.metadata_sha256 = r.get(0).map(str::to_string);
                        state.live.metadata_tree = r.get(1).map(str::to_string);
                    }
                    2 => {
                        let d = DeploymentSummary {
                            id: r.get(0).and_then(|v| v.parse().ok()).unwrap_or_default(),
                            kind: r.get(1).unwrap_or_default().to_string(),
                            target_ref: r.get(2).map(str::to_string),
                            from_commit: r.get(3).map(str::to_string),
                            to_commit: r.get(4).map(str::to_string),
                            started_at: r.get(5).unwrap_or_default().to_string(),
                            actor: r.get(6).map(str::to_string),
                            worktree_dirty: parse_bool(r.get(7)),
                            reverted: parse_array(r.get(8)),
                            applied: parse_array(r.get(9)),
                            status: r.get(10).unwrap_or_default().to_string(),
                            ..Default::default()
                        };
                        state.live.deployed_commit = d.to_commit.clone();
                        state.live.deployed_dirty = d.worktree_dirty;
                        state.last = Some(d);
                    }
                    3 => {
                        if let Some(found) = r.get(0).and_then(|v| v.parse::<i32>().ok()) {
                            state.schema_version = Some(found);
                            if found > SCHEMA_VERSION {
                                return Err(LedgerError::TooNew {
                                    schema: self.schema.clone(),
                                    found,
                                });
                            }
                        }
                    }
                    4 | 5 => parse_hasura_row(part - 4, r, &mut h)?,
                    6 => state.findings.extend(LedgerFinding::from_row(r)),
                    _ => {}
                },
                _ => {}
            }
        }
        // Migration rows by version, the metadata last, as many as the query returns at most.
        state
            .findings
            .sort_by_key(|f| (f.version().is_none(), f.version()));
        state.findings.truncate(FINDINGS_SHOWN);
        if state.live.applied.is_empty() && (hasura || cli_state) {
            state.hasura_applied = h.version_count(&self.database) as i64;
            state.hasura_state = Some(h);
        }
        state.database = self.database.clone();
        Ok(state)
    }

    /// The query behind [`LedgerFinding`] (all but the checksum format, which [`is_checksum`]
    /// checks while the rows are read): replays the history (`ok` and `partial` deployments,
    /// the applied and reverted versions of each; the newest mention of a version wins) and
    /// compares it with the rows. A `repair` deployment that lists no versions (squash, delete,
    /// repair: they change rows without saying which) resets what the history can vouch for, and
    /// a version whose newest mention is an unfinished (`partial`) deployment or whose row is
    /// dirty is left alone: the engine knows about those.
    ///
    /// "Missing" rows use `NOT IN (SELECT version …)`, which PostgreSQL runs as a hashed subplan
    /// (the planner's estimate for the CTE made `NOT EXISTS` a nested loop of index probes,
    /// 1.6 ms per 1,000 rows); the hash of the versions fits the default `work_mem` up to about
    /// 100,000 migrations.
    fn findings_sql(&self) -> String {
        format!(
            "WITH d AS (SELECT id, kind, status, reverted, applied FROM {d} WHERE status IN ('ok', 'partial')),
 reset AS (SELECT coalesce(max(id), 0) AS id FROM d
           WHERE kind = 'repair' AND cardinality(reverted) = 0 AND cardinality(applied) = 0),
 ev AS (SELECT d.id, d.status, u.v, true AS up FROM d, unnest(d.applied) AS u(v)
        UNION ALL SELECT d.id, d.status, u.v, false FROM d, unnest(d.reverted) AS u(v)),
 last AS (SELECT DISTINCT ON (v) v, id, status, up FROM ev ORDER BY v, id DESC, up DESC)
SELECT * FROM (
 SELECT 'missing' AS what, l.v, l.id, NULL::text AS recorded, NULL::text AS found FROM last l, reset r
  WHERE l.id > r.id AND l.status = 'ok' AND l.up AND l.v NOT IN (SELECT version FROM {m})
 UNION ALL
 SELECT 'reverted', l.v, l.id, NULL, NULL FROM last l JOIN {m} m ON m.version = l.v, reset r
  WHERE l.id > r.id AND l.status = 'ok' AND NOT l.up AND NOT m.dirty
 UNION ALL
 SELECT CASE WHEN m.deployment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {d} x WHERE x.id = m.deployment_id)
             THEN 'no-deployment' ELSE 'unrecorded' END, m.version, m.deployment_id, NULL, NULL
  FROM {m} m
  WHERE NOT m.dirty
    AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.id = m.deployment_id AND ev.v = m.version AND ev.up)
    AND NOT EXISTS (SELECT 1 FROM d WHERE d.id = m.deployment_id AND d.kind = 'repair')

 UNION ALL
 SELECT 'metadata', NULL, x.id, x.metadata_sha256, md.sha256
  FROM {md} md, LATERAL (SELECT id, metadata_sha256 FROM {d} WHERE status = 'ok' AND metadata_sha256 IS NOT NULL
                         ORDER BY id DESC LIMIT 1) x
  WHERE md.id = 1 AND x.metadata_sha256 IS DISTINCT FROM md.sha256
) f ORDER BY v NULLS LAST LIMIT {limit}",
            limit = FINDINGS_SHOWN,
            d = self.t("deployments"),
            m = self.t("migrations"),
            md = self.t("metadata"),
        )
    }

    /// Whether this backend's catalog cache disagrees with the catalog about the ledger's
    /// existence (possible right after waiting on an advisory lock while another session
    /// created it).
    pub(crate) fn cache_is_stale(&self, c: &mut impl GenericClient) -> Result<bool, LedgerError> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = {} AND c.relname = 'migrations') <> (to_regclass({}) IS NOT NULL)",
            quote_literal(&self.schema),
            quote_literal(&self.t("migrations"))
        );
        let rows = c
            .simple_query(&sql)
            .map_err(q("checking the catalog cache"))?;
        Ok(rows.iter().any(|m| match m {
            SimpleQueryMessage::Row(r) => parse_bool(r.get(0)),
            _ => false,
        }))
    }

    /// Creates the ledger schema and tables if missing (inside the caller's transaction).
    pub(crate) fn ensure(&self, c: &mut impl GenericClient) -> Result<(), LedgerError> {
        let s = quote_ident(&self.schema);
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {sv} (version int NOT NULL, installed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {m} (
  version bigint PRIMARY KEY,
  name text NOT NULL,
  database text NOT NULL DEFAULT 'default',
  up_sha256 text,
  down_sha256 text,
  down_sql text,
  up_blob text,
  down_blob text,
  folder_tree text,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text NOT NULL DEFAULT current_user,
  applied_commit text,
  deployment_id bigint,
  dirty boolean NOT NULL DEFAULT false,
  dirty_direction text CHECK (dirty_direction IN ('up','down')),
  computed_down jsonb
);
CREATE TABLE IF NOT EXISTS {d} (
  id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  actor text,
  tool_version text,
  kind text NOT NULL CHECK (kind IN ('deploy','rollback','apply','metadata','adopt','repair')),
  target_ref text,
  from_commit text,
  to_commit text,
  worktree_dirty boolean NOT NULL DEFAULT false,
  reverted bigint[] NOT NULL DEFAULT '{{}}',
  applied bigint[] NOT NULL DEFAULT '{{}}',
  metadata_sha256 text,
  status text NOT NULL CHECK (status IN ('ok','failed','partial')),
  plan jsonb,
  schema_digest text,
  schema_fingerprint jsonb,
  catalog_digest text
);
CREATE TABLE IF NOT EXISTS {md} (
  id int PRIMARY KEY CHECK (id = 1),
  snapshot jsonb NOT NULL,
  sha256 text NOT NULL,
  tree_id text,
  commit text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {sv} (version) SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {sv});",
            sv = self.t("schema_version"),
            m = self.t("migrations"),
            d = self.t("deployments"),
            md = self.t("metadata"),
        );
        c.batch_execute(&sql).map_err(q("creating the ledger"))
    }

    /// The fingerprint of the schema as deployments record it: everything but the ledger's own
    /// schema and Hasura's catalog, which deployments write as bookkeeping. One round trip.
    pub fn take_schema(&self, c: &mut impl GenericClient) -> Result<Fingerprint, LedgerError> {
        Fingerprint::take(c, &[self.schema(), "hdb_catalog"])
            .map_err(q("reading the schema's fingerprint"))
    }

    /// Records the schema a deployment left (its fingerprint and digest) on its row, and a
    /// note in its plan when it was committed although it differs from the recorded one.
    pub(crate) fn record_schema(
        &self,
        c: &mut impl GenericClient,
        deployment_id: i64,
        schema: &Fingerprint,
        mismatch: Option<&str>,
    ) -> Result<(), LedgerError> {
        let sql = format!(
            "UPDATE {} SET schema_digest = $2, schema_fingerprint = $3::text::jsonb, catalog_digest = {}, \
             plan = CASE WHEN $4::text IS NULL THEN plan \
               ELSE jsonb_set(coalesce(plan, '{{}}'::jsonb), '{{end_state_mismatch}}', to_jsonb($4::text)) END \
             WHERE id = $1",
            self.t("deployments"),
            self.catalog_digest_sql()
        );
        let json = schema.to_json().to_string();
        c.query_typed(
            &sql,
            &[
                (&deployment_id, Type::INT8),
                (&schema.digest(), Type::TEXT),
                (&json, Type::TEXT),
                (&mismatch, Type::TEXT),
            ],
        )
        .map_err(q("recording the schema the deployment left"))?;
        Ok(())
    }

    /// The schema recorded by the last successful deployment that left this database at
    /// `commit` exactly (not a working tree), with that deployment's id. `None` when no such
    /// deployment recorded one (never there, or before ledger format 3).
    pub(crate) fn schema_at(
        &self,
        c: &mut impl GenericClient,
        commit: &str,
    ) -> Result<Option<(i64, Fingerprint)>, LedgerError> {
        let sql = format!(
            "SELECT id, schema_fingerprint::text FROM {} WHERE status = 'ok' AND to_commit = $1 AND kind IN ('deploy', 'rollback') AND NOT worktree_dirty AND schema_fingerprint IS NOT NULL ORDER BY id DESC LIMIT 1",
            self.t("deployments")
        );
        let rows = c
            .query_typed(&sql, &[(&commit, Type::TEXT)])
            .map_err(q("reading the recorded schema"))?;
        self.parse_schema_row(rows.first())
    }

    /// `(count, newest)` over the catalog rows of everything made after initdb (OIDs from
    /// 16384): how many rows there are, and the smallest `age(xmin)` among them. Only
    /// counts and ages, no joins, no deparsing: ~55 ms on 3,334 tables, a few ms on 200.
    const CATALOG_ROWS: &'static str = "SELECT sum(n) AS n, min(a) AS a FROM (
  SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_class WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_attribute WHERE attrelid >= 16384 AND attnum > 0
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_attrdef WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_constraint WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_index WHERE indexrelid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_sequence WHERE seqrelid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_proc WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_type WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_enum WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_trigger WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_rewrite WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_policy WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_description WHERE objoid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_namespace WHERE oid >= 16384
  UNION ALL SELECT count(*), min(age(xmin)) FROM pg_catalog.pg_extension WHERE oid >= 16384
) q(n, a)";

    /// A scalar subquery for the deployment row: `<rows>:<xid>`, the number of catalog rows
    /// made after initdb and a transaction id past the deployment's own (the snapshot's `xmax`
    /// counts completed transactions only, so it can be the deployment's own id; a
    /// `SAVEPOINT` inside a migration can still leave a newer subtransaction id, which only
    /// costs `status` a fingerprint). Any DDL since inserts, deletes or updates catalog rows, and an insert or
    /// update gives the row an `xmin` at or after that id, while what the server changes in
    /// place (VACUUM and ANALYZE statistics) keeps it; a drop alone changes the count. So
    /// `status` can tell in one cheap query whether anything may have changed
    /// ([`Ledger::catalog_changed_since_last`]), and takes the fingerprint only then. It may
    /// say "changed" for nothing (a `TRUNCATE`, a `SAVEPOINT` in a migration, DDL in the
    /// ledger's own schema); the fingerprint then finds no difference.
    fn catalog_digest_sql(&self) -> String {
        format!(
            "((SELECT n FROM ({}) rows) || ':' || \
              (greatest(pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::int8, \
                        pg_catalog.pg_current_xact_id()::text::int8 + 1) % 4294967296))",
            Self::CATALOG_ROWS
        )
    }

    /// Whether the catalog may have changed since the last successful deployment recorded its
    /// digest: `Some(id)` of that deployment when it may have, `None` when it did not or there
    /// is nothing to compare with (no such deployment, or one that recorded no digest). One
    /// query (see [`Ledger::catalog_digest_sql`]).
    pub fn catalog_changed_since_last(
        &self,
        c: &mut impl GenericClient,
        schema_version: Option<i32>,
    ) -> Result<Option<i64>, LedgerError> {
        if schema_version.is_none_or(|v| v < 3) {
            return Ok(None);
        }
        let sql = format!(
            "WITH last AS (SELECT id, catalog_digest AS d FROM {} WHERE status = 'ok' ORDER BY id DESC LIMIT 1),
 now AS ({})
SELECT last.id, now.n::text IS DISTINCT FROM split_part(last.d, ':', 1)
       OR now.a <= age(split_part(last.d, ':', 2)::xid)
FROM last, now
WHERE last.d ~ '^[0-9]+:[0-9]{{1,10}}$' AND split_part(last.d, ':', 2)::int8 < 4294967296",
            self.t("deployments"),
            Self::CATALOG_ROWS
        );
        let rows = c
            .query_typed(&sql, &[])
            .map_err(q("comparing the catalog with the last deployment"))?;
        Ok(rows
            .first()
            .filter(|r| r.get::<_, Option<bool>>(1).unwrap_or(true))
            .map(|r| r.get(0)))
    }

    /// The schema against the one the last successful deployment recorded: what changed
    /// outside git-migrate since, with that deployment's id; `None` when nothing did or there
    /// is nothing to compare with. One query compares a digest of the catalog
    /// ([`Ledger::catalog_changed_since_last`]); only when it moved is the fingerprint taken,
    /// to name what changed (and to ignore what the end-state proof ignores).
    pub fn schema_drift(
        &self,
        c: &mut impl GenericClient,
        schema_version: Option<i32>,
    ) -> Result<Option<(i64, Vec<crate::verify::fingerprint::Difference>)>, LedgerError> {
        let recorded = match self.catalog_changed_since_last(c, schema_version)? {
            Some(_) => self.last_schema(c, schema_version)?,
            None => None,
        };
        Ok(match recorded {
            Some((id, recorded)) => {
                let now = self.take_schema(c)?;
                let differences =
                    crate::verify::fingerprint::diff_ignoring_column_order(&recorded, &now);
                (!differences.is_empty()).then_some((id, differences))
            }
            None => None,
        })
    }

    /// The schema recorded by the last successful deployment of any kind, with its id: what
    /// the database should look like unless something changed it outside git-migrate.
    /// `Ok(None)` when that deployment recorded none (a repair, an adoption, an older
    /// git-migrate), or there is none.
    pub fn last_schema(
        &self,
        c: &mut impl GenericClient,
        schema_version: Option<i32>,
    ) -> Result<Option<(i64, Fingerprint)>, LedgerError> {
        if schema_version.is_none_or(|v| v < 3) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT id, schema_fingerprint::text FROM {} WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
            self.t("deployments")
        );
        let rows = c
            .query_typed(&sql, &[])
            .map_err(q("reading the recorded schema"))?;
        self.parse_schema_row(rows.first())
    }

    fn parse_schema_row(
        &self,
        row: Option<&postgres::Row>,
    ) -> Result<Option<(i64, Fingerprint)>, LedgerError> {
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.get(0);
        let Some(text) = row.get::<_, Option<String>>(1) else {
            return Ok(None);
        };
        let corrupt = |detail: String| LedgerError::Corrupt {
            table: self.t("deployments"),
            detail: format!("schema_fingerprint of deployment #{id}: {detail}"),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let fp = Fingerprint::from_json(&value)
            .ok_or_else(|| corrupt("not a list of [kind, name, definition, …] rows".into()))?;
        Ok(Some((id, fp)))
    }

    /// Reads the stored down SQL of applied versions (fallback when their commit is gone).
    pub(crate) fn stored_downs(
        &self,
        c: &mut impl GenericClient,
        versions: &[Version],
    ) -> Result<Vec<(Version, Option<String>)>, LedgerError> {
        if versions.is_empty() {
            return Ok(vec![]);
        }
        // Planning against an adopted state that is not written yet (status, plan and deploy
        // on a database the Hasura CLI manages) happens before the ledger exists.
        let exists = c
            .query_typed_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[(&self.t("migrations"), Type::TEXT)],
            )
            .map_err(q("checking for the ledger"))?;
        if !exists.get::<_, bool>(0) {
            return Ok(vec![]);
        }
        let sql = format!(
            "SELECT version, down_sql FROM {} WHERE version = ANY($1)",
            self.t("migrations")
        );
        let rows = c
            .query_typed(&sql, &[(&versions, Type::INT8_ARRAY)])
            .map_err(q("reading stored down SQL"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Stores the downs computed while applying `rows` (rows without one are left alone), in
    /// the transaction that inserted the rows. No statement when there is none.
    pub(crate) fn store_computed_downs(
        &self,
        c: &mut impl GenericClient,
        rows: &[LedgerRow],
    ) -> Result<(), LedgerError> {
        let (versions, downs): (Vec<Version>, Vec<String>) = rows
            .iter()
            .filter_map(|r| Some((r.version, r.computed_down.as_ref()?.to_json())))
            .unzip();
        if versions.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {m} SET computed_down = u.d::jsonb FROM unnest($1::bigint[], $2::text[]) AS u(v, d) WHERE {m}.version = u.v",
            m = self.t("migrations")
        );
        c.execute_typed(
            &sql,
            &[(&versions, Type::INT8_ARRAY), (&downs, Type::TEXT_ARRAY)],
        )
        .map_err(q("storing computed downs"))?;
        Ok(())
    }

    /// The estimated rows of `tables` (quoted, qualified names) that exist: `pg_class.reltuples`,
    /// or for a table never analyzed (no estimate yet: -1, or 0 before PostgreSQL 14, which did
    /// not tell "never analyzed" from "empty") an exact `count(*)` when it is at most
    /// [`COUNT_ROWS_UP_TO`] bytes, else -1.
    pub(crate) fn row_estimates(
        c: &mut impl GenericClient,
        tables: &[String],
    ) -> Result<std::collections::BTreeMap<String, i64>, LedgerError> {
        let rows = c
            .query_typed(
                "SELECT t, c.oid::regclass::text, c.reltuples::bigint, pg_relation_size(c.oid) FROM unnest($1::text[]) AS t JOIN pg_class c ON c.oid = to_regclass(t)",
                &[(&tables, Type::TEXT_ARRAY)],
            )
            .map_err(q("estimating the rows of the tables a computed down drops"))?;
        let mut out = std::collections::BTreeMap::new();
        for r in rows {
            let (name, regclass, mut n, size): (String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if n <= 0 && size <= COUNT_ROWS_UP_TO {
                // The name comes from the server's regclass output: quoted as it must be.
                n = c
                    .query_typed_one(&format!("SELECT count(*) FROM {regclass}"), &[])
                    .map_err(q("counting the rows of a table a computed down drops"))?
                    .get(0);
            }
            out.insert(name, n);
        }
        Ok(out)
    }

    /// The downs computed when `versions` were applied, where the ledger has one. The caller
    /// asks only a ledger of format [`COMPUTED_DOWNS_SINCE`] or later (`DbState::schema_version`):
    /// older ones have no
    /// `computed_down` column.
    pub fn computed_downs(
        &self,
        c: &mut impl GenericClient,
        versions: &[Version],
    ) -> Result<Vec<(Version, crate::schema::ComputedDown)>, LedgerError> {
        if versions.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!(
            "SELECT version, computed_down::text FROM {} WHERE version = ANY($1) AND computed_down IS NOT NULL",
            self.t("migrations")
        );
        let rows = c
            .query_typed(&sql, &[(&versions, Type::INT8_ARRAY)])
            .map_err(q("reading computed downs"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let text: String = r.get(1);
                Some((r.get(0), crate::schema::ComputedDown::from_json(&text)?))
            })
            .collect())
    }

    /// The metadata that is live: Hasura's `hdb_catalog.hdb_metadata` when this database holds
    /// it (what running servers use, console edits included), else the ledger's snapshot.
    pub fn live_metadata(
        &self,
        c: &mut impl GenericClient,
        ledger_exists: bool,
    ) -> Result<Option<serde_json::Value>, LedgerError> {
        if hasura::catalog_exists(c).map_err(q("looking for Hasura's catalog"))? {
            if let Some((m, _)) =
                hasura::read_metadata(c).map_err(q("reading hdb_catalog.hdb_metadata"))?
            {
                return Ok(Some(m));
            }
        }
        if ledger_exists {
            self.metadata_snapshot(c)
        } else {
            Ok(None)
        }
    }

    /// Reads the live metadata snapshot, if any.
    pub fn metadata_snapshot(
        &self,
        c: &mut impl GenericClient,
    ) -> Result<Option<serde_json::Value>, LedgerError> {
        let sql = format!(
            "SELECT snapshot::text FROM {} WHERE id = 1",
            self.t("metadata")
        );
        let rows = c
            .query_typed(&sql, &[])
            .map_err(q("reading live metadata"))?;
        match rows.first() {
            None => Ok(None),
            Some(r) => {
                let text: String = r.get(0);
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| LedgerError::Corrupt {
                        table: self.t("metadata"),
                        detail: e.to_string(),
                    })
            }
        }
    }

    /// Whether a successful deployment here reached `commit` (what `promote_from` asks of the
    /// environment promoted from). False when there is no ledger. Two small queries, instead of
    /// reading the whole history: a fleet asks it once per database.
    pub fn reached(&self, c: &mut impl GenericClient, commit: &str) -> Result<bool, LedgerError> {
        let table = self.t("deployments");
        let exists = c
            .query_typed(
                &format!("SELECT to_regclass({}) IS NOT NULL", quote_literal(&table)),
                &[],
            )
            .map_err(q("checking for the ledger"))?
            .first()
            .is_some_and(|r| r.get::<_, bool>(0));
        if !exists {
            return Ok(false);
        }
        let sql =
            format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE status = 'ok' AND to_commit = $1)");
        let rows = c
            .query_typed(&sql, &[(&commit, Type::TEXT)])
            .map_err(q("reading deployments"))?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    /// Recent deployments, newest first.
    pub fn history(
        &self,
        c: &mut impl GenericClient,
        limit: i64,
    ) -> Result<Vec<DeploymentSummary>, LedgerError> {
        let sql = format!(
            "SELECT id, kind, target_ref, from_commit, to_commit, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), actor, worktree_dirty, reverted, applied, status, \
                    (extract(epoch FROM finished_at - started_at) * 1000)::bigint, plan->>'error' \
             FROM {} ORDER BY id DESC LIMIT $1",
            self.t("deployments")
        );
        let rows = c
            .query_typed(&sql, &[(&limit, Type::INT8)])
            .map_err(q("reading deployments"))?;
        Ok(rows
            .iter()
            .map(|r| DeploymentSummary {
                id: r.get(0),
                kind: r.get(1),
                target_ref: r.get(2),
                from_commit: r.get(3),
                to_commit: r.get(4),
                started_at: r.get(5),
                actor: r.get(6),
                worktree_dirty: r.get(7),
                reverted: r.get(8),
                applied: r.get(9),
                status: r.get(10),
                duration_ms: r.get(11),
                error: r.get(12),
            })
            .collect())
    }

    /// Writes one deployment: ledger rows deleted and inserted, metadata row, deployment row,
    /// and Hasura's state stores that exist (`hasura`, from [`DbState::hasura_stores`]:
    /// `schema_migrations` rows, `cli_state.migrations.default` keys), in a single statement.
    pub fn record(
        &self,
        c: &mut impl GenericClient,
        rec: &DeploymentRecord,
        hasura: HasuraStores,
    ) -> Result<i64, LedgerError> {
        let versions: Vec<i64> = rec.rows.iter().map(|r| r.version).collect();
        let names: Vec<&str> = rec.rows.iter().map(|r| r.name.as_str()).collect();
        let up_sha: Vec<&str> = rec.rows.iter().map(|r| r.up_sha256.as_str()).collect();
        let up_blob: Vec<Option<&str>> = rec.rows.iter().map(|r| r.up_blob.as_deref()).collect();
        let down_sha: Vec<Option<&str>> =
            rec.rows.iter().map(|r| r.down_sha256.as_deref()).collect();
        let down_sql: Vec<Option<&str>> = rec.rows.iter().map(|r| r.down_sql.as_deref()).collect();
        let down_blob: Vec<Option<&str>> =
            rec.rows.iter().map(|r| r.down_blob.as_deref()).collect();
        let folder_tree: Vec<Option<&str>> =
            rec.rows.iter().map(|r| r.folder_tree.as_deref()).collect();
        let hasura = cli_state::sync_ctes(hasura, "$12", "$6", "$22");
        let sql = format!(
            "WITH d AS (
   INSERT INTO {d} (started_at, finished_at, actor, tool_version, kind, target_ref, from_commit, to_commit,
                    worktree_dirty, reverted, applied, metadata_sha256, status, plan)
   VALUES (now(), clock_timestamp(), $10, $11, $1, $2, $3, $4, $5, $6, $7, $8, 'ok', $9::jsonb)
   RETURNING id),
 del AS (DELETE FROM {m} WHERE version = ANY($6)),
 ins AS (INSERT INTO {m} (version, name, database, up_sha256, up_blob, down_sha256, down_sql, down_blob, folder_tree, applied_commit, deployment_id)
         SELECT u.v, u.n, $22, u.us, u.ub, u.ds, u.dq, u.db, u.ft, $4, (SELECT id FROM d)
         FROM unnest($12::bigint[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $21::text[])
              AS u(v, n, us, ub, ds, dq, db, ft)),
 md AS (INSERT INTO {md} (id, snapshot, sha256, tree_id, commit, updated_at)
        SELECT 1, $19::jsonb, $8, $20, $4, now() WHERE $19::text IS NOT NULL
        ON CONFLICT (id) DO UPDATE SET snapshot = EXCLUDED.snapshot, sha256 = EXCLUDED.sha256,
          tree_id = EXCLUDED.tree_id, commit = EXCLUDED.commit, updated_at = EXCLUDED.updated_at),
 md2 AS (UPDATE {md} SET tree_id = $20, commit = $4, updated_at = now() WHERE id = 1 AND $19::text IS NULL){hasura}
SELECT id FROM d",
            d = self.t("deployments"),
            m = self.t("migrations"),
            md = self.t("metadata"),
        );
        let plan_json = rec.plan.to_string();
        let snapshot = rec.snapshot.as_ref().map(|s| s.to_string());
        let rows = c
            .query_typed(
                &sql,
                &[
                    (&rec.kind, Type::TEXT),
                    (&rec.target_ref, Type::TEXT),
                    (&rec.from_commit, Type::TEXT),
                    (&rec.to_commit, Type::TEXT),
                    (&rec.dirty, Type::BOOL),
                    (&rec.reverted, Type::INT8_ARRAY),
                    (&rec.applied, Type::INT8_ARRAY),
                    (&rec.metadata_sha256, Type::TEXT),
                    (&plan_json, Type::TEXT),
                    (&rec.actor, Type::TEXT),
                    (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                    (&versions, Type::INT8_ARRAY),
                    (&names, Type::TEXT_ARRAY),
                    (&up_sha, Type::TEXT_ARRAY),
                    (&up_blob, Type::TEXT_ARRAY),
                    (&down_sha, Type::TEXT_ARRAY),
                    (&down_sql, Type::TEXT_ARRAY),
                    (&down_blob, Type::TEXT_ARRAY),
                    (&snapshot, Type::TEXT),
                    (&rec.metadata_tree, Type::TEXT),
                    (&folder_tree, Type::TEXT_ARRAY),
                    (&self.database, Type::TEXT),
                ],
            )
            .map_err(q("recording the deployment in the ledger"))?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or_default())
    }
}

/// A change to the recorded state that runs nothing (`squash`, `delete --server`): versions to
/// forget and at most one migration to record as applied.
#[derive(Clone, Debug)]
pub struct StateEdit<'a> {
    /// Versions to remove from the state.
    pub remove: &'a [Version],
    /// A migration to record as applied (never applied at a commit: `applied_commit` is NULL).
    pub add: Option<&'a LedgerRow>,
    /// What the history shows as the target (`squash 1..3 into 3`).
    pub target_ref: &'a str,
    /// The plan column: what was done.
    pub plan: serde_json::Value,
    /// Who runs the command ([`crate::source::Repo::identity`]).
    pub identity: &'a str,
}

impl Ledger {
    /// Records `edit` without running anything, inside the caller's transaction: in the ledger
    /// (with a `repair` deployment row, so `log` shows who did it) when it is what records the
    /// applied versions, and in Hasura's stores (`schema_migrations`, `cli_state`) when they
    /// exist. Returns the deployment id when the ledger recorded one.
    pub fn record_state_edit(
        &self,
        c: &mut impl GenericClient,
        state: &DbState,
        edit: &StateEdit<'_>,
    ) -> Result<Option<i64>, LedgerError> {
        let mut deployment = None;
        if state.live.ledger_exists && !state.live.applied.is_empty() {
            let actor = actor_with_role(c, edit.identity);
            let plan = edit.plan.to_string();
            let row = c
                .query_typed_one(
                    &format!(
                        "INSERT INTO {d} (started_at, finished_at, actor, tool_version, kind, target_ref,
                            from_commit, to_commit, worktree_dirty, metadata_sha256, status, plan)
                         VALUES (now(), clock_timestamp(), $1, $2, 'repair', $3, $4, $4, $5,
                            (SELECT sha256 FROM {md} WHERE id = 1), 'ok', $6::text::jsonb)
                         RETURNING id",
                        d = self.t("deployments"),
                        md = self.t("metadata"),
                    ),
                    &[
                        (&actor, Type::TEXT),
                        (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                        (&edit.target_ref, Type::TEXT),
                        (&state.live.deployed_commit, Type::TEXT),
                        (&state.live.deployed_dirty, Type::BOOL),
                        (&plan, Type::TEXT),
                    ],
                )
                .map_err(q("recording the change in the ledger"))?;
            let id: i64 = row.get(0);
            deployment = Some(id);
            let remove: Vec<Version> = edit.remove.to_vec();
            c.query_typed(
                &format!(
                    "DELETE FROM {} WHERE version = ANY($1)",
                    self.t("migrations")
                ),
                &[(&remove, Type::INT8_ARRAY)],
            )
            .map_err(q("removing versions from the ledger"))?;
            if let Some(n) = edit.add {
                c.query_typed(
                    &format!(
                        "INSERT INTO {} (version, name, database, up_sha256, up_blob, down_sha256, down_sql,
                            down_blob, folder_tree, applied_commit, deployment_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)",
                        self.t("migrations")
                    ),
                    &[
                        (&n.version, Type::INT8),
                        (&n.name, Type::TEXT),
                        (&self.database, Type::TEXT),
                        (&n.up_sha256, Type::TEXT),
                        (&n.up_blob, Type::TEXT),
                        (&n.down_sha256, Type::TEXT),
                        (&n.down_sql, Type::TEXT),
                        (&n.down_blob, Type::TEXT),
                        (&n.folder_tree, Type::TEXT),
                        (&id, Type::INT8),
                    ],
                )
                .map_err(q("recording the migration in the ledger"))?;
            }
        }
        // Hasura's stores, with the statement every deployment uses. A version both removed and
        // added (a squash that keeps --to's version) is only added: the two would collide.
        let added: Vec<Version> = edit.add.iter().map(|n| n.version).collect();
        let removed: Vec<Version> = edit
            .remove
            .iter()
            .copied()
            .filter(|v| !added.contains(v))
            .collect();
        let ctes = cli_state::sync_ctes(state.hasura_stores(), "$1", "$2", "$3");
        if !ctes.is_empty() {
            c.query_typed(
                &format!("WITH nothing AS (SELECT 1){ctes}\nSELECT 1"),
                &[
                    (&added, Type::INT8_ARRAY),
                    (&removed, Type::INT8_ARRAY),
                    (&self.database, Type::TEXT),
                ],
            )
            .map_err(q("updating Hasura's migration state"))?;
        }
        Ok(deployment)
    }
}

/// A ledger row to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// `sha256:…` of up.sql.
    pub up_sha256: String,
    /// Blob id of up.sql.
    pub up_blob: Option<String>,
    /// `sha256:…` of down.sql.
    pub down_sha256: Option<String>,
    /// down.sql text (the §7.2 fallback).
    pub down_sql: Option<String>,
    /// Blob id of down.sql.
    pub down_blob: Option<String>,
    /// Tree id of the migration folder.
    pub folder_tree: Option<String>,
    /// A down computed when it was applied (it had no usable down), as the ledger stores it.
    pub computed_down: Option<crate::schema::ComputedDown>,
}

/// Everything one deployment writes.
#[derive(Clone, Debug)]
pub struct DeploymentRecord {
    /// deploy | rollback | …
    pub kind: String,
    /// As typed.
    pub target_ref: String,
    /// From commit.
    pub from_commit: Option<String>,
    /// To commit.
    pub to_commit: Option<String>,
    /// Worktree or index source.
    pub dirty: bool,
    /// Reverted versions.
    pub reverted: Vec<Version>,
    /// Applied versions.
    pub applied: Vec<Version>,
    /// Rows to insert.
    pub rows: Vec<LedgerRow>,
    /// Canonical hash of the metadata now live.
    pub metadata_sha256: Option<String>,
    /// Metadata folder tree id.
    pub metadata_tree: Option<String>,
    /// New snapshot, when it was built (None keeps the stored one).
    pub snapshot: Option<serde_json::Value>,
    /// The plan, as JSON.
    pub plan: serde_json::Value,
    /// Who ran it.
    pub actor: String,
}
/// What the ledger records as the actor: who runs the command (`identity`, see
/// [`crate::source::Repo::identity`]) and the database role it connected as, e.g.
/// `Jane Doe <jane@example.com> (role deployer)`.
pub fn actor_with_role(client: &mut impl postgres::GenericClient, identity: &str) -> String {
    let role = client
        .simple_query("SELECT current_user")
        .ok()
        .and_then(|msgs| {
            msgs.into_iter().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
        });
    match role {
        Some(r) => format!("{identity} (role {r})"),
        None => identity.to_string(),
    }
}
