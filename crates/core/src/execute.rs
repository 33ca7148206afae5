//! Running a plan: one transaction for down SQL, up SQL, ledger rows, metadata and the
//! deployment row, under a transaction-scoped advisory lock, re-planned after the lock.
//! A database the Hasura CLI manages is adopted at the start of that transaction; Hasura's
//! state stores are written by the same statement as the ledger.
//!
//! A plan with migrations marked `-- git-migrate:no-transaction` (design §7.3) runs in
//! segments instead: the transactional steps between two such migrations commit together with
//! their ledger rows; before a no-transaction migration runs (statement by statement, on the
//! plain connection), its ledger row is committed marked `dirty` and the deployment row says
//! `partial`; after it, the row is made clean; the last segment writes the metadata and turns
//! the deployment `ok`. The advisory lock is then held by a second connection in an idle
//! transaction for the whole deployment (see [`execute_with`]).
//!
//! Before anything runs, every SQL text that will run inside a transaction is searched for
//! transaction control (`COMMIT`, `BEGIN`, …), which would end the deployment transaction
//! half-way; such a plan is refused.
//!
//! Ctrl-C ([`crate::interrupt`]) cancels the running statement; the transaction rolls back.

use crate::checksum::sha256_hex;
use crate::gather::{self, GatherError, GatherOptions, Planned, TargetProject};
use crate::interrupt;
use crate::ledger::adopt::{self, AdoptError, AdoptOptions, Adoption};
use crate::ledger::dirty::DirtyDirection;
use crate::ledger::{
    cli_state, quote_literal, DbState, DeploymentRecord, Ledger, LedgerError, LedgerRow,
};
use crate::metadata::consistency::{self, Inconsistency};
use crate::plan::{Plan, PlanOptions, Problem, Step};
use crate::project::Version;
use crate::source::{Repo, SourceError};
use crate::verify::fingerprint::Fingerprint;
use postgres::{Client, SimpleQueryMessage};
use std::cell::Cell;
use std::ops::Range;
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
            if self.application_name.is_empty() {
                "no application_name"
            } else {
                &self.application_name
            },
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
}

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
    fn into_interrupted(self) -> ExecError {
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
fn commit_tx(tx: postgres::Transaction<'_>) -> Result<(), ExecError> {
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

fn db(what: &'static str) -> impl FnOnce(postgres::Error) -> ExecError {
    move |source| ExecError::Db { what, source }
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
}

pub use crate::project::txcontrol::is_no_transaction;
pub use crate::source::StepSql;

/// Whether `step` runs outside the deployment transaction.
pub fn runs_outside(step: &Step, sql: &StepSql) -> bool {
    sql.no_transaction && !matches!(step, Step::Revert { noop: true, .. })
}

/// Reads the SQL of every step (the up.sql blobs of applies; reverts carry theirs).
pub fn read_step_sql(
    repo: &Repo,
    target: &TargetProject,
    steps: &[Step],
) -> Result<Vec<StepSql>, ExecError> {
    steps
        .iter()
        .map(|step| match step {
            Step::Revert { sql, down, .. } => Ok(StepSql::new(sql.clone(), down.to_string())),
            Step::Apply {
                up_path, up_blob, ..
            } => {
                let p = target
                    .project
                    .as_ref()
                    .expect("apply steps come from a project");
                let up = repo.read(&p.tree, up_path, Some(up_blob))?;
                Ok(StepSql::from_up_file(up, up_path, &p.at())?)
            }
        })
        .collect()
}

/// Transaction control in the SQL that would run inside a transaction (no-transaction
/// migrations and reverts recorded without running are skipped).
pub fn transaction_control_in(steps: &[Step], texts: &[StepSql]) -> Vec<TxControlFound> {
    let mut out = Vec::new();
    for (step, sql) in steps.iter().zip(texts) {
        if runs_outside(step, sql) || matches!(step, Step::Revert { noop: true, .. }) {
            continue;
        }
        let label = match step {
            Step::Revert { version, name, .. } | Step::Apply { version, name, .. } => {
                format!("{version}_{name}")
            }
        };
        for t in sql.tx_control.iter().cloned() {
            out.push(TxControlFound {
                label: label.clone(),
                file: sql.file.clone(),
                statement: t.statement,
                line: t.line,
                column: t.column,
            });
        }
    }
    out
}

/// What the command layer can hand the executor beyond the plan.
#[derive(Default)]
pub struct Extras<'a> {
    /// The steps' SQL as [`read_step_sql`] read it for the confirmed plan (read again when
    /// absent).
    pub texts: Option<Vec<StepSql>>,
    /// Opens another connection to the same database: it holds the deploy lock while a plan
    /// with no-transaction migrations runs. Without it such plans are refused.
    pub connect: Option<&'a dyn Fn() -> Result<Client, String>>,
}

/// Execution options.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// How long to wait for the lock.
    pub lock_timeout: Duration,
    /// `lock_timeout` for the migrations' own statements.
    pub statement_lock_timeout: Option<Duration>,
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

fn pg_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// How one attempt at the ledger's advisory lock ended.
enum Attempt {
    /// The transaction holds the lock.
    Locked,
    /// Roll back and try again in a new transaction (stale catalog cache).
    Restart,
}

/// Tries to take the ledger's advisory lock in `tx` (design §7.3): tries first; if another
/// deployment holds it, reports [`Event::Waiting`] once and waits until `deadline`. Waiters
/// are served in queue order.
///
/// A backend does not process catalog invalidations while it waits on an advisory lock, so a
/// ledger created meanwhile can still look absent to name lookups (a stale negative cache
/// entry); when the catalog itself disagrees with the cache, the caller starts a fresh
/// transaction, which processes invalidations first.
fn attempt_lock(
    tx: &mut postgres::Transaction<'_>,
    ledger: &Ledger,
    deadline: std::time::Instant,
    timeout: Duration,
    announced: &mut bool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Attempt, ExecError> {
    let key = ledger.lock_key();
    let got = first_bool(
        tx.simple_query(&format!("SELECT pg_try_advisory_xact_lock({key})"))
            .map_err(db("taking the deploy lock"))?,
    );
    if got {
        return Ok(Attempt::Locked);
    }
    let holder = lock_holder(tx, key);
    if !*announced {
        on_event(Event::Waiting(holder.as_ref()));
        *announced = true;
    }
    let remaining = deadline.saturating_duration_since(std::time::Instant::now());
    let timed_out = || ExecError::LockTimeout {
        timeout,
        holder: holder.clone(),
    };
    if remaining.is_zero() {
        return Err(timed_out());
    }
    let wait = tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {}; SELECT pg_advisory_xact_lock({key})",
        quote_literal(&pg_ms(remaining.max(Duration::from_millis(1))))
    ));
    match wait {
        Ok(()) if ledger.cache_is_stale(tx)? => Ok(Attempt::Restart),
        Ok(()) => {
            // That lock_timeout bounded the wait only, not the statements that follow.
            tx.batch_execute("SET LOCAL lock_timeout = DEFAULT")
                .map_err(db("taking the deploy lock"))?;
            Ok(Attempt::Locked)
        }
        Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(timed_out())
        }
        Err(e) => Err(db("waiting for the deploy lock")(e)),
    }
}

/// Runs `work` in one transaction holding the ledger's advisory lock (waiting up to
/// `timeout` for another deployment) and commits when it succeeds; any error rolls back.
pub fn with_lock<R>(
    client: &mut Client,
    ledger: &Ledger,
    timeout: Duration,
    on_event: &mut dyn FnMut(Event<'_>),
    work: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<R, ExecError>,
) -> Result<R, ExecError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut announced = false;
    loop {
        let mut tx = client
            .transaction()
            .map_err(db("starting the transaction"))?;
        match attempt_lock(&mut tx, ledger, deadline, timeout, &mut announced, on_event)? {
            Attempt::Locked => {
                let r = work(&mut tx)?;
                commit_tx(tx)?;
                return Ok(r);
            }
            Attempt::Restart => tx.rollback().map_err(db("restarting the transaction"))?,
        }
    }
}

/// Executes `confirmed` against the database in one transaction (or, with no-transaction
/// migrations, in segments: see [`execute_with`]).
#[allow(clippy::too_many_arguments)]
pub fn execute(
    client: &mut Client,
    repo: &Repo,
    ledger: &Ledger,
    target: &mut TargetProject,
    confirmed: &Confirmed,
    plan_options: PlanOptions,
    gather_options: &GatherOptions,
    options: &ExecOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, ExecError> {
    execute_with(
        client,
        repo,
        ledger,
        target,
        confirmed,
        plan_options,
        gather_options,
        options,
        on_event,
        Extras::default(),
    )
}

/// What the caller's arguments to [`execute_with`] are, bundled for the helpers.
struct Job<'a> {
    repo: &'a Repo,
    ledger: &'a Ledger,
    confirmed: &'a Confirmed,
    plan_options: PlanOptions,
    gather_options: &'a GatherOptions,
    options: &'a ExecOptions,
}

/// Executes `confirmed`: refuses transaction control first, then runs the plan in one
/// transaction, or in segments when it has no-transaction migrations.
///
/// Segmented deployments hold the advisory lock in a *second* connection (`extras.connect`),
/// in a transaction that stays open and idle until the deployment ends: a transaction-scoped
/// lock, as for every other deployment, which also works through a transaction-pooling
/// PgBouncer (the pooler keeps that transaction on one server connection), where a
/// session-level `pg_advisory_lock` would stay behind on a pooled server connection. The idle
/// transaction has no snapshot, so `CREATE INDEX CONCURRENTLY` does not wait for it. Every
/// segment checks that the lock is still held before it commits.
///
/// Ctrl-C (while this runs) cancels the running statement and rolls back
/// ([`ExecError::Interrupted`]).
#[allow(clippy::too_many_arguments)]
pub fn execute_with(
    client: &mut Client,
    repo: &Repo,
    ledger: &Ledger,
    target: &mut TargetProject,
    confirmed: &Confirmed,
    plan_options: PlanOptions,
    gather_options: &GatherOptions,
    options: &ExecOptions,
    on_event: &mut dyn FnMut(Event<'_>),
    extras: Extras<'_>,
) -> Result<Outcome, ExecError> {
    let texts = match extras.texts {
        Some(t) if t.len() == confirmed.plan.steps.len() => t,
        _ => read_step_sql(repo, target, &confirmed.plan.steps)?,
    };
    if !options.skip_execution {
        let found = transaction_control_in(&confirmed.plan.steps, &texts);
        if !found.is_empty() {
            return Err(ExecError::TransactionControl(found));
        }
    }
    let segmented = !options.skip_execution
        && confirmed
            .plan
            .steps
            .iter()
            .zip(&texts)
            .any(|(s, t)| runs_outside(s, t));
    let job = Job {
        repo,
        ledger,
        confirmed,
        plan_options,
        gather_options,
        options,
    };
    let watch = interrupt::Watch::install();
    if let Some(w) = &watch {
        w.add(client.cancel_token());
    }
    let result = if segmented {
        execute_segmented(
            client,
            extras.connect,
            watch.as_ref(),
            &job,
            target,
            on_event,
            texts,
        )
    } else {
        execute_single(client, &job, target, on_event, texts)
    };
    let result = match result {
        Err(e) if interrupt::requested() => {
            interrupt::acknowledge();
            Err(e.into_interrupted())
        }
        r => r,
    };
    drop(watch);
    result
}

/// The plan re-made under the lock, ready to run.
struct Ready {
    plan: Plan,
    state: DbState,
    snapshot: Option<serde_json::Value>,
    metadata_sha256: Option<String>,
    metadata_tree: Option<String>,
}

/// What [`under_lock`] decided.
enum UnderLock {
    /// Nothing more to run: commit the transaction when `commit`, then return `outcome`.
    Done { outcome: Box<Outcome>, commit: bool },
    /// Run the plan.
    Go(Box<Ready>),
}

/// Under the lock, in `tx`: re-reads the live state (adopting a database the Hasura CLI
/// manages), re-plans when it moved, stops when the work differs from what was confirmed,
/// and creates or upgrades the ledger.
fn under_lock(
    tx: &mut postgres::Transaction<'_>,
    job: &Job<'_>,
    target: &mut TargetProject,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<UnderLock, ExecError> {
    let (repo, ledger, confirmed) = (job.repo, job.ledger, job.confirmed);
    // Re-read under the lock. When the ledger says what it said when the plan was made, the
    // plan stands (it is a pure function of the target and this state); otherwise re-plan.
    let mut state = ledger.read(tx)?;
    // A database the Hasura CLI manages is adopted first, in this transaction (design §5.2):
    // Hasura's state is locked against the CLI and read again, and the plan is made (and
    // compared with the confirmed one) against the adopted state, which the caller planned
    // against too.
    let before_adoption = state.live.deployed_commit.clone();
    let adoption = if adopt::adopts_in(job.plan_options.mode) && adopt::needed(&state) {
        cli_state::lock_stores(tx, state.hasura_stores())
            .map_err(db("locking Hasura's migration state"))?;
        state = ledger.read(tx)?;
        adopt_for(repo, &mut state, target)?
    } else {
        None
    };
    let Planned {
        plan,
        snapshot,
        metadata_sha256,
        metadata_tree,
        ..
    } = if state.live == confirmed.live {
        Planned {
            plan: Ok(confirmed.plan.clone()),
            snapshot: confirmed.snapshot.clone(),
            metadata_sha256: confirmed.metadata_sha256.clone(),
            metadata_tree: confirmed.metadata_tree.clone(),
            needs_replay: vec![],
        }
    } else {
        gather::plan_for(
            repo,
            tx,
            ledger,
            target,
            &state,
            job.plan_options,
            job.gather_options,
        )?
    };
    let plan = plan.map_err(ExecError::Refused)?;
    if !plan.same_work(&confirmed.plan) {
        if plan.is_noop() && plan.to_commit == state.live.deployed_commit {
            on_event(Event::AlreadyThere);
            return Ok(UnderLock::Done {
                outcome: Box::new(Outcome {
                    plan,
                    deployment_id: None,
                }),
                commit: false,
            });
        }
        return Err(ExecError::Moved);
    }
    if let Some(a) = &adoption {
        let id = ledger.record_adoption(
            tx,
            a,
            before_adoption.as_deref(),
            &job.options.actor,
            state.hasura_stores(),
        )?;
        if plan.is_noop() && !plan.dirty && plan.to_commit == state.live.deployed_commit {
            // The adoption alone brings the ledger to the target.
            return Ok(UnderLock::Done {
                outcome: Box::new(Outcome {
                    plan,
                    deployment_id: Some(id),
                }),
                commit: true,
            });
        }
    } else if !state.live.ledger_exists {
        ledger.ensure(tx)?;
    }
    if state.live.ledger_exists {
        ledger.upgrade(tx, state.schema_version)?;
    }
    Ok(UnderLock::Go(Box::new(Ready {
        plan,
        state,
        snapshot,
        metadata_sha256,
        metadata_tree,
    })))
}

/// `SET LOCAL statement_timeout …; SET LOCAL lock_timeout …` from the options (`scope` is
/// `LOCAL` or `SESSION`), or "".
fn timeout_settings(options: &ExecOptions, scope: &str) -> String {
    let mut settings = Vec::new();
    if let Some(t) = options.statement_timeout {
        settings.push(format!(
            "SET {scope} statement_timeout = {}",
            quote_literal(&pg_ms(t))
        ));
    }
    if let Some(t) = options.statement_lock_timeout {
        settings.push(format!(
            "SET {scope} lock_timeout = {}",
            quote_literal(&pg_ms(t))
        ));
    }
    settings.join("; ")
}

/// The schema the plan left (read inside the transaction, before COMMIT), proven against the
/// one this database had the last time a deploy or rollback left it at the target commit: a
/// down that did not reverse its up, or a change made outside git-migrate since, would
/// otherwise commit silently. On a difference: [`ExecError::EndStateMismatch`] (the caller
/// rolls back), or with `--allow-mismatch` a note to record. Nothing to prove against for a
/// commit never deployed here, a working-tree target, or `apply` (which moves migrations, not
/// the database, to a commit).
fn prove_end_state(
    tx: &mut postgres::Transaction<'_>,
    job: &Job<'_>,
    plan: &Plan,
) -> Result<(Fingerprint, Option<String>), ExecError> {
    let ledger = job.ledger;
    let now = ledger.take_schema(tx)?;
    let provable = matches!(
        plan.mode,
        crate::plan::Mode::Deploy | crate::plan::Mode::Rollback
    ) && !plan.dirty
        && !job.options.skip_execution;
    let Some(commit) = plan.to_commit.as_deref().filter(|_| provable) else {
        return Ok((now, None));
    };
    let (expected_from, expected) = match &job.options.expected_schema {
        Some(replayed) => (REPLAYED.to_string(), replayed.clone()),
        None => match ledger.schema_at(tx, commit)? {
            Some((id, recorded)) => (format!("deployment #{id}"), recorded),
            None => return Ok((now, None)),
        },
    };
    let differences = crate::verify::fingerprint::equivalent_after_reparse(
        tx,
        crate::verify::fingerprint::diff_ignoring_column_order(&expected, &now),
    );
    if differences.is_empty() {
        return Ok((now, None));
    }
    if job.options.allow_mismatch {
        let listed: Vec<String> = differences.iter().map(|d| d.against_recorded()).collect();
        return Ok((
            now,
            Some(format!(
                "committed with --allow-mismatch: differs from {expected_from}: {}",
                listed.join("; ")
            )),
        ));
    }
    Err(ExecError::EndStateMismatch {
        expected_from,
        commit: commit.to_string(),
        differences,
    })
}

/// What `--verify-target` proves the end state against.
pub(crate) const REPLAYED: &str = "a scratch replay of the target's migrations";

/// The new checksums of edited applied migrations the plan accepts, in the deployment's
/// transaction (nothing of theirs runs).
fn record_accepted_edits(
    tx: &mut postgres::Transaction<'_>,
    ledger: &Ledger,
    plan: &Plan,
) -> Result<(), ExecError> {
    for a in &plan.accepted {
        ledger.accept_checksum(
            tx,
            a.version,
            &a.to_sha256,
            a.to_blob.as_deref(),
            a.to_tree.as_deref(),
        )?;
    }
    Ok(())
}

/// The deployment row for `ready` (rows filled in by the caller).
fn deployment_record(job: &Job<'_>, ready: &Ready, rows: Vec<LedgerRow>) -> DeploymentRecord {
    let plan = &ready.plan;
    DeploymentRecord {
        kind: job.options.kind.to_string(),
        target_ref: plan.target_ref.clone(),
        from_commit: ready.state.live.deployed_commit.clone(),
        to_commit: plan.to_commit.clone(),
        dirty: plan.dirty,
        reverted: plan.reverted(),
        applied: plan.applied(),
        rows,
        metadata_sha256: ready.metadata_sha256.clone(),
        metadata_tree: if plan.dirty {
            None
        } else {
            ready.metadata_tree.clone()
        },
        snapshot: ready.snapshot.clone(),
        plan: plan.record(),
        actor: job.options.actor.clone(),
    }
}

/// The metadata that will be live after COMMIT, checked against the schema the SQL left
/// (design §6): a migration that drops a column the metadata still names aborts here. Then
/// Hasura's own catalog, when this database has one, gets the same snapshot.
fn check_and_write_metadata(
    tx: &mut postgres::Transaction<'_>,
    job: &Job<'_>,
    ready: &Ready,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(), ExecError> {
    let (plan, snapshot, options) = (&ready.plan, &ready.snapshot, job.options);
    if !plan.steps.is_empty() || plan.metadata.is_some() {
        let after = match snapshot {
            Some(s) => Some(s.clone()),
            None => job.ledger.metadata_snapshot(tx)?,
        };
        if let Some(after) = &after {
            let problems = consistency::check(tx, after)
                .map_err(db("checking the metadata against the schema"))?;
            if !problems.is_empty() {
                if !options.allow_inconsistent_metadata {
                    return Err(ExecError::Inconsistent(problems));
                }
                on_event(Event::Inconsistent(&problems));
            }
        }
    }
    if let (Some(_), Some(snap), false) = (&plan.metadata, snapshot, options.skip_hasura_catalog) {
        if crate::ledger::hasura::catalog_exists(tx).map_err(db("looking for Hasura's catalog"))? {
            // The server keeps action types inside each action; projects keep them in
            // actions.graphql: merge them before writing.
            let merged = crate::metadata::sdl::merge_actions_sdl(snap)
                .map_err(|e| ExecError::ActionsSdl(e.to_string()))?;
            crate::ledger::hasura::write_metadata(tx, &merged)
                .map_err(db("writing Hasura's hdb_catalog.hdb_metadata"))?;
        }
    }
    Ok(())
}

/// The SQL texts for `plan` (the confirmed ones when the steps are the confirmed steps).
fn texts_for(
    job: &Job<'_>,
    target: &TargetProject,
    plan: &Plan,
    texts: Vec<StepSql>,
) -> Result<Vec<StepSql>, ExecError> {
    if plan.steps == job.confirmed.plan.steps && texts.len() == plan.steps.len() {
        Ok(texts)
    } else {
        read_step_sql(job.repo, target, &plan.steps)
    }
}

fn still_locked(held: bool) -> Result<(), ExecError> {
    if held {
        Ok(())
    } else {
        Err(ExecError::LockLost)
    }
}

/// Interrupted by Ctrl-C?
fn check_interrupt() -> Result<(), ExecError> {
    if interrupt::requested() {
        interrupt::acknowledge();
        return Err(ExecError::Interrupted(None));
    }
    Ok(())
}

/// The whole plan in one transaction.
fn execute_single(
    client: &mut Client,
    job: &Job<'_>,
    target: &mut TargetProject,
    on_event: &mut dyn FnMut(Event<'_>),
    texts: Vec<StepSql>,
) -> Result<Outcome, ExecError> {
    let (ledger, options) = (job.ledger, job.options);
    let key = ledger.lock_key();
    let deadline = std::time::Instant::now() + options.lock_timeout;
    let mut announced = false;
    let mut tx = loop {
        let mut tx = client
            .transaction()
            .map_err(db("starting the transaction"))?;
        match attempt_lock(
            &mut tx,
            ledger,
            deadline,
            options.lock_timeout,
            &mut announced,
            on_event,
        )? {
            Attempt::Locked => break tx,
            Attempt::Restart => tx.rollback().map_err(db("restarting the transaction"))?,
        }
    };
    let ready = match under_lock(&mut tx, job, target, on_event)? {
        UnderLock::Done { outcome, commit } => {
            if commit {
                commit_tx(tx)?;
            }
            return Ok(*outcome);
        }
        UnderLock::Go(r) => r,
    };
    let texts = texts_for(job, target, &ready.plan, texts)?;
    let settings = timeout_settings(options, "LOCAL");
    if !settings.is_empty() {
        tx.batch_execute(&settings)
            .map_err(db("setting timeouts"))?;
    }

    let fresh = ready.state.live.applied.is_empty() && ready.state.last.is_none();
    let prelude = if fresh && !options.skip_execution {
        options.prelude.as_deref()
    } else {
        None
    };
    let runner = StepRunner {
        repo: job.repo,
        target,
        texts: &texts,
        skip_execution: options.skip_execution,
        prelude,
        prelude_pending: Cell::new(prelude.is_some()),
        capture_exclude: [ledger.schema(), "hdb_catalog"],
        capture: &ready.plan.capture,
        replaying: Cell::new(false),
        last_model: Default::default(),
    };
    let steps = &ready.plan.steps;
    let rows = match runner.run(&mut tx, steps, 0..steps.len(), on_event) {
        Ok(rows) => rows,
        Err((index, mut error)) => {
            if interrupt::requested() {
                interrupt::acknowledge();
                drop(tx);
                return Err(ExecError::Interrupted(None));
            }
            // Roll back first; then, for a runtime error without a position, find the
            // failing statement by replaying the same work in a transaction that is rolled
            // back too (only on this failure path).
            drop(tx);
            runner.locate_into(
                &mut error,
                client,
                Some(key),
                &settings,
                steps,
                0,
                index,
                prelude.is_some(),
            );
            return Err(error);
        }
    };

    check_and_write_metadata(&mut tx, job, &ready, on_event)?;
    record_accepted_edits(&mut tx, ledger, &ready.plan)?;
    let (schema, mismatch) = prove_end_state(&mut tx, job, &ready.plan)?;
    let record = deployment_record(job, &ready, rows);
    let id = ledger.record(&mut tx, &record, ready.state.hasura_stores())?;
    ledger.store_computed_downs(&mut tx, &record.rows)?;
    ledger.record_schema(&mut tx, id, &schema, mismatch.as_deref())?;
    check_interrupt()?;
    commit_tx(tx)?;
    Ok(Outcome {
        plan: ready.plan,
        deployment_id: Some(id),
    })
}

/// A run of steps that commit together, or one step that runs outside a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Steps in one transaction.
    Tx(Range<usize>),
    /// One no-transaction step.
    NoTx(usize),
}

fn segments(steps: &[Step], texts: &[StepSql]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, (step, sql)) in steps.iter().zip(texts).enumerate() {
        if runs_outside(step, sql) {
            if start < i {
                out.push(Segment::Tx(start..i));
            }
            out.push(Segment::NoTx(i));
            start = i + 1;
        }
    }
    if start < steps.len() {
        out.push(Segment::Tx(start..steps.len()));
    }
    out
}

fn step_label(step: &Step) -> String {
    match step {
        Step::Revert { version, name, .. } => format!("revert {version}_{name}"),
        Step::Apply { version, name, .. } => format!("apply {version}_{name}"),
    }
}

/// The plan in segments around its no-transaction migrations, under a lock held by a second
/// connection (see [`execute_with`]).
#[allow(clippy::too_many_arguments)]
fn execute_segmented(
    client: &mut Client,
    connect: Option<&dyn Fn() -> Result<Client, String>>,
    watch: Option<&interrupt::Watch>,
    job: &Job<'_>,
    target: &mut TargetProject,
    on_event: &mut dyn FnMut(Event<'_>),
    texts: Vec<StepSql>,
) -> Result<Outcome, ExecError> {
    let (ledger, options) = (job.ledger, job.options);
    let connect = connect.ok_or_else(|| {
        ExecError::LockConnection(
            "this command cannot open one, so it cannot run no-transaction migrations".into(),
        )
    })?;
    let mut lock_client = connect().map_err(ExecError::LockConnection)?;
    if let Some(w) = watch {
        w.add(lock_client.cancel_token());
    }
    let deadline = std::time::Instant::now() + options.lock_timeout;
    let mut announced = false;
    let mut lock_tx = loop {
        let mut tx = lock_client
            .transaction()
            .map_err(db("starting the lock transaction"))?;
        match attempt_lock(
            &mut tx,
            ledger,
            deadline,
            options.lock_timeout,
            &mut announced,
            on_event,
        )? {
            Attempt::Locked => break tx,
            Attempt::Restart => tx.rollback().map_err(db("restarting the transaction"))?,
        }
    };
    // The lock transaction stays open, idle, until the deployment ends.
    let pid = lock_tx
        .simple_query("SET LOCAL idle_in_transaction_session_timeout = 0; SELECT pg_backend_pid()")
        .map_err(db("holding the deploy lock"))?
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).and_then(|p| p.parse::<i32>().ok()),
            _ => None,
        })
        .unwrap_or_default();
    let result = run_segments(client, pid, job, target, on_event, texts);
    // Releases the lock (the server does the same if this connection is gone).
    let _ = lock_tx.rollback();
    result
}

/// Runs `steps[range]` in `tx` and writes their ledger rows; the last segment also checks and
/// writes the metadata and turns the deployment row `ok`. A failing step comes back with its
/// index (to locate the failing statement once `tx` is rolled back).
#[allow(clippy::too_many_arguments)]
fn tx_segment(
    tx: &mut postgres::Transaction<'_>,
    job: &Job<'_>,
    ready: &Ready,
    runner: &StepRunner<'_>,
    range: Range<usize>,
    last: bool,
    record: &DeploymentRecord,
    deployment_id: i64,
    lock_pid: i32,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(), (Option<usize>, ExecError)> {
    let ledger = job.ledger;
    let steps = &ready.plan.steps;
    let local = timeout_settings(job.options, "LOCAL");
    if !local.is_empty() {
        tx.batch_execute(&local)
            .map_err(|e| (None, db("setting timeouts")(e)))?;
    }
    let rows = runner
        .run(tx, steps, range.clone(), on_event)
        .map_err(|(i, e)| (Some(i), e))?;
    let reverted: Vec<Version> = steps[range]
        .iter()
        .filter(|s| matches!(s, Step::Revert { .. }))
        .map(Step::version)
        .collect();
    let hasura = ready.state.hasura_stores();
    let to_commit = ready.plan.to_commit.as_deref();
    let finish = |tx: &mut postgres::Transaction<'_>,
                  on_event: &mut dyn FnMut(Event<'_>)|
     -> Result<(), ExecError> {
        ledger.record_segment(tx, deployment_id, to_commit, &reverted, &rows, hasura)?;
        ledger.store_computed_downs(tx, &rows)?;
        if last {
            check_and_write_metadata(tx, job, ready, on_event)?;
            record_accepted_edits(tx, ledger, &ready.plan)?;
            ledger.finish_partial(tx, deployment_id, record)?;
            // Earlier segments are committed already: the end state is recorded, not proven.
            let schema = ledger.take_schema(tx)?;
            ledger.record_schema(tx, deployment_id, &schema, None)?;
        }
        still_locked(ledger.lock_held_by(tx, lock_pid)?)?;
        check_interrupt()
    };
    finish(tx, on_event).map_err(|e| (None, e))
}

fn run_segments(
    client: &mut Client,
    lock_pid: i32,
    job: &Job<'_>,
    target: &mut TargetProject,
    on_event: &mut dyn FnMut(Event<'_>),
    texts: Vec<StepSql>,
) -> Result<Outcome, ExecError> {
    let (ledger, options) = (job.ledger, job.options);
    // First transaction: re-plan under the lock, create or upgrade the ledger, record the
    // deployment as `partial`, and run the transactional steps before the first
    // no-transaction one. A failure in there changes nothing.
    let mut tx = client
        .transaction()
        .map_err(db("starting the transaction"))?;
    let ready = match under_lock(&mut tx, job, target, on_event)? {
        UnderLock::Done { outcome, commit } => {
            if commit {
                commit_tx(tx)?;
            }
            return Ok(*outcome);
        }
        UnderLock::Go(r) => r,
    };
    let texts = texts_for(job, target, &ready.plan, texts)?;
    let record = deployment_record(job, &ready, vec![]);
    let id = ledger.start_partial(&mut tx, &record)?;
    let fresh = ready.state.live.applied.is_empty() && ready.state.last.is_none();
    let prelude = if fresh {
        options.prelude.as_deref()
    } else {
        None
    };
    let runner = StepRunner {
        repo: job.repo,
        target,
        texts: &texts,
        skip_execution: false,
        prelude,
        prelude_pending: Cell::new(prelude.is_some()),
        capture_exclude: [ledger.schema(), "hdb_catalog"],
        capture: &ready.plan.capture,
        replaying: Cell::new(false),
        last_model: Default::default(),
    };
    let steps = &ready.plan.steps;
    let local = timeout_settings(options, "LOCAL");
    let segs = segments(steps, &texts);
    // A failed transactional segment (rolled back): find the failing statement.
    let failed = |client: &mut Client,
                  range: &Range<usize>,
                  prelude_at_start: bool,
                  (index, mut error): (Option<usize>, ExecError)|
     -> ExecError {
        if interrupt::requested() {
            interrupt::acknowledge();
            return ExecError::Interrupted(None);
        }
        if let Some(index) = index {
            runner.locate_into(
                &mut error,
                client,
                None,
                &local,
                steps,
                range.start,
                index,
                prelude_at_start,
            );
        }
        error
    };
    let mut partial = PartialState {
        deployment_id: id,
        done: vec![],
        dirty: None,
    };
    let mut rest = &segs[..];
    if let Some(Segment::Tx(range)) = segs.first() {
        let prelude_at_start = runner.prelude_pending.get();
        let last = segs.len() == 1;
        if let Err(e) = tx_segment(
            &mut tx,
            job,
            &ready,
            &runner,
            range.clone(),
            last,
            &record,
            id,
            lock_pid,
            on_event,
        ) {
            drop(tx);
            return Err(failed(client, range, prelude_at_start, e));
        }
        partial
            .done
            .extend(steps[range.clone()].iter().map(step_label));
        rest = &segs[1..];
    } else {
        still_locked(ledger.lock_held_by(&mut tx, lock_pid)?)?;
        check_interrupt()?;
    }
    commit_tx(tx)?;
    if rest.is_empty() {
        return Ok(Outcome {
            plan: ready.plan,
            deployment_id: Some(id),
        });
    }

    let result = (|| -> Result<(), ExecError> {
        let hasura = ready.state.hasura_stores();
        let to_commit = ready.plan.to_commit.as_deref();
        let session = timeout_settings(options, "SESSION");
        let mut finished = false;
        for (k, seg) in rest.iter().enumerate() {
            let last = k + 1 == rest.len();
            match seg {
                Segment::Tx(range) => {
                    let prelude_at_start = runner.prelude_pending.get();
                    let mut tx = client
                        .transaction()
                        .map_err(db("starting the transaction"))?;
                    if let Err(e) = tx_segment(
                        &mut tx,
                        job,
                        &ready,
                        &runner,
                        range.clone(),
                        last,
                        &record,
                        id,
                        lock_pid,
                        on_event,
                    ) {
                        drop(tx);
                        return Err(failed(client, range, prelude_at_start, e));
                    }
                    commit_tx(tx)?;
                    finished = last;
                    partial
                        .done
                        .extend(steps[range.clone()].iter().map(step_label));
                }
                Segment::NoTx(i) => {
                    let step = &steps[*i];
                    let sql = &texts[*i];
                    check_interrupt()?;
                    on_event(Event::Step(step));
                    still_locked(ledger.lock_held_by(client, lock_pid)?)?;
                    let (version, name, direction) = match step {
                        Step::Apply { version, name, .. } => {
                            if let Some(pre) = prelude.filter(|_| runner.prelude_pending.get()) {
                                client.batch_execute(pre).map_err(|e| {
                                    migration_error(
                                        e,
                                        "prelude",
                                        *version,
                                        "prelude",
                                        "prelude_sql",
                                        pre,
                                        0,
                                    )
                                })?;
                                runner.prelude_pending.set(false);
                            }
                            let row = runner.apply_row(step, sql)?;
                            ledger.mark_dirty_up(client, id, to_commit, &row, hasura)?;
                            (*version, name, DirtyDirection::Up)
                        }
                        Step::Revert { version, name, .. } => {
                            ledger.mark_dirty_down(client, *version, hasura)?;
                            (*version, name, DirtyDirection::Down)
                        }
                    };
                    partial.dirty = Some(DirtyStep {
                        version,
                        label: format!("{version}_{name}"),
                        direction,
                    });
                    run_outside(client, &session, sql, version, name, direction)?;
                    ledger.settle(client, version, direction == DirtyDirection::Up, hasura)?;
                    partial.dirty = None;
                    partial.done.push(step_label(step));
                }
            }
        }
        if !finished {
            let mut tx = client
                .transaction()
                .map_err(db("starting the transaction"))?;
            if !local.is_empty() {
                tx.batch_execute(&local).map_err(db("setting timeouts"))?;
            }
            check_and_write_metadata(&mut tx, job, &ready, on_event)?;
            ledger.finish_partial(&mut tx, id, &record)?;
            still_locked(ledger.lock_held_by(&mut tx, lock_pid)?)?;
            check_interrupt()?;
            commit_tx(tx)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(Outcome {
            plan: ready.plan,
            deployment_id: Some(id),
        }),
        Err(error) => Err(ExecError::Partial {
            error: Box::new(error),
            state: Box::new(partial),
        }),
    }
}

/// Runs a no-transaction migration on the plain connection: each statement on its own (a
/// multi-statement query string would be an implicit transaction), with the session's
/// timeouts set around it when the options ask for them.
fn run_outside(
    client: &mut Client,
    session_settings: &str,
    sql: &StepSql,
    version: Version,
    name: &str,
    direction: DirtyDirection,
) -> Result<(), ExecError> {
    let text = &sql.text;
    let statements = crate::project::sql::split_statements(text);
    let pieces: Vec<Range<usize>> = if statements.len() <= 1 {
        // One statement: send the file as it is (comments included).
        std::iter::once(0..text.len()).collect()
    } else {
        statements
    };
    if !session_settings.is_empty() {
        client
            .batch_execute(session_settings)
            .map_err(db("setting timeouts"))?;
    }
    for range in pieces {
        let piece = &text[range.clone()];
        if crate::project::sql::is_effectively_empty(piece) {
            continue;
        }
        let offset = text[..range.start].chars().count();
        client.batch_execute(piece).map_err(|e| {
            migration_error(
                e,
                direction.as_str(),
                version,
                name,
                &sql.file,
                text,
                offset,
            )
        })?;
    }
    if !session_settings.is_empty() {
        client
            .batch_execute("RESET statement_timeout; RESET lock_timeout")
            .map_err(db("resetting timeouts"))?;
    }
    Ok(())
}

/// Computes the adoption of the re-read `state` with the target's files and replaces
/// `state.live` with the adopted state. A state that became adoptable after the caller planned
/// (no project to adopt with) is a database that moved.
fn adopt_for(
    repo: &Repo,
    state: &mut DbState,
    target: &mut TargetProject,
) -> Result<Option<Adoption>, ExecError> {
    let (Some(hasura), Some(project)) = (state.hasura_state.as_ref(), target.project.as_mut())
    else {
        return if adopt::needed(state) {
            Err(ExecError::Moved)
        } else {
            Ok(None)
        };
    };
    let computed = adopt::compute(
        repo,
        hasura,
        project,
        &target.reference,
        &AdoptOptions {
            database: state.database_name().into(),
            ..AdoptOptions::default()
        },
    );
    match computed {
        Ok(Some(a)) => {
            state.live = a.live(&state.live);
            Ok(Some(a))
        }
        Ok(None) => Ok(None),
        Err(AdoptError::Refused(problems)) => Err(ExecError::Refused(problems)),
        Err(AdoptError::Source(e)) => Err(e.into()),
        // No flags are given here.
        Err(AdoptError::Flag(_)) => Err(ExecError::Moved),
    }
}

/// Runs plan steps; shared by the real run and the failure diagnosis.
struct StepRunner<'a> {
    repo: &'a Repo,
    target: &'a TargetProject,
    /// The SQL of every step of the plan (same indexes).
    texts: &'a [StepSql],
    /// Prelude to run before the first apply (fresh databases only).
    prelude: Option<&'a str>,
    /// The prelude has not run yet.
    prelude_pending: Cell<bool>,
    /// Record only; run no SQL.
    skip_execution: bool,
    /// The schemas left out of the models read around an up that has no usable down, to
    /// compute and store its down (the ledger's and Hasura's).
    capture_exclude: [&'a str; 2],
    /// The versions whose down is captured ([`Plan::capture`]).
    capture: &'a [Version],
    /// Set while [`StepRunner::locate`] replays steps that are rolled back anyway: nothing is
    /// captured then.
    replaying: Cell<bool>,
    /// The model read after step `.0` ran, when it was captured: the next step's "before".
    last_model: std::cell::RefCell<Option<(usize, crate::schema::Model)>>,
}

/// The schema model, read in a savepoint: a failed read (a server older than PostgreSQL 13)
/// leaves the deployment's transaction usable, and the computed down records why.
fn read_model(
    tx: &mut impl postgres::GenericClient,
    exclude: &[&str],
) -> Result<crate::schema::Model, String> {
    let mut savepoint = tx.transaction().map_err(|e| e.to_string())?;
    match crate::schema::read(&mut savepoint, exclude) {
        Ok(model) => {
            savepoint.commit().map_err(|e| e.to_string())?;
            Ok(model)
        }
        Err(e) => {
            let _ = savepoint.rollback();
            Err(e.to_string())
        }
    }
}

/// Where a runtime error happened inside a SQL file.
pub struct Located {
    /// The failing statement's number in the file, from 1.
    pub statement: usize,
    /// Its line, from 1.
    pub line: usize,
    /// Its column, from 1.
    pub column: usize,
    /// The text of that line.
    pub line_text: String,
}

/// Runs `sql`'s statements in `tx` (which holds whatever ran before them) to find the one that
/// fails with SQLSTATE `code`: for a runtime error the server gives no position for. Batches of
/// statements under a savepoint, so a file of a million inserts costs a few hundred round trips;
/// only the batch that fails is replayed one by one. The caller rolls `tx` back. The one
/// failing-statement locator: deployments and seeds both use it.
pub fn failing_statement(
    tx: &mut impl postgres::GenericClient,
    sql: &str,
    code: &str,
) -> Option<Located> {
    let statements = crate::project::sql::split_statements(sql);
    let mut first = 0;
    while first < statements.len() {
        let last = locate_batch_end(&statements, first);
        let batch = statements[first].start..statements[last - 1].end;
        if last - first > 1 {
            tx.batch_execute("SAVEPOINT git_migrate_locate").ok()?;
            match tx.batch_execute(&sql[batch]) {
                Ok(()) => {
                    tx.batch_execute("RELEASE SAVEPOINT git_migrate_locate")
                        .ok()?;
                    first = last;
                    continue;
                }
                Err(e) if e.code().map(|c| c.code()) != Some(code) => return None,
                Err(_) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT git_migrate_locate")
                        .ok()?;
                }
            }
        }
        for (n, range) in statements.iter().enumerate().take(last).skip(first) {
            if let Err(e) = tx.batch_execute(&sql[range.clone()]) {
                if e.code().map(|c| c.code()) != Some(code) {
                    return None;
                }
                let (line, column) = crate::project::sql::line_col_of_byte(sql, range.start);
                return Some(Located {
                    statement: n + 1,
                    line,
                    column,
                    line_text: sql.lines().nth(line - 1).unwrap_or_default().to_string(),
                });
            }
        }
        // The batch failed but no statement of it did alone: give up on a position.
        return None;
    }
    None
}

impl StepRunner<'_> {
    /// The target project (apply steps only exist when there is one).
    fn project(&self) -> &crate::source::Project {
        self.target
            .project
            .as_ref()
            .expect("apply steps come from a project")
    }

    /// The ledger row an apply step writes (its down.sql read from git).
    fn apply_row(&self, step: &Step, up: &StepSql) -> Result<LedgerRow, ExecError> {
        let Step::Apply {
            version,
            name,
            up_blob,
            down,
            ..
        } = step
        else {
            unreachable!("apply_row is called for apply steps")
        };
        let p = self.project();
        let folder_tree = p
            .migrations
            .get(*version)
            .and_then(|m| m.tree.clone())
            .filter(|_| !p.tree.is_dirty());
        let (down_sha256, down_sql, down_blob) = match down {
            Some((path, blob)) => {
                let bytes = self.repo.read(&p.tree, path, Some(blob))?;
                let sha = sha256_hex(&bytes);
                // The copy is the SQL the down runs (a legacy down.yaml's run_sql calls).
                let sql = crate::source::sql_text(bytes, path, &p.at()).ok();
                (Some(sha), sql, Some(blob.clone()))
            }
            None => (None, None, None),
        };
        Ok(LedgerRow {
            version: *version,
            name: name.clone(),
            up_sha256: up
                .up_sha256
                .clone()
                .unwrap_or_else(|| sha256_hex(up.text.as_bytes())),
            up_blob: if p.tree.is_dirty() {
                None
            } else {
                Some(up_blob.clone())
            },
            down_sha256,
            down_sql,
            down_blob,
            folder_tree,
            computed_down: None,
        })
    }

    /// The model of the schema before step `i` runs: the one read after step `i - 1` when that
    /// step was captured (nothing ran since), else read now.
    fn model_before(
        &self,
        tx: &mut impl postgres::GenericClient,
        i: usize,
    ) -> Result<crate::schema::Model, String> {
        match self.last_model.borrow_mut().take() {
            Some((j, model)) if j + 1 == i => Ok(model),
            _ => read_model(tx, &self.capture_exclude),
        }
    }

    /// The down of step `i`, computed from the model `before` it and the one read now (kept
    /// for the next step).
    fn capture(
        &self,
        tx: &mut impl postgres::GenericClient,
        i: usize,
        before: Result<crate::schema::Model, String>,
    ) -> crate::schema::ComputedDown {
        use crate::schema::{ComputedAt, ComputedDown};
        let after = read_model(tx, &self.capture_exclude);
        let down = match (&before, &after) {
            (Ok(b), Ok(a)) => crate::schema::inverse(b, a, ComputedAt::Apply),
            (Err(e), _) | (_, Err(e)) => ComputedDown::failed(ComputedAt::Apply, e.clone()),
        };
        if let Ok(after) = after {
            *self.last_model.borrow_mut() = Some((i, after));
        }
        down
    }

    /// Runs `steps[range]` in `tx`; on failure returns the index of the failing step.
    fn run(
        &self,
        tx: &mut impl postgres::GenericClient,
        steps: &[Step],
        range: Range<usize>,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<LedgerRow>, (usize, ExecError)> {
        let mut rows = Vec::new();
        for i in range {
            let step = &steps[i];
            let fail = |e| (i, e);
            if interrupt::requested() {
                return Err(fail(ExecError::Interrupted(None)));
            }
            on_event(Event::Step(step));
            let sql = &self.texts[i];
            match step {
                Step::Revert {
                    version,
                    name,
                    noop,
                    ..
                } => {
                    if *noop || self.skip_execution {
                        continue;
                    }
                    tx.batch_execute(&sql.text).map_err(|e| {
                        fail(migration_error(
                            e, "down", *version, name, &sql.file, &sql.text, 0,
                        ))
                    })?;
                }
                Step::Apply { version, name, .. } => {
                    let mut row = self.apply_row(step, sql).map_err(fail)?;
                    if let Some(pre) = self.prelude.filter(|_| self.prelude_pending.get()) {
                        self.prelude_pending.set(false);
                        tx.batch_execute(pre).map_err(|e| {
                            fail(migration_error(
                                e,
                                "prelude",
                                *version,
                                "prelude",
                                "prelude_sql",
                                pre,
                                0,
                            ))
                        })?;
                    }
                    let capture = !self.skip_execution
                        && !sql.no_transaction
                        && !self.replaying.get()
                        && self.capture.contains(version);
                    let before = capture.then(|| self.model_before(tx, i));
                    if !self.skip_execution {
                        tx.batch_execute(&sql.text).map_err(|e| {
                            fail(migration_error(
                                e, "up", *version, name, &sql.file, &sql.text, 0,
                            ))
                        })?;
                    }
                    if let Some(before) = before {
                        row.computed_down = Some(self.capture(tx, i, before));
                    }
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }

    /// For a runtime error without a position, finds the failing statement (see
    /// [`StepRunner::locate`]) and adds it to `error`.
    #[allow(clippy::too_many_arguments)]
    fn locate_into(
        &self,
        error: &mut ExecError,
        client: &mut Client,
        key: Option<i64>,
        settings: &str,
        steps: &[Step],
        start: usize,
        index: usize,
        prelude: bool,
    ) {
        let ExecError::Migration(f) = error else {
            return;
        };
        if f.position.is_some() || f.code.is_empty() {
            return;
        }
        if let Some(loc) = self.locate(client, key, settings, steps, start, index, prelude, &f.code)
        {
            f.position = Some((loc.line, loc.column));
            f.line_text = Some(loc.line_text);
            f.extra.insert(
                0,
                format!("failing statement: #{} of the file", loc.statement),
            );
        }
    }

    /// Replays `steps[start..index]` in a new transaction (taking the lock `key` when given;
    /// the prelude first when `prelude`), then runs the failing step's statements one by one
    /// to find the one that fails with the same SQLSTATE. Rolled back in all cases.
    #[allow(clippy::too_many_arguments)]
    fn locate(
        &self,
        client: &mut Client,
        key: Option<i64>,
        settings: &str,
        steps: &[Step],
        start: usize,
        index: usize,
        prelude: bool,
        code: &str,
    ) -> Option<Located> {
        let sql = &self.texts[index].text;
        let statements = crate::project::sql::split_statements(sql);
        if statements.len() < 2 {
            return None;
        }
        let mut tx = client.transaction().ok()?;
        if let Some(key) = key {
            if !first_bool(
                tx.simple_query(&format!("SELECT pg_try_advisory_xact_lock({key})"))
                    .ok()?,
            ) {
                return None;
            }
        }
        if !settings.is_empty() {
            tx.batch_execute(settings).ok()?;
        }
        self.prelude_pending.set(prelude && self.prelude.is_some());
        self.replaying.set(true);
        let replayed = self.run(&mut tx, steps, start..index, &mut |_| {});
        self.replaying.set(false);
        replayed.ok()?;
        if matches!(steps[index], Step::Apply { .. }) && self.prelude_pending.get() {
            if let Some(pre) = self.prelude {
                tx.batch_execute(pre).ok()?;
            }
        }
        failing_statement(&mut tx, sql, code)
    }
}

/// Where the batch of statements that starts at `first` ends (exclusive) when
/// [`StepRunner::locate`] replays a file: at most 1,000 statements or about 1 MiB of SQL, and
/// always at least one statement.
fn locate_batch_end(statements: &[std::ops::Range<usize>], first: usize) -> usize {
    const STATEMENTS: usize = 1_000;
    const BYTES: usize = 1 << 20;
    let start = statements[first].start;
    let mut end = first + 1;
    while end < statements.len() && end - first < STATEMENTS && statements[end].end - start <= BYTES
    {
        end += 1;
    }
    end
}

/// SQL text of a file (not an LFS pointer, no NUL bytes, UTF-8).
fn first_bool(msgs: Vec<SimpleQueryMessage>) -> bool {
    msgs.iter().any(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
        _ => false,
    })
}

fn lock_holder(tx: &mut postgres::Transaction<'_>, key: i64) -> Option<LockHolder> {
    let classid = (key >> 32) as u32;
    let objid = (key & 0xffff_ffff) as u32;
    let sql = format!(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
         coalesce(to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {classid} AND l.objid = {objid} AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         LIMIT 1"
    );
    let msgs = tx.simple_query(&sql).ok()?;
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(LockHolder {
            pid: r.get(0)?.parse().ok()?,
            application_name: r.get(1)?.to_string(),
            user: r.get(2)?.to_string(),
            since: r.get(3)?.to_string(),
        }),
        _ => None,
    })
}

/// The error of a migration's SQL. `offset` is the number of characters of `sql` before the
/// text that was sent (a statement of a no-transaction migration), for the error position.
fn migration_error(
    e: postgres::Error,
    direction: &'static str,
    version: Version,
    name: &str,
    file: &str,
    sql: &str,
    offset: usize,
) -> ExecError {
    let label = format!("{version}_{name}");
    let Some(dbe) = e.as_db_error() else {
        return ExecError::Migration(Box::new(MigrationFailure {
            direction,
            label,
            version,
            file: file.to_string(),
            message: crate::db::describe_pg_error(&e),
            code: String::new(),
            position: None,
            line_text: None,
            extra: vec![],
        }));
    };
    let position = match dbe.position() {
        Some(postgres::error::ErrorPosition::Original(p)) => {
            Some(crate::project::sql::line_col(sql, *p as usize + offset))
        }
        _ => None,
    };
    let line_text = position.and_then(|(l, _)| sql.lines().nth(l - 1).map(str::to_string));
    let mut extra = Vec::new();
    if let Some(d) = dbe.detail() {
        extra.push(format!("detail: {d}"));
    }
    if let Some(h) = dbe.hint() {
        extra.push(format!("server hint: {h}"));
    }
    if let Some(w) = dbe.where_() {
        extra.push(format!("context: {w}"));
    }
    ExecError::Migration(Box::new(MigrationFailure {
        direction,
        label,
        version,
        file: file.to_string(),
        message: dbe.message().to_string(),
        code: dbe.code().code().to_string(),
        position,
        line_text,
        extra,
    }))
}

#[cfg(test)]
mod tests {
    use super::locate_batch_end;

    #[test]
    fn locate_batches_cover_every_statement_once() {
        // 2,500 short statements: batches of 1,000.
        let short: Vec<_> = (0..2_500).map(|i| i * 10..i * 10 + 9).collect();
        let mut ends = Vec::new();
        let mut first = 0;
        while first < short.len() {
            first = locate_batch_end(&short, first);
            ends.push(first);
        }
        assert_eq!(ends, vec![1_000, 2_000, 2_500]);
        // Statements of 600 KiB: one per batch, never none.
        let big: Vec<_> = (0..3).map(|i| i * 600_000..(i + 1) * 600_000).collect();
        assert_eq!(locate_batch_end(&big, 0), 1);
        assert_eq!(locate_batch_end(&big, 2), 3);
        // 1 MiB is the limit of a batch's text.
        let half: Vec<_> = (0..4).map(|i| i * 400_000..(i + 1) * 400_000).collect();
        assert_eq!(locate_batch_end(&half, 0), 2);
    }
}
