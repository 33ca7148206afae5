//! `git migrate apply`: Hasura's `migrate apply` flags and semantics (design §11), each run one
//! transaction, every needed down checked before anything runs.

use super::deploy::run_mutation;
use super::error::{CommandError, Kind};
use super::prepare::{ExecFlags, Goal, PlanFlags};
use super::{Ctx, SourceArgs};
use clap::Args;
use git_migrate_core::plan::{ApplySpec, Mode};

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
    /// Apply to every database of a config v3 project (the sources of metadata/databases/),
    /// each through the URL its `database_url` names (a literal or `from_env: VAR`).
    #[arg(long, conflicts_with_all = ["goto", "version", "dry_run"])]
    pub all_databases: bool,
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
    /// Record the new checksum of applied migrations whose up file was edited since they ran,
    /// without running anything (what the Hasura CLI did).
    #[arg(long)]
    pub accept_edited: bool,
    #[command(flatten)]
    pub downs: super::prepare::ComputeDownsArgs,
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

/// The databases of the project at the revision: (name, connection URL).
fn databases(ctx: &Ctx, rev: Option<&str>) -> Result<Vec<(String, String)>, CommandError> {
    let source = git_migrate_core::source::Source::Rev(rev.unwrap_or("HEAD").to_string());
    let project = ctx.repo.project(&source, ctx.project_dir().as_deref())?;
    if project.config.version < 3 {
        return Err(CommandError::new(
            Kind::Usage,
            "--all-databases needs a config v3 project; a config v2 project has one database",
        ));
    }
    let target = git_migrate_core::gather::TargetProject {
        reference: source.describe(),
        project: Some(project),
    };
    let snapshot = git_migrate_core::gather::target_snapshot(&ctx.repo, &target)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for s in snapshot["sources"].as_array().into_iter().flatten() {
        let Some(name) = s["name"].as_str() else {
            continue;
        };
        let url = &s["configuration"]["connection_info"]["database_url"];
        let resolved = match (url.as_str(), url["from_env"].as_str()) {
            (Some(u), _) => Some(u.to_string()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(u) if !u.is_empty() => Some(u),
                _ => {
                    missing.push(format!("{name} (${var})"));
                    None
                }
            },
            _ => {
                missing.push(format!("{name} (no database_url)"));
                None
            }
        };
        if let Some(u) = resolved {
            if let Some(p) = git_migrate_core::db::DbTarget::from_url(&u).password() {
                super::ui::register_secret(p);
            }
            out.push((name.to_string(), u));
        }
    }
    if !missing.is_empty() {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "--all-databases: no connection URL for {}; nothing was changed",
                missing.join(", ")
            ),
        )
        .hint("set the environment variables the sources' database_url names"));
    }
    Ok(out)
}

/// `git migrate apply --all-databases`: one transaction per database, in the order the
/// metadata lists them; every failure is reported at the end.
fn apply_all(ctx: &Ctx, args: &ApplyArgs) -> Result<(), CommandError> {
    let dbs = databases(ctx, args.rev.as_deref())?;
    let mut failed = Vec::new();
    for (name, url) in dbs {
        ctx.ui.out(&format!("Database: {name}"));
        let mut repo = git_migrate_core::source::Repo::open(ctx.repo.git().path())?;
        repo.set_database(&name);
        let one = Ctx {
            ui: ctx.ui.clone(),
            repo,
            config: ctx.config.clone(),
            cli_project: ctx.cli_project.clone(),
            database_url: Some(url),
            json: ctx.json,
            database_name: Some(name.clone()),
            actor: ctx.actor.clone(),
            env: ctx.env.clone(),
            fleet_child: None,
        };
        let one_args = ApplyArgs {
            all_databases: false,
            up: args.up.clone(),
            down: args.down.clone(),
            rev: args.rev.clone(),
            down_from: args.down_from.clone(),
            kind: args.kind.clone(),
            downs: args.downs.clone(),
            ..*args
        };
        if let Err(e) = cmd_apply(&one, &one_args) {
            ctx.ui.error(&e);
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CommandError::new(
            Kind::Failure,
            format!(
                "apply failed on: {} (the others were applied)",
                failed.join(", ")
            ),
        ))
    }
}

/// `git migrate apply`.
pub(crate) fn cmd_apply(ctx: &Ctx, args: &ApplyArgs) -> Result<(), CommandError> {
    if args.all_databases {
        return apply_all(ctx, args);
    }
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
        accept_edited: args.accept_edited,
        downs: args.downs.clone(),
        sql: false,
        source: SourceArgs {
            staged: false,
            worktree: args.worktree,
        },
        fixed: None,
        forward: Default::default(),
    };
    let exec = ExecFlags {
        dry_run: args.dry_run,
        // Like Hasura's, `apply` never prompts.
        yes: true,
        lock_timeout: args.lock_timeout,
        statement_timeout: None,
        // policy.statement_lock_timeout and policy.lock_retries, as for deploy.
        statement_lock_timeout: None,
        lock_retries: None,
        prelude_sql: None,
        no_prelude: args.no_prelude,
        allow_inconsistent_metadata: true,
        skip_hasura_catalog: false,
        skip_execution: args.skip_execution,
        // `apply` moves migrations, not the database, to a commit: nothing to prove.
        allow_mismatch: false,
        verify_target: false,
    };
    run_mutation(
        ctx,
        Mode::Apply,
        Goal::Select(args.rev.as_deref(), spec),
        &flags,
        &exec,
    )
}
