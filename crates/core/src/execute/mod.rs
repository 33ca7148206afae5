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
//!
//! A migration's statement that times out waiting for a lock (`lock_timeout`, SQLSTATE 55P03,
//! issue 16) fails the deployment, which rolled back; it is run again from the start (deploy
//! lock, re-plan) after a pause, up to [`ExecOptions::lock_retries`] times, and each retry is
//! an [`Event::LockRetry`]. A deployment with no-transaction migrations is run again only when
//! the timeout hit before its first commit. An [`blockers::Observer`] names the sessions that
//! held the lock.
//!
//! # Files
//!
//! Each file uses only files listed below it, never one above, so that no two files use each
//! other:
//!
//! - `mod.rs` (this one): the entry points, [`execute`] and [`execute_with`], which refuse
//!   transaction control and pick between one transaction and segments; the re-exports.
//! - `segmented.rs`: plans with no-transaction migrations, in segments under a lock held by a
//!   second connection.
//! - `run.rs`: the whole plan in one transaction, and the step runner both kinds of deployment
//!   use (the schema read around a step whose down is captured, the migrations' timeouts,
//!   Ctrl-C).
//! - `catalog.rs`: the ledger and catalog work around the steps: re-reading and re-planning
//!   under the lock (adopting a database the Hasura CLI manages), the metadata checked and
//!   written to Hasura's catalog, accepted edits, the end state proven, the deployment row.
//! - `steps.rs`: the steps' SQL: [`read_step_sql`], [`runs_outside`],
//!   [`transaction_control_in`].
//! - `lock.rs`: the deploy lock: taking and waiting for it, [`with_lock`], who holds it.
//! - `locate.rs`: where a migration's SQL failed: the error with its position, and
//!   [`failing_statement`] for a runtime error the server gives no position for.
//! - `types.rs`: the types the others share (options, [`Event`], [`Outcome`], [`ExecError`], …)
//!   and their small helpers (database errors, COMMIT, durations).
//! - `blockers.rs`: who blocks a migration waiting for a lock: [`Blocker`], and the observer
//!   that watches for them from a second connection.

mod blockers;
mod catalog;
mod locate;
mod lock;
mod run;
mod segmented;
mod steps;
mod types;

use crate::gather::{GatherOptions, TargetProject};
use crate::interrupt;
use crate::ledger::Ledger;
use crate::plan::PlanOptions;
use crate::source::Repo;
use blockers::Observer;
use postgres::Client;
use run::execute_single;
use segmented::execute_segmented;
use std::time::Duration;
use types::Job;

pub use crate::project::txcontrol::is_no_transaction;
pub use crate::source::StepSql;
pub use blockers::{Blocker, BLOCKER_QUERY_CHARS};
pub use locate::{failing_statement, Located};
pub use lock::with_lock;
pub use steps::{read_step_sql, runs_outside, transaction_control_in};
pub use types::{
    commit_refused, Confirmed, DirtyStep, Event, ExecError, ExecOptions, Extras, LockHolder,
    MigrationFailure, Outcome, PartialState, TxControlFound, LOCK_NOT_AVAILABLE,
};

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
    let mut texts = match extras.texts {
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
    let watch = interrupt::Watch::install();
    if let Some(w) = &watch {
        w.add(client.cancel_token());
    }
    let observe = extras.observe.filter(|_| !options.skip_execution);
    let mut retry = 0;
    let result = loop {
        let last_attempt = retry >= options.lock_retries;
        let observer = options
            .statement_lock_timeout
            .filter(|_| observe.is_some())
            .map(Observer::new);
        let job = Job {
            repo,
            ledger,
            confirmed,
            plan_options,
            gather_options,
            options,
            observer: observer.as_ref(),
            last_attempt,
        };
        let texts = if last_attempt {
            std::mem::take(&mut texts)
        } else {
            texts.clone()
        };
        let result = std::thread::scope(|scope| {
            if let (Some(o), Some(connect)) = (&observer, observe) {
                scope.spawn(move || o.run(connect));
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
            if let Some(o) = &observer {
                o.stop();
            }
            result
        });
        let mut result = result;
        let blockers = observer.as_ref().map(Observer::recent).unwrap_or_default();
        let failure = match &mut result {
            Err(ExecError::Migration(f)) if f.is_lock_timeout() => f,
            Err(ExecError::Partial { error, .. }) => match error.as_mut() {
                // Committed segments are never run again: named, not retried.
                ExecError::Migration(f) if f.is_lock_timeout() => {
                    f.blockers = blockers;
                    break result;
                }
                _ => break result,
            },
            _ => break result,
        };
        failure.blockers = blockers;
        failure.lock_retries = retry;
        if last_attempt || interrupt::requested() {
            break result;
        }
        retry += 1;
        let wait = retry_wait(retry);
        on_event(Event::LockRetry {
            retry,
            retries: options.lock_retries,
            wait,
            failure,
        });
        if !pause(wait) {
            break result;
        }
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

/// The pause before retry `n` (from 1): 1 s, 2 s, 4 s, … at most 30 s.
fn retry_wait(n: u32) -> Duration {
    Duration::from_secs(1 << n.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// Sleeps `d`; false when Ctrl-C came meanwhile.
fn pause(d: Duration) -> bool {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if interrupt::requested() {
            return false;
        }
        std::thread::sleep(
            end.saturating_duration_since(std::time::Instant::now())
                .min(Duration::from_millis(50)),
        );
    }
    !interrupt::requested()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_30_seconds() {
        let secs: Vec<u64> = (1..=8).map(|n| retry_wait(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
