//! `git migrate status [REV]`: which commit the database is at and how it differs from REV.

use super::error::{CommandError, Kind};
use super::render::{describe_commit, problem_lines};
use super::{Ctx, SourceArgs};
use crate::gather::{self, GatherOptions, TargetProject};
use crate::plan::{Mode, PlanOptions, Step};
use clap::Args;

/// Arguments of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Revision to compare with (default HEAD).
    pub rev: Option<String>,
    /// Exit with 1 when the database differs from REV.
    #[arg(long)]
    pub exit_code: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `git migrate status`.
pub fn cmd_status(ctx: &Ctx, args: &StatusArgs) -> Result<(), CommandError> {
    let (db, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    let source = args.source.source(args.rev.as_deref())?;
    let project_dir = ctx.project_dir();
    let mut target = TargetProject {
        reference: source.describe(),
        project: Some(ctx.repo.project(&source, project_dir.as_deref())?),
    };
    let options = PlanOptions {
        mode: Mode::Deploy,
        out_of_order: ctx.config.out_of_order,
        allow_empty_down: true,
    };
    let planned = gather::plan_for(
        &ctx.repo,
        &mut client,
        &ledger,
        &mut target,
        &state,
        options,
        &GatherOptions {
            down_from: None,
            project_dir,
            selection: None,
        },
    )?;
    let target_commit = target.commit();
    let (pending, revert, metadata, problems) = match &planned.plan {
        Ok(p) => (
            p.steps
                .iter()
                .filter_map(|s| match s {
                    Step::Apply { version, name, .. } => Some((*version, name.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            p.steps
                .iter()
                .filter_map(|s| match s {
                    Step::Revert { version, name, .. } => Some((*version, name.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            p.metadata.clone(),
            vec![],
        ),
        Err(problems) => (vec![], vec![], None, problems.clone()),
    };
    let metadata_in_sync = match &planned.plan {
        Ok(p) => p.metadata.is_none(),
        Err(_) => state.live.metadata_sha256 == planned.metadata_sha256,
    };
    let in_sync = pending.is_empty()
        && revert.is_empty()
        && metadata_in_sync
        && problems.is_empty()
        && state.live.ledger_exists;
    let at_target =
        state.live.deployed_commit.is_some() && state.live.deployed_commit == target_commit;

    if ctx.json {
        let doc = serde_json::json!({
            "database": db.redacted(),
            "ledger": state.live.ledger_exists,
            "deployed": state.live.deployed_commit.as_ref().map(|c| serde_json::json!({
                "commit": c,
                "describe": describe_commit(&ctx.repo, c),
                "dirty": state.live.deployed_dirty,
            })),
            "last_deployment": state.last,
            "target": {"ref": target.reference, "commit": target_commit},
            "applied": state.live.applied.len(),
            "pending": pending.iter().map(|(v, n)| serde_json::json!({"version": v, "name": n})).collect::<Vec<_>>(),
            "to_revert": revert.iter().map(|(v, n)| serde_json::json!({"version": v, "name": n})).collect::<Vec<_>>(),
            "metadata": {"in_sync": metadata_in_sync, "changes": metadata.as_ref().map(|m| m.changes.clone()).unwrap_or_default()},
            "problems": problems,
            "in_sync": in_sync,
            "at_target_commit": at_target,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let ui = &ctx.ui;
        ui.out(&format!("database    {}", db.redacted()));
        match (&state.last, &state.live.deployed_commit) {
            (Some(last), Some(c)) => ui.out(&format!(
                "deployed    {}{} by {} at {} ({} #{})",
                describe_commit(&ctx.repo, c),
                if state.live.deployed_dirty {
                    " + uncommitted changes"
                } else {
                    ""
                },
                last.actor.as_deref().unwrap_or("unknown"),
                last.started_at,
                last.kind,
                last.id
            )),
            (Some(last), None) => ui.out(&format!(
                "deployed    the empty state ({} #{})",
                last.kind, last.id
            )),
            _ if state.live.ledger_exists => ui.out("deployed    nothing recorded yet"),
            _ => ui.out("deployed    nothing (no git-migrate ledger in this database yet)"),
        }
        ui.out(&format!(
            "target      {}{}",
            target.reference,
            target_commit
                .as_deref()
                .map(|c| format!(" = {}", describe_commit(&ctx.repo, c)))
                .unwrap_or_default()
        ));
        ui.out(&format!(
            "migrations  {} applied, {} pending, {} to revert",
            state.live.applied.len(),
            pending.len(),
            revert.len()
        ));
        for (v, n) in &revert {
            ui.out(&format!(
                "  revert    {v}_{n}  (applied, not in {})",
                target.reference
            ));
        }
        for (v, n) in &pending {
            ui.out(&format!("  pending   {v}_{n}"));
        }
        for l in problem_lines(&problems) {
            ui.out(&l);
        }
        match &metadata {
            None if metadata_in_sync => ui.out("metadata    in sync"),
            None => ui.out("metadata    differs"),
            Some(m) => {
                ui.out(&format!(
                    "metadata    {} change(s) pending",
                    m.changes.len().max(1)
                ));
                for c in &m.changes {
                    ui.out(&format!("  {c}"));
                }
            }
        }
        if in_sync {
            ui.out(&format!("in sync with {}", target.reference));
        } else {
            ui.out(&format!(
                "out of sync: run `git migrate plan {}` to see what a deploy would do",
                args.rev.as_deref().unwrap_or("HEAD")
            ));
        }
    }
    if args.exit_code && !in_sync {
        return Err(CommandError::new(Kind::Findings, ""));
    }
    Ok(())
}
