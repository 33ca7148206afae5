//! Running a plan: one transaction for down SQL, up SQL, ledger rows, metadata and the
//! deployment row, under a transaction-scoped advisory lock, re-planned after the lock.
//! A database the Hasura CLI manages is adopted at the start of that transaction; Hasura's
//! state stores are written by the same statement as the ledger.

use crate::gather::{self, GatherError, GatherOptions, Planned, TargetProject};
use crate::ledger::adopt::{self, AdoptError, AdoptOptions, Adoption};
use crate::ledger::{
    cli_state, quote_literal, DbState, DeploymentRecord, Ledger, LedgerError, LedgerRow,
};
use crate::metadata::consistency::{self, Inconsistency};
use crate::metadata::sha256_hex;
use crate::plan::{Plan, PlanOptions, Problem, Step};
use crate::project::Version;
use crate::source::{Repo, SourceError};
use postgres::{Client, SimpleQueryMessage};
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
    /// Any other database failure.
    #[error("{what}: {}", crate::db::describe_pg_error(.source))]
    Db {
        /// What we were doing.
        what: &'static str,
        /// Cause.
        #[source]
        source: postgres::Error,
    },
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
                tx.commit().map_err(db("committing"))?;
                return Ok(r);
            }
            Attempt::Restart => tx.rollback().map_err(db("restarting the transaction"))?,
        }
    }
}

/// Executes `confirmed` against the database in one transaction.
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

    // Re-read under the lock. When the ledger says what it said when the plan was made, the
    // plan stands (it is a pure function of the target and this state); otherwise re-plan.
    let mut state = ledger.read(&mut tx)?;
    // A database the Hasura CLI manages is adopted first, in this transaction (design §5.2):
    // Hasura's state is locked against the CLI and read again, and the plan is made (and
    // compared with the confirmed one) against the adopted state, which the caller planned
    // against too.
    let before_adoption = state.live.deployed_commit.clone();
    let adoption = if adopt::adopts_in(plan_options.mode) && adopt::needed(&state) {
        cli_state::lock_stores(&mut tx, state.hasura_stores())
            .map_err(db("locking Hasura's migration state"))?;
        state = ledger.read(&mut tx)?;
        adopt_for(repo, &mut state, target)?
    } else {
        None
    };
    let Planned {
        plan,
        snapshot,
        metadata_sha256,
        metadata_tree,
    } = if state.live == confirmed.live {
        Planned {
            plan: Ok(confirmed.plan.clone()),
            snapshot: confirmed.snapshot.clone(),
            metadata_sha256: confirmed.metadata_sha256.clone(),
            metadata_tree: confirmed.metadata_tree.clone(),
        }
    } else {
        gather::plan_for(
            repo,
            &mut tx,
            ledger,
            target,
            &state,
            plan_options,
            gather_options,
        )?
    };
    let plan = plan.map_err(ExecError::Refused)?;
    if !plan.same_work(&confirmed.plan) {
        if plan.is_noop() && plan.to_commit == state.live.deployed_commit {
            on_event(Event::AlreadyThere);
            return Ok(Outcome {
                plan,
                deployment_id: None,
            });
        }
        return Err(ExecError::Moved);
    }
    if let Some(a) = &adoption {
        let id = ledger.record_adoption(
            &mut tx,
            a,
            before_adoption.as_deref(),
            &options.actor,
            state.hasura_stores(),
        )?;
        if plan.is_noop() && !plan.dirty && plan.to_commit == state.live.deployed_commit {
            // The adoption alone brings the ledger to the target.
            tx.commit().map_err(db("committing"))?;
            return Ok(Outcome {
                plan,
                deployment_id: Some(id),
            });
        }
    } else if !state.live.ledger_exists {
        ledger.ensure(&mut tx)?;
    }
    let mut settings = Vec::new();
    if let Some(t) = options.statement_timeout {
        settings.push(format!(
            "SET LOCAL statement_timeout = {}",
            quote_literal(&pg_ms(t))
        ));
    }
    if let Some(t) = options.statement_lock_timeout {
        settings.push(format!(
            "SET LOCAL lock_timeout = {}",
            quote_literal(&pg_ms(t))
        ));
    }
    let settings = settings.join("; ");
    if !settings.is_empty() {
        tx.batch_execute(&settings)
            .map_err(db("setting timeouts"))?;
    }

    let fresh = state.live.applied.is_empty() && state.last.is_none();
    let runner = StepRunner {
        repo,
        target,
        skip_execution: options.skip_execution,
        prelude: if fresh && !options.skip_execution {
            options.prelude.as_deref()
        } else {
            None
        },
    };
    let rows = match runner.run(&mut tx, &plan.steps, on_event) {
        Ok(rows) => rows,
        Err((index, mut error)) => {
            // Roll back first; then, for a runtime error without a position, find the
            // failing statement by replaying the same work in a transaction that is rolled
            // back too (only on this failure path).
            drop(tx);
            if let ExecError::Migration(f) = &mut error {
                if f.position.is_none() && !f.code.is_empty() {
                    if let Some(loc) =
                        runner.locate(client, key, &settings, &plan.steps, index, &f.code)
                    {
                        f.position = Some((loc.line, loc.column));
                        f.line_text = Some(loc.line_text);
                        f.extra.insert(
                            0,
                            format!("failing statement: #{} of the file", loc.statement),
                        );
                    }
                }
            }
            return Err(error);
        }
    };

    // The metadata that will be live after COMMIT, checked against the schema the SQL left
    // (design §6): a migration that drops a column the metadata still names aborts here.
    if !plan.steps.is_empty() || plan.metadata.is_some() {
        let after = match &snapshot {
            Some(s) => Some(s.clone()),
            None => ledger.metadata_snapshot(&mut tx)?,
        };
        if let Some(after) = &after {
            let problems = consistency::check(&mut tx, after)
                .map_err(db("checking the metadata against the schema"))?;
            if !problems.is_empty() {
                if !options.allow_inconsistent_metadata {
                    return Err(ExecError::Inconsistent(problems));
                }
                on_event(Event::Inconsistent(&problems));
            }
        }
    }
    // Hasura's own catalog, when this database has one, gets the same snapshot.
    if let (Some(_), Some(snap), false) = (&plan.metadata, &snapshot, options.skip_hasura_catalog) {
        if crate::ledger::hasura::catalog_exists(&mut tx)
            .map_err(db("looking for Hasura's catalog"))?
        {
            // The server keeps action types inside each action; projects keep them in
            // actions.graphql: merge them before writing.
            let merged = crate::metadata::sdl::merge_actions_sdl(snap)
                .map_err(|e| ExecError::ActionsSdl(e.to_string()))?;
            crate::ledger::hasura::write_metadata(&mut tx, &merged)
                .map_err(db("writing Hasura's hdb_catalog.hdb_metadata"))?;
        }
    }

    let record = DeploymentRecord {
        kind: options.kind.to_string(),
        target_ref: plan.target_ref.clone(),
        from_commit: state.live.deployed_commit.clone(),
        to_commit: plan.to_commit.clone(),
        dirty: plan.dirty,
        reverted: plan.reverted(),
        applied: plan.applied(),
        rows,
        metadata_sha256,
        metadata_tree: if plan.dirty { None } else { metadata_tree },
        snapshot,
        plan: plan.record(),
        actor: options.actor.clone(),
    };
    let id = ledger.record(&mut tx, &record, state.hasura_stores())?;
    tx.commit().map_err(db("committing"))?;
    Ok(Outcome {
        plan,
        deployment_id: Some(id),
    })
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
    /// Prelude to run before the first apply (fresh databases only).
    prelude: Option<&'a str>,
    /// Record only; run no SQL.
    skip_execution: bool,
}

/// Where a runtime error happened inside a migration file.
struct Located {
    statement: usize,
    line: usize,
    column: usize,
    line_text: String,
}

impl StepRunner<'_> {
    /// The target project (apply steps only exist when there is one).
    fn project(&self) -> &crate::source::Project {
        self.target
            .project
            .as_ref()
            .expect("apply steps come from a project")
    }

    /// The SQL of a step and its description for messages.
    fn sql_of(&self, step: &Step) -> Result<(String, String), ExecError> {
        match step {
            Step::Revert { sql, down, .. } => Ok((sql.clone(), down.to_string())),
            Step::Apply {
                up_path, up_blob, ..
            } => {
                let p = self.project();
                let at = p.at();
                let up = self.repo.read(&p.tree, up_path, Some(up_blob))?;
                Ok((utf8(up, up_path, &at)?, format!("{up_path} @ {at}")))
            }
        }
    }

    /// Runs `steps`; on failure returns the index of the failing step.
    fn run(
        &self,
        tx: &mut impl postgres::GenericClient,
        steps: &[Step],
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<LedgerRow>, (usize, ExecError)> {
        let mut prelude = self.prelude;
        let mut rows = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            on_event(Event::Step(step));
            let fail = |e| (i, e);
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
                    let (sql, file) = self.sql_of(step).map_err(fail)?;
                    tx.batch_execute(&sql).map_err(|e| {
                        fail(migration_error(e, "down", *version, name, &file, &sql))
                    })?;
                }
                Step::Apply {
                    version,
                    name,
                    up_blob,
                    down,
                    ..
                } => {
                    let p = self.project();
                    let folder_tree = p
                        .migrations
                        .get(*version)
                        .and_then(|m| m.tree.clone())
                        .filter(|_| !p.tree.is_dirty());
                    let (up_text, file) = self.sql_of(step).map_err(fail)?;
                    let (down_sha256, down_sql, down_blob) = match down {
                        Some((path, blob)) => {
                            let bytes = self
                                .repo
                                .read(&p.tree, path, Some(blob))
                                .map_err(|e| fail(e.into()))?;
                            let sha = sha256_hex(&bytes);
                            (Some(sha), String::from_utf8(bytes).ok(), Some(blob.clone()))
                        }
                        None => (None, None, None),
                    };
                    if let Some(pre) = prelude.take() {
                        tx.batch_execute(pre).map_err(|e| {
                            fail(migration_error(
                                e,
                                "prelude",
                                *version,
                                "prelude",
                                "prelude_sql",
                                pre,
                            ))
                        })?;
                    }
                    if !self.skip_execution {
                        tx.batch_execute(&up_text).map_err(|e| {
                            fail(migration_error(e, "up", *version, name, &file, &up_text))
                        })?;
                    }
                    rows.push(LedgerRow {
                        version: *version,
                        name: name.clone(),
                        up_sha256: sha256_hex(up_text.as_bytes()),
                        up_blob: if p.tree.is_dirty() {
                            None
                        } else {
                            Some(up_blob.clone())
                        },
                        down_sha256,
                        down_sql,
                        down_blob,
                        folder_tree,
                    });
                }
            }
        }
        Ok(rows)
    }

    /// Replays `steps[..index]` in a new transaction, then runs the failing step's statements
    /// one by one to find the one that fails with the same SQLSTATE. Rolled back in all cases.
    fn locate(
        &self,
        client: &mut Client,
        key: i64,
        settings: &str,
        steps: &[Step],
        index: usize,
        code: &str,
    ) -> Option<Located> {
        let (sql, _) = self.sql_of(&steps[index]).ok()?;
        let statements = crate::project::sql::split_statements(&sql);
        if statements.len() < 2 {
            return None;
        }
        let mut tx = client.transaction().ok()?;
        if !first_bool(
            tx.simple_query(&format!("SELECT pg_try_advisory_xact_lock({key})"))
                .ok()?,
        ) {
            return None;
        }
        if !settings.is_empty() {
            tx.batch_execute(settings).ok()?;
        }
        self.run(&mut tx, &steps[..index], &mut |_| {}).ok()?;
        if matches!(steps[index], Step::Apply { .. })
            && !steps[..index]
                .iter()
                .any(|s| matches!(s, Step::Apply { .. }))
        {
            if let Some(pre) = self.prelude {
                tx.batch_execute(pre).ok()?;
            }
        }
        for (n, range) in statements.iter().enumerate() {
            if let Err(e) = tx.batch_execute(&sql[range.clone()]) {
                let same = e.code().map(|c| c.code()) == Some(code);
                if !same {
                    return None;
                }
                let (line, column) = crate::project::sql::line_col_of_byte(&sql, range.start);
                return Some(Located {
                    statement: n + 1,
                    line,
                    column,
                    line_text: sql.lines().nth(line - 1).unwrap_or_default().to_string(),
                });
            }
        }
        None
    }
}

fn utf8(bytes: Vec<u8>, path: &str, at: &str) -> Result<String, SourceError> {
    String::from_utf8(bytes).map_err(|e| SourceError::Read {
        path: path.to_string(),
        at: at.to_string(),
        source: format!("not valid UTF-8 ({e}); SQL files must be UTF-8").into(),
    })
}

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

fn migration_error(
    e: postgres::Error,
    direction: &'static str,
    version: Version,
    name: &str,
    file: &str,
    sql: &str,
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
            Some(crate::project::sql::line_col(sql, *p as usize))
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
