//! The SQL of a plan's steps: reading it ([`read_step_sql`], [`texts_for`]), which steps run
//! outside the deployment transaction ([`runs_outside`]), and the transaction control in the
//! rest, which would end that transaction half-way ([`transaction_control_in`]).

use super::types::{ExecError, Job, TxControlFound};
use crate::gather::TargetProject;
use crate::plan::{Plan, Step};
use crate::source::{Repo, StepSql};

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

/// The SQL texts for `plan` (the confirmed ones when the steps are the confirmed steps).
pub(super) fn texts_for(
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
