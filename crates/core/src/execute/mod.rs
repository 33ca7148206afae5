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
use postgres::Client;
use run::execute_single;
use segmented::execute_segmented;
use types::Job;

pub use crate::project::txcontrol::is_no_transaction;
pub use crate::source::StepSql;
pub use locate::{failing_statement, Located};
pub use lock::with_lock;
pub use steps::{read_step_sql, runs_outside, transaction_control_in};
pub use types::{
    commit_refused, Confirmed, DirtyStep, Event, ExecError, ExecOptions, Extras, LockHolder,
    MigrationFailure, Outcome, PartialState, TxControlFound,
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
