//! `git migrate apply`: Hasura's `migrate apply` flags and semantics (design §11), each run one
//! transaction, every needed down checked before anything runs.

use super::deploy::{run_mutation, ExecFlags, Goal, PlanFlags};
use super::error::{CommandError, Kind};
use super::{Ctx, SourceArgs};
use crate::plan::{ApplySpec, Mode};
use clap::Args;

/// Arguments of `apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Apply N pending migrations, or `all` (the default).
    #[arg(long, value_name = "N|all", conflicts_with_all = ["down", "version", "goto"])]
    pub up: Option<String>,
    /// Revert the N highest applied migrations, or `all`.
    #[arg(long, value_name = "N|all", conflicts_with_all = ["version", "goto"])]
    pub down: Option<String>,
    /// Apply or revert only this version (see --type).
    #[arg(long, value_name = "V", conflicts_with = "goto")]
    pub version: Option<i64>,
    /// With --version: up or down.
    #[arg(long = "type", value_name = "up|down", default_value = "up", value_parser = ["up", "down"])]
    pub kind: String,
    /// Migrate to version V: apply up to it, or revert down to it (V stays applied).
    #[arg(long, value_name = "V")]
    pub goto: Option<i64>,
    /// Write the state (ledger rows) without running any SQL.
    #[arg(long, conflicts_with_all = ["goto", "dry_run"])]
    pub skip_execution: bool,
    /// Print Hasura's VERSION TYPE NAME table and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read the migrations from this revision instead of HEAD.
    #[arg(long, value_name = "REV", conflicts_with_all = ["worktree"])]
    pub rev: Option<String>,
    /// Read the migrations from the working tree (recorded as dirty).
    #[arg(long)]
    pub worktree: bool,
    /// Take down SQL from this revision instead of the deployed commit.
    #[arg(long, value_name = "REV")]
    pub down_from: Option<String>,
    /// Seconds to wait for another deployment's lock (exit 5 after that).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// Do not run the prelude SQL (pgcrypto) before the first migration of a fresh database.
    #[arg(long)]
    pub no_prelude: bool,
}

fn count(flag: &str, v: &str) -> Result<Option<usize>, CommandError> {
    if v.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(CommandError::new(
            Kind::Usage,
            format!("{flag} takes a positive number or `all`, not {v:?}"),
        )),
    }
}

/// `git migrate apply`.
pub fn cmd_apply(ctx: &Ctx, args: &ApplyArgs) -> Result<(), CommandError> {
    let spec = if let Some(v) = args.version {
        ApplySpec::Version {
            version: v,
            up: args.kind == "up",
        }
    } else if let Some(v) = args.goto {
        ApplySpec::Goto(v)
    } else if let Some(d) = &args.down {
        ApplySpec::Down(count("--down", d)?)
    } else {
        ApplySpec::Up(match &args.up {
            Some(u) => count("--up", u)?,
            None => None,
        })
    };
    let flags = PlanFlags {
        down_from: args.down_from.clone(),
        // --skip-execution only writes state: a revert needs no down SQL then.
        allow_empty_down: args.skip_execution,
        // Hasura applies versions below the highest applied one; git tells us why they are
        // there, and the plan says so.
        allow_out_of_order: true,
        sql: false,
        source: SourceArgs {
            staged: false,
            worktree: args.worktree,
        },
    };
    let exec = ExecFlags {
        dry_run: args.dry_run,
        // Like Hasura's, `apply` never prompts.
        yes: true,
        lock_timeout: args.lock_timeout,
        statement_timeout: None,
        statement_lock_timeout: None,
        prelude_sql: None,
        no_prelude: args.no_prelude,
        allow_inconsistent_metadata: true,
        skip_hasura_catalog: false,
        skip_execution: args.skip_execution,
    };
    run_mutation(
        ctx,
        Mode::Apply,
        Goal::Select(args.rev.as_deref(), spec),
        &flags,
        &exec,
    )
}
