//! The ledger and catalog work of a deployment around its steps. Before them, under the lock:
//! the live state re-read, a database the Hasura CLI manages adopted, a plan file's ledger and
//! schema digests compared, the plan re-made and the ledger created or upgraded
//! ([`under_lock`]). After them: the metadata checked against the
//! schema and written to Hasura's catalog ([`check_and_write_metadata`]), the accepted edits of
//! applied migrations ([`record_accepted_edits`]), the end state proven
//! ([`prove_end_state`]), and the deployment row ([`deployment_record`]).

use super::types::{db, Event, ExecError, Job, Outcome};
use crate::gather::{self, Planned, TargetProject};
use crate::ledger::adopt::{self, AdoptError, AdoptOptions, Adoption};
use crate::ledger::{cli_state, DbState, DeploymentRecord, Ledger, LedgerRow};
use crate::metadata::consistency;
use crate::plan::Plan;
use crate::source::Repo;
use crate::verify::fingerprint::Fingerprint;

/// The plan re-made under the lock, ready to run.
pub(super) struct Ready {
    pub(super) plan: Plan,
    pub(super) state: DbState,
    pub(super) snapshot: Option<serde_json::Value>,
    pub(super) metadata_sha256: Option<String>,
    pub(super) metadata_tree: Option<String>,
}

/// What [`under_lock`] decided.
pub(super) enum UnderLock {
    /// Nothing more to run: commit the transaction when `commit`, then return `outcome`.
    Done { outcome: Box<Outcome>, commit: bool },
    /// Run the plan.
    Go(Box<Ready>),
}

/// Under the lock, in `tx`: re-reads the live state (adopting a database the Hasura CLI
/// manages), re-plans when it moved, stops when the work differs from what was confirmed,
/// and creates or upgrades the ledger.
pub(super) fn under_lock(
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
    // A plan file (`deploy --plan`) was computed against one ledger and one schema: both are
    // compared here, under the lock, before anything runs.
    if let Some(expected) = &job.options.plan_file {
        let ledger_now = crate::planfile::ledger_digest(&state.live);
        let schema_now = ledger.take_schema(tx)?.digest();
        let moved = expected.moved(&ledger_now, &schema_now);
        if !moved.is_empty() {
            return Err(ExecError::PlanFileStale(moved));
        }
    }
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
        if plan.already_there() {
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

/// The schema the plan left (read inside the transaction, before COMMIT), proven against the
/// one this database had the last time a deploy or rollback left it at the target commit: a
/// down that did not reverse its up, or a change made outside git-migrate since, would
/// otherwise commit silently. On a difference: [`ExecError::EndStateMismatch`] (the caller
/// rolls back), or with `--allow-mismatch` a note to record. Nothing to prove against for a
/// commit never deployed here, a working-tree target, or `apply` (which moves migrations, not
/// the database, to a commit).
pub(super) fn prove_end_state(
    tx: &mut postgres::Transaction<'_>,
    job: &Job<'_>,
    plan: &Plan,
) -> Result<(Fingerprint, Option<String>), ExecError> {
    let ledger = job.ledger;
    let now = ledger.take_schema(tx)?;
    let provable = plan.mode.reaches_a_commit() && !plan.dirty && !job.options.skip_execution;
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
const REPLAYED: &str = "a scratch replay of the target's migrations";

/// The new checksums of edited applied migrations the plan accepts, in the deployment's
/// transaction (nothing of theirs runs).
pub(super) fn record_accepted_edits(
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
pub(super) fn deployment_record(
    job: &Job<'_>,
    ready: &Ready,
    rows: Vec<LedgerRow>,
) -> DeploymentRecord {
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
pub(super) fn check_and_write_metadata(
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
