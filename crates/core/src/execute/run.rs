//! Running steps inside a transaction: the whole plan in one transaction ([`execute_single`]),
//! and the [`StepRunner`] both kinds of deployment run their transactional steps with (and
//! replay them with, to locate a failing statement), with the schema model read around a step
//! whose down is captured ([`read_model`]), the migrations' timeouts ([`timeout_settings`]) and
//! Ctrl-C ([`check_interrupt`]).

use super::blockers::backend_pid;
use super::catalog::{
    check_and_write_metadata, deployment_record, prove_end_state, record_accepted_edits,
    under_lock, UnderLock,
};
use super::locate::{failing_statement, migration_error, Located};
use super::lock::{attempt_lock, first_bool, Attempt};
use super::steps::texts_for;
use super::types::{commit_tx, db, pg_ms, Event, ExecError, ExecOptions, Job, Outcome};
use crate::checksum::sha256_hex;
use crate::gather::TargetProject;
use crate::interrupt;
use crate::ledger::{quote_literal, LedgerRow};
use crate::plan::Step;
use crate::project::Version;
use crate::source::{Repo, StepSql};
use postgres::Client;
use std::cell::Cell;
use std::ops::Range;

/// `SET LOCAL statement_timeout …; SET LOCAL lock_timeout …` from the options (`scope` is
/// `LOCAL` or `SESSION`), or "".
pub(super) fn timeout_settings(options: &ExecOptions, scope: &str) -> String {
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

/// Whether a failed step's statement is to be located by a replay now: not for a lock timeout
/// that a retry follows (the replay would wait for the same lock once more first).
pub(super) fn locate_now(job: &Job<'_>, error: &ExecError) -> bool {
    job.last_attempt || !matches!(error, ExecError::Migration(f) if f.is_lock_timeout())
}

/// Interrupted by Ctrl-C?
pub(super) fn check_interrupt() -> Result<(), ExecError> {
    if interrupt::requested() {
        interrupt::acknowledge();
        return Err(ExecError::Interrupted(None));
    }
    Ok(())
}

/// The whole plan in one transaction.
pub(super) fn execute_single(
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
    if let Some(o) = job.observer {
        if let Some(pid) = backend_pid(&mut tx) {
            o.watch_pid(pid);
        }
    }
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
            if locate_now(job, &error) {
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
            }
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

/// Runs plan steps; shared by the real run and the failure diagnosis.
pub(super) struct StepRunner<'a> {
    pub(super) repo: &'a Repo,
    pub(super) target: &'a TargetProject,
    /// The SQL of every step of the plan (same indexes).
    pub(super) texts: &'a [StepSql],
    /// Prelude to run before the first apply (fresh databases only).
    pub(super) prelude: Option<&'a str>,
    /// The prelude has not run yet.
    pub(super) prelude_pending: Cell<bool>,
    /// Record only; run no SQL.
    pub(super) skip_execution: bool,
    /// The schemas left out of the models read around an up that has no usable down, to
    /// compute and store its down (the ledger's and Hasura's).
    pub(super) capture_exclude: [&'a str; 2],
    /// The versions whose down is captured ([`Plan::capture`](crate::plan::Plan::capture)).
    pub(super) capture: &'a [Version],
    /// Set while [`StepRunner::locate`] replays steps that are rolled back anyway: nothing is
    /// captured then.
    pub(super) replaying: Cell<bool>,
    /// The model read after step `.0` ran, when it was captured: the next step's "before".
    pub(super) last_model: std::cell::RefCell<Option<(usize, crate::schema::Model)>>,
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

impl StepRunner<'_> {
    /// The target project (apply steps only exist when there is one).
    fn project(&self) -> &crate::source::Project {
        self.target
            .project
            .as_ref()
            .expect("apply steps come from a project")
    }

    /// The ledger row an apply step writes (its down.sql read from git).
    pub(super) fn apply_row(&self, step: &Step, up: &StepSql) -> Result<LedgerRow, ExecError> {
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
    pub(super) fn run(
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
    pub(super) fn locate_into(
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
