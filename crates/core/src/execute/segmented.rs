//! Plans with no-transaction migrations (design §7.3), run in [`Segment`]s under a lock held by a
//! second connection (see [`execute_with`](super::execute_with)): the transactional steps
//! between two such migrations commit together with their ledger rows ([`tx_segment`]); each
//! no-transaction migration runs on the plain connection, statement by statement
//! ([`run_outside`]), its ledger row marked dirty until it has run ([`run_segments`]).

use super::blockers::backend_pid;
use super::catalog::{
    check_and_write_metadata, deployment_record, record_accepted_edits, under_lock, Ready,
    UnderLock,
};
use super::locate::migration_error;
use super::lock::{attempt_lock, still_locked, Attempt};
use super::run::{check_interrupt, locate_now, timeout_settings, StepRunner};
use super::steps::{runs_outside, texts_for};
use super::types::{commit_tx, db, DirtyStep, Event, ExecError, Job, Outcome, PartialState};
use crate::gather::TargetProject;
use crate::interrupt;
use crate::ledger::dirty::DirtyDirection;
use crate::ledger::DeploymentRecord;
use crate::plan::Step;
use crate::project::Version;
use crate::source::StepSql;
use postgres::{Client, SimpleQueryMessage};
use std::cell::Cell;
use std::ops::Range;

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
/// connection (see [`execute_with`](super::execute_with)).
#[allow(clippy::too_many_arguments)]
pub(super) fn execute_segmented(
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
        // Only the first segment is retried: a later one's failure is located now.
        let retried = range.start == 0 && !locate_now(job, &error);
        if let (Some(index), false) = (index, retried) {
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
