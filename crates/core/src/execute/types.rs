//! The executor's shared types, which every other file here uses and which use none of them
//! but `blockers.rs` (a lock timeout's [`Blocker`]s, and the observer a [`Job`] carries):
//! what goes in ([`ExecOptions`], [`Confirmed`], [`Extras`], and [`Job`], the caller's arguments
//! bundled for the helpers), what comes out ([`Event`]s while it runs, the [`Outcome`]), and what
//! goes wrong ([`ExecError`], [`MigrationFailure`], [`PartialState`], …); and the small helpers
//! the files share: `db` (a database error as an [`ExecError`]), `commit_tx` and
//! [`commit_refused`] (what a failed COMMIT means), `pg_ms` (a duration as a setting).

use super::blockers::{Blocker, Observer};
use crate::gather::{GatherError, GatherOptions};
use crate::ledger::dirty::DirtyDirection;
use crate::ledger::{Ledger, LedgerError};
use crate::metadata::consistency::Inconsistency;
use crate::plan::{Plan, PlanOptions, Problem, Step};
use crate::project::Version;
use crate::source::{Repo, SourceError, StepSql};
use crate::verify::fingerprint::Fingerprint;
use postgres::Client;
use std::time::Duration;

/// Who holds the deploy lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// Backend pid.
    pub pid: i32,
    /// Its application_name.
    pub application_name: String,
    /// Its user.
    pub user: String,
    /// Since when its transaction runs.
    pub since: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}, user {}, since {})",
            self.pid,
            super::blockers::application_name(&self.application_name),
            self.user,
            self.since
        )
    }
}

/// Where and how a migration's SQL failed.
#[derive(Debug)]
pub struct MigrationFailure {
    /// "up" or "down".
    pub direction: &'static str,
    /// `<version>_<name>`.
    pub label: String,
    /// Version.
    pub version: Version,
    /// The file (path @ commit, or the ledger copy).
    pub file: String,
    /// Server message.
    pub message: String,
    /// SQLSTATE.
    pub code: String,
    /// 1-based line and column in the file, when the server gave a position.
    pub position: Option<(usize, usize)>,
    /// That line's text.
    pub line_text: Option<String>,
    /// Server detail / hint / context.
    pub extra: Vec<String>,
    /// On a lock timeout (SQLSTATE 55P03): the sessions seen holding the lock it waited for.
    pub blockers: Vec<Blocker>,
    /// On a lock timeout: how many times the whole deployment had been run again before this
    /// failure (see [`ExecOptions::lock_retries`]).
    pub lock_retries: u32,
}

impl MigrationFailure {
    /// The statement timed out waiting for a lock (`lock_timeout`, SQLSTATE 55P03).
    pub fn is_lock_timeout(&self) -> bool {
        self.code == LOCK_NOT_AVAILABLE
    }
}

/// SQLSTATE `lock_not_available`, what `lock_timeout` raises.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Failures while executing.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A migration's SQL failed.
    #[error("{} of migration {} failed: {}", .0.direction, .0.label, .0.message)]
    Migration(Box<MigrationFailure>),
    /// The lock was not acquired in time.
    #[error(
        "another deployment holds the lock on this database and did not finish within {timeout:?}"
    )]
    LockTimeout {
        /// The wait.
        timeout: Duration,
        /// Who holds it.
        holder: Option<LockHolder>,
    },
    /// `actions.graphql` could not be merged into the actions for Hasura's catalog.
    #[error("cannot write the actions into Hasura's metadata catalog: {0}")]
    ActionsSdl(String),
    /// After the SQL ran, the metadata does not match the schema (rolled back).
    #[error("the metadata does not match the schema the migrations leave")]
    Inconsistent(Vec<Inconsistency>),
    /// The database changed between printing the plan and taking the lock.
    #[error("the database moved while waiting for the lock: another deployment ran, so the confirmed plan is stale")]
    Moved,
    /// Under the lock, the ledger or the live schema is not the one a plan file was computed
    /// against (`deploy --plan`): what no longer matches, one line each.
    #[error("the database moved since the plan file was made")]
    PlanFileStale(Vec<String>),
    /// After the lock the plan has problems.
    #[error("the plan cannot be carried out")]
    Refused(Vec<Problem>),
    /// Reading git.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Gathering facts.
    #[error(transparent)]
    Gather(#[from] GatherError),
    /// Ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The connection was lost, or ended by the server, while COMMIT was in flight: the outcome
    /// is unknown.
    #[error("the connection to the database ended while committing: {}", crate::db::describe_pg_error(.0))]
    CommitUncertain(#[source] postgres::Error),
    /// Any other database failure.
    #[error("{what}: {}", crate::db::describe_pg_error(.source))]
    Db {
        /// What we were doing.
        what: &'static str,
        /// Cause.
        #[source]
        source: postgres::Error,
    },
    /// SQL that runs inside the deployment transaction controls transactions itself.
    #[error("{} migration file(s) contain transaction control", .0.len())]
    TransactionControl(Vec<TxControlFound>),
    /// Ctrl-C: the open transaction was rolled back. `Some` when earlier segments of a
    /// deployment with no-transaction migrations were committed already.
    #[error("interrupted")]
    Interrupted(Option<Box<PartialState>>),
    /// A failure after part of a deployment with no-transaction migrations was committed.
    #[error("{error}")]
    Partial {
        /// What failed.
        error: Box<ExecError>,
        /// What was committed, and what is dirty.
        state: Box<PartialState>,
    },
    /// After the steps ran, the schema differs from the one this database had the last time a
    /// deployment left it at the target commit (rolled back: a down did not reverse its up, or
    /// the schema was changed outside git-migrate since).
    #[error("the schema after the plan differs from the one {expected_from} gives at {}: the end state is not proven", crate::source::short(commit))]
    EndStateMismatch {
        /// What gave the expected schema: `deployment #7`, or a scratch replay of the target.
        expected_from: String,
        /// The target commit.
        commit: String,
        /// What differs (expected = recorded, actual = now).
        differences: Vec<crate::verify::fingerprint::Difference>,
    },
    /// The connection holding the deploy lock for a segmented deployment was lost.
    #[error("the connection holding the deploy lock was lost")]
    LockLost,
    /// A segmented deployment could not open its lock connection.
    #[error("cannot open a second connection to hold the deploy lock: {0}")]
    LockConnection(String),
}

impl ExecError {
    /// The same failure seen as an interruption (Ctrl-C was pressed while it happened).
    pub(super) fn into_interrupted(self) -> ExecError {
        match self {
            ExecError::Partial { state, .. } => ExecError::Interrupted(Some(state)),
            ExecError::Interrupted(s) => ExecError::Interrupted(s),
            _ => ExecError::Interrupted(None),
        }
    }
}

/// Transaction control found in SQL that would run inside the deployment transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxControlFound {
    /// `<version>_<name>`.
    pub label: String,
    /// The file (path @ commit, or the ledger copy).
    pub file: String,
    /// The statement as written (e.g. `COMMIT`).
    pub statement: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// A migration left dirty by a no-transaction step that failed or was interrupted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirtyStep {
    /// Version.
    pub version: Version,
    /// `<version>_<name>`.
    pub label: String,
    /// Up or down.
    pub direction: DirtyDirection,
}

/// What a segmented deployment committed before it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialState {
    /// The deployment row (status `partial`).
    pub deployment_id: i64,
    /// Steps committed, as "apply V_name" / "revert V_name".
    pub done: Vec<String>,
    /// The migration left dirty, if the stop happened inside a no-transaction step.
    pub dirty: Option<DirtyStep>,
}

/// Commits. A commit the server refused with an ordinary error (a deferred constraint, a
/// serialization failure) was rolled back. A commit whose answer never came (the connection
/// dropped), or was a FATAL error that ends the session (`pg_terminate_backend`, a shutdown:
/// the server may have written the commit record before it noticed), may or may not have
/// happened, and says so.
pub(super) fn commit_tx(tx: postgres::Transaction<'_>) -> Result<(), ExecError> {
    tx.commit().map_err(|source| {
        if commit_refused(&source) {
            ExecError::Db {
                what: "committing",
                source,
            }
        } else {
            ExecError::CommitUncertain(source)
        }
    })
}

/// The server answered COMMIT with an error after which the transaction is known to be rolled
/// back: an ERROR, not a FATAL or PANIC, and not a connection or shutdown SQLSTATE.
pub fn commit_refused(e: &postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        return false;
    };
    let fatal = matches!(
        db.parsed_severity(),
        Some(postgres::error::Severity::Fatal | postgres::error::Severity::Panic)
    ) || matches!(db.severity(), "FATAL" | "PANIC");
    let code = db.code().code();
    !(fatal || code.starts_with("08") || code.starts_with("57P"))
}

pub(super) fn db(what: &'static str) -> impl FnOnce(postgres::Error) -> ExecError {
    move |source| ExecError::Db { what, source }
}

pub(super) fn pg_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Progress reported while executing.
#[derive(Debug)]
pub enum Event<'a> {
    /// Waiting for another deployment.
    Waiting(Option<&'a LockHolder>),
    /// A step starts.
    Step(&'a Step),
    /// Another deployment reached the target while we waited.
    AlreadyThere,
    /// The metadata does not match the schema, let through by `--allow-inconsistent-metadata`.
    Inconsistent(&'a [Inconsistency]),
    /// A migration's statement timed out waiting for a lock; the deployment was rolled back
    /// and runs again, from taking the deploy lock, after `wait`.
    LockRetry {
        /// This retry's number, from 1.
        retry: u32,
        /// How many retries there may be.
        retries: u32,
        /// The pause before it.
        wait: Duration,
        /// What failed (the migration, its file and the server's message).
        failure: &'a MigrationFailure,
    },
}

/// What the command layer can hand the executor beyond the plan.
#[derive(Default)]
pub struct Extras<'a> {
    /// The steps' SQL as [`read_step_sql`](super::read_step_sql) read it for the confirmed plan (read again when
    /// absent).
    pub texts: Option<Vec<StepSql>>,
    /// Opens another connection to the same database: it holds the deploy lock while a plan
    /// with no-transaction migrations runs. Without it such plans are refused.
    pub connect: Option<&'a dyn Fn() -> Result<Client, String>>,
    /// Opens another connection to the same database from another thread: while migrations
    /// run with a `lock_timeout`, it watches for sessions blocking them, to name them when a
    /// statement times out. Without it a lock timeout names no blocker.
    pub observe: Option<&'a (dyn Fn() -> Result<Client, String> + Sync)>,
}

/// Execution options.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// How long to wait for the lock.
    pub lock_timeout: Duration,
    /// `lock_timeout` for the migrations' own statements (never for the deploy lock's wait).
    pub statement_lock_timeout: Option<Duration>,
    /// How many times a deployment that failed because a migration's statement timed out
    /// waiting for a lock runs again (the failed run was rolled back; see
    /// [`execute_with`](super::execute_with)).
    pub lock_retries: u32,
    /// `statement_timeout` for the migrations.
    pub statement_timeout: Option<Duration>,
    /// SQL run once before the first migration of a fresh database (Hasura's pgcrypto).
    pub prelude: Option<String>,
    /// deploy | rollback | metadata.
    pub kind: &'static str,
    /// Commit even when the metadata does not match the schema (warnings instead).
    pub allow_inconsistent_metadata: bool,
    /// Leave Hasura's `hdb_catalog.hdb_metadata` alone even when it exists.
    pub skip_hasura_catalog: bool,
    /// Who runs it.
    pub actor: String,
    /// Record the steps in the ledger without running their SQL (`apply --skip-execution`).
    pub skip_execution: bool,
    /// Commit even when the end state differs from the schema recorded when this database was
    /// last at the target commit (`--allow-mismatch`); the difference is recorded.
    pub allow_mismatch: bool,
    /// The schema a scratch replay of the target's migrations gives (`--verify-target`): the end
    /// state is proven against it instead of the one recorded at the target commit.
    pub expected_schema: Option<Fingerprint>,
    /// The ledger and schema digests of a plan file (`deploy --plan`): checked under the lock,
    /// before anything runs; a difference is [`ExecError::PlanFileStale`].
    pub plan_file: Option<crate::planfile::Expected>,
}

/// What was planned (and shown, and confirmed) before taking the lock.
#[derive(Clone, Debug)]
pub struct Confirmed {
    /// The plan.
    pub plan: Plan,
    /// The live state it was computed from.
    pub live: crate::plan::LiveState,
    /// Target metadata snapshot, when built.
    pub snapshot: Option<serde_json::Value>,
    /// Canonical hash of the metadata after the plan.
    pub metadata_sha256: Option<String>,
    /// Metadata folder tree id of the target.
    pub metadata_tree: Option<String>,
}

/// The result of a successful execution.
#[derive(Debug)]
pub struct Outcome {
    /// The plan that ran (re-computed under the lock).
    pub plan: Plan,
    /// Deployment id (None when nothing needed doing).
    pub deployment_id: Option<i64>,
}

/// What the caller's arguments to [`execute_with`](super::execute_with) are, bundled for the helpers.
pub(super) struct Job<'a> {
    pub(super) repo: &'a Repo,
    pub(super) ledger: &'a Ledger,
    pub(super) confirmed: &'a Confirmed,
    pub(super) plan_options: PlanOptions,
    pub(super) gather_options: &'a GatherOptions,
    pub(super) options: &'a ExecOptions,
    /// Watches for sessions blocking the migrations, when there is a second connection.
    pub(super) observer: Option<&'a Observer>,
    /// No retry follows a lock timeout of this run: only then is its statement located by a
    /// replay (which would wait for the same lock once more).
    pub(super) last_attempt: bool,
}
