//! `git migrate rollback [REV]`: reach REV by reverting only; without REV, undo the last deploy.

use super::error::CommandError;
use super::Ctx;
use git_migrate_core::plan::Mode;

use super::deploy::run_mutation;
use super::fleet::{fleet_of, rollout, FleetArgs, Launch};
use super::prepare::*;
use clap::Args;

/// Arguments of `rollback`.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// Revision to roll back to. Default: the state before the deploy that brought the database
    /// to its current commit (repeat to walk back through the deploy history).
    pub rev: Option<String>,
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// `git migrate rollback [REV]`.
pub(crate) fn cmd_rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<(), CommandError> {
    if let Some(fleet) = fleet_of(ctx, args.fleet.fleet.as_deref())? {
        let launch = Launch {
            what: match &args.rev {
                Some(r) => format!("rollback {r}"),
                None => "rollback (each database undoes its last deploy)".into(),
            },
            rev: None,
            yes: args.exec.yes,
            dry_run: args.exec.dry_run,
        };
        return rollout(ctx, &fleet, &args.fleet.rollout, &launch);
    }
    run_mutation(
        ctx,
        Mode::Rollback,
        Goal::Rev(args.rev.as_deref()),
        &args.flags,
        &args.exec,
    )
}
