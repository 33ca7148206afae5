//! `git migrate promote FROM TO`: deploy to environment TO exactly the commit environment FROM
//! is at, read from FROM's ledger (design §9). Release tags are the checkpoints: TO's
//! `require_tag` must accept that commit, and FROM must be exactly there (no failed or
//! unfinished deployment, no pending or extra migrations, metadata in sync).

use super::deploy::run_mutation;
use super::environments::read_env;
use super::error::{CommandError, Kind};
use super::json::EnvState;
use super::prepare::{ExecFlags, Goal, PlanFlags};
use super::render::describe_commit;
use super::Ctx;
use clap::Args;
use git_migrate_core::gather::{self, GatherOptions, TargetProject};
use git_migrate_core::plan::tag_verdict;
use git_migrate_core::plan::{Mode, PlanOptions};
use git_migrate_core::source::short;

/// Arguments of `promote`.
#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The environment whose commit to copy (e.g. staging).
    pub from: String,
    /// The environment to deploy it to (e.g. production).
    pub to: String,
    /// Record the new checksum of applied migrations whose up file was edited since they ran,
    /// without running anything (what the Hasura CLI did).
    #[arg(long)]
    pub accept_edited: bool,
    #[command(flatten)]
    pub downs: super::prepare::ComputeDownsArgs,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub rollout: super::fleet::RolloutArgs,
}

/// Why FROM cannot be promoted, from what its ledger says (pure).
pub(crate) fn source_problems(from: &EnvState) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &from.error {
        out.push(format!("cannot read environment {}: {e}", from.name));
        return out;
    }
    if let Some(last) = &from.last {
        if last.status != "ok" {
            out.push(format!(
                "the last deployment of {} (#{} {}, {} by {}) ended {}",
                from.name,
                last.id,
                last.kind,
                last.started_at,
                last.actor.as_deref().unwrap_or("unknown"),
                last.status
            ));
        }
    }
    if !from.dirty.is_empty() {
        out.push(format!(
            "{} has unfinished no-transaction migrations: {}",
            from.name,
            from.dirty
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if from.commit.is_none() {
        out.push(format!(
            "{} is at no commit: nothing was deployed there with git-migrate",
            from.name
        ));
    }
    out
}

/// `git migrate promote FROM TO`.
pub(crate) fn cmd_promote(ctx: &Ctx, args: &PromoteArgs) -> Result<(), CommandError> {
    if let Some(rev) = ctx.fleet_child.as_ref().and_then(|c| c.rev.clone()) {
        // One database of TO's fleet: the parent checked FROM once and read the revision.
        let to_env = super::find_env(&ctx.config, &args.to)?;
        return deploy_to(ctx, &to_env, &rev, args);
    }
    if ctx.database_url.is_some() || ctx.env.is_some() {
        return Err(CommandError::new(
            Kind::Usage,
            "promote takes its databases from the two environments; do not pass --database-url or --env",
        ));
    }
    let find = |name: &str| super::find_env(&ctx.config, name);
    let from_env = find(&args.from)?;
    let to_env = find(&args.to)?;
    if from_env.name == to_env.name {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "promote {0} {0}: FROM and TO are the same environment",
                from_env.name
            ),
        ));
    }
    let refuse = |why: Vec<String>, hints: Vec<String>| {
        let mut e = CommandError::new(
            Kind::Refused,
            format!(
                "cannot promote {} to {}; nothing was changed",
                from_env.name, to_env.name
            ),
        );
        e.causes = why;
        e.hints = hints;
        e
    };
    if let Some(expected) = &to_env.promote_from {
        if expected != &from_env.name {
            return Err(refuse(
                vec![format!(
                    "{} is promoted from {expected} (promote_from in git-migrate.yaml), not from {}",
                    to_env.name, from_env.name
                )],
                vec![format!("git migrate promote {expected} {}", to_env.name)],
            ));
        }
    }
    let from = read_env(ctx, &from_env);
    if from.error.is_some() {
        let mut e = CommandError::new(
            Kind::Failure,
            format!("cannot read where environment {} is", from_env.name),
        );
        e.causes = source_problems(&from);
        return Err(e);
    }
    let problems = source_problems(&from);
    if !problems.is_empty() {
        return Err(refuse(
            problems,
            vec![
                format!("see `git migrate log --env {}`", from_env.name),
                format!(
                    "fix {} first (deploy the release there again, or `git migrate repair`), then promote",
                    from_env.name
                ),
            ],
        ));
    }
    let commit = from.commit.clone().unwrap_or_default();
    if !ctx.repo.has_commit(&commit) {
        return Err(refuse(
            vec![format!(
                "{} is at commit {}, which is not in this repository",
                from_env.name,
                short(&commit)
            )],
            vec!["fetch the history and tags: git fetch --tags origin".into()],
        ));
    }
    // FROM must be exactly at the commit: what a deploy of it would do there must be nothing.
    exactly_at(ctx, &from_env, &commit)?;
    let tag = tag_verdict(&to_env, Some(&commit), &from.tags).map_err(|why| {
        refuse(
            vec![why],
            vec![format!(
                "tag the release, deploy the tag to {}, then promote",
                from_env.name
            )],
        )
    })?;
    let rev = tag
        .clone()
        .or_else(|| from.tags.first().cloned())
        .unwrap_or_else(|| commit.clone());
    if !ctx.json {
        let by = from
            .last
            .as_ref()
            .map(|l| {
                format!(
                    ", deployed there by {} at {} (#{})",
                    l.actor.as_deref().unwrap_or("unknown"),
                    l.started_at,
                    l.id
                )
            })
            .unwrap_or_default();
        ctx.ui.out(&format!(
            "Promoting {} -> {}: {}{by}",
            from_env.name,
            to_env.name,
            describe_commit(&ctx.repo, &commit)
        ));
    }
    if to_env.is_fleet() {
        let fleet = super::fleet::fleet_of_env(&to_env)?;
        let launch = super::fleet::Launch {
            what: format!("promote {} -> {} ({rev})", from_env.name, to_env.name),
            rev: Some(rev.clone()),
            yes: args.exec.yes,
            dry_run: args.exec.dry_run,
        };
        return super::fleet::rollout(ctx, &fleet, &args.rollout, &launch);
    }
    deploy_to(ctx, &to_env, &rev, args)
}

/// Deploys `rev` to environment `to_env` (to the database of this fleet's child, if it is one).
fn deploy_to(
    ctx: &Ctx,
    to_env: &git_migrate_core::config::Environment,
    rev: &str,
    args: &PromoteArgs,
) -> Result<(), CommandError> {
    let to_ctx = Ctx {
        ui: ctx.ui.clone(),
        repo: reopen(ctx)?,
        config: ctx.config.clone(),
        cli_project: ctx.cli_project.clone(),
        database_url: ctx.fleet_child.as_ref().map(|c| c.url.clone()),
        json: ctx.json,
        database_name: ctx.database_name.clone(),
        actor: ctx.actor.clone(),
        env: Some(to_env.clone()),
        fleet_child: ctx.fleet_child.clone(),
    };
    run_mutation(
        &to_ctx,
        Mode::Deploy,
        Goal::Rev(Some(rev)),
        &PlanFlags {
            accept_edited: args.accept_edited,
            downs: args.downs.clone(),
            ..PlanFlags::default()
        },
        &args.exec,
    )
}

fn reopen(ctx: &Ctx) -> Result<git_migrate_core::source::Repo, CommandError> {
    let mut repo = git_migrate_core::source::Repo::open(ctx.repo.git().path())?;
    if ctx.repo.database_chosen() {
        repo.set_database(ctx.repo.database());
    }
    Ok(repo)
}

/// Refuses unless FROM's database is exactly at `commit`: no pending, extra or modified
/// migrations and the metadata in sync (a later `apply` or `metadata apply` there would make
/// "the commit staging is at" a lie).
fn exactly_at(
    ctx: &Ctx,
    env: &git_migrate_core::config::Environment,
    commit: &str,
) -> Result<(), CommandError> {
    for target in super::fleet::env_targets(ctx, env)? {
        exactly_at_one(ctx, env, &target, commit)?;
    }
    Ok(())
}

fn exactly_at_one(
    ctx: &Ctx,
    env: &git_migrate_core::config::Environment,
    target: &git_migrate_core::db::DbTarget,
    commit: &str,
) -> Result<(), CommandError> {
    let (_, mut client) = ctx.connect_target(target.clone())?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    let project_dir = ctx.project_dir();
    let tree = ctx.repo.tree_of_commit(commit)?;
    let mut t = TargetProject {
        reference: short(commit),
        project: Some(ctx.repo.project_at(tree, commit, project_dir.as_deref())?),
    };
    let planned = gather::plan_for(
        &ctx.repo,
        &mut client,
        &ledger,
        &mut t,
        &state,
        PlanOptions {
            mode: Mode::Deploy,
            out_of_order: git_migrate_core::plan::OutOfOrderPolicy::Allow,
            allow_empty_down: true,
            accept_edited: ctx.config.accept_edited,
            compute_downs: git_migrate_core::plan::ComputeDowns::Off,
            capture_downs: ctx.config.capture_downs,
        },
        &GatherOptions {
            down_from: None,
            project_dir,
            selection: None,
            computed_now: Default::default(),
            environment: None,
            forward_only: None,
        },
    )?;
    let why: Vec<String> = match planned.plan {
        Ok(p) if p.is_noop() => return Ok(()),
        Ok(p) => {
            let mut w = Vec::new();
            if !p.reverted().is_empty() {
                w.push(format!(
                    "{} has migrations applied that {} does not have: {:?}",
                    env.name,
                    short(commit),
                    p.reverted()
                ));
            }
            if !p.applied().is_empty() {
                w.push(format!(
                    "{} lacks migrations of {}: {:?}",
                    env.name,
                    short(commit),
                    p.applied()
                ));
            }
            if p.metadata.is_some() {
                w.push(format!(
                    "the metadata of {} differs from {}'s",
                    env.name,
                    short(commit)
                ));
            }
            w
        }
        Err(problems) => problems.into_iter().map(|p| p.message).collect(),
    };
    let mut e = CommandError::new(
        Kind::Refused,
        format!(
            "cannot promote {}: {} is not exactly at {}; nothing was changed",
            env.name,
            target.redacted(),
            short(commit)
        ),
    );
    e.causes = why;
    e.hints.push(format!(
        "see `git migrate status --env {}`; deploy the release there again, then promote",
        env.name
    ));
    Err(e)
}
