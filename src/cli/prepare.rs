//! What `plan`, `deploy`, `rollback` (and `apply`, `metadata apply`, `promote`) share before
//! anything runs: their flags, and [`prepare`], which gathers the facts, plans (replaying history in
//! scratch for computed downs when asked), and returns the plan with what it needs to run.

use super::error::{CommandError, Kind};
use super::{Ctx, SourceArgs};
use git_migrate_core::execute::{self};
use git_migrate_core::gather::{self, GatherOptions, TargetProject};
use git_migrate_core::plan::{
    ComputeDowns, ForwardOnlyRule, Mode, OutOfOrderPolicy, PlanOptions, Step,
};

use clap::Args;

/// Options shared by plan, deploy and rollback.
#[derive(Args, Debug, Clone, Default)]
pub struct PlanFlags {
    /// Take down SQL from this revision instead of the deployed commit.
    #[arg(long, value_name = "REV")]
    pub down_from: Option<String>,
    /// Revert migrations whose down is empty as recorded no-ops.
    #[arg(long)]
    pub allow_empty_down: bool,
    /// Apply versions lower than the highest applied one without asking git why.
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Record the new checksum of applied migrations whose up file was edited since they ran,
    /// without running anything (what the Hasura CLI did); the plan names each one.
    #[arg(long)]
    pub accept_edited: bool,
    #[command(flatten)]
    pub downs: ComputeDownsArgs,
    /// Also print the SQL of each revert.
    #[arg(long)]
    pub sql: bool,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The planner's options, fixed by a plan file (`deploy --plan`) instead of taken from the
    /// flags and git-migrate.yaml.
    #[arg(skip)]
    pub fixed: Option<PlanOptions>,
    /// `--forward-only` / `--no-forward-only`, set by the commands that have them (deploy,
    /// plan).
    #[arg(skip)]
    pub forward: ForwardOnlyArgs,
}

/// `--forward-only` and its override (deploy and plan).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ForwardOnlyArgs {
    /// Refuse (exit 3, nothing changed) a deploy that moves the database back: one that reverts
    /// a migration, or whose target is an older commit than the deployed one. For migrations
    /// run when a pod starts; `rollback` stays the explicit way back. Also
    /// `forward_only: true` per environment in git-migrate.yaml.
    #[arg(long, conflicts_with = "no_forward_only")]
    pub forward_only: bool,
    /// Deploy even backwards on an environment with `forward_only: true` (this run only).
    #[arg(long)]
    pub no_forward_only: bool,
}

impl ForwardOnlyArgs {
    /// The rule in force: the flag, else the environment's `forward_only: true` unless
    /// `--no-forward-only`.
    pub(super) fn rule(
        self,
        env: Option<&git_migrate_core::config::Environment>,
    ) -> Option<ForwardOnlyRule> {
        if self.forward_only {
            return Some(ForwardOnlyRule::Flag);
        }
        env.filter(|e| e.forward_only && !self.no_forward_only)
            .map(|e| ForwardOnlyRule::Environment(e.name.clone()))
    }
}

/// How downs are computed (deploy, rollback, plan, apply, promote).
#[derive(Args, Debug, Clone, Default)]
pub struct ComputeDownsArgs {
    /// Compute the downs of migrations whose down.sql is missing or empty from the schema
    /// (stored when they were applied, or by replaying the history in a scratch database);
    /// `--compute-downs=all` computes every down and ignores the written ones.
    #[arg(long, value_name = "all", num_args = 0..=1, require_equals = true, default_missing_value = "gaps", value_parser = ["gaps", "all"])]
    pub compute_downs: Option<String>,
    /// Server for the scratch database that replays the history to compute downs (databases
    /// are created and dropped there) instead of a throwaway cluster. Also
    /// $GIT_MIGRATE_SCRATCH_URL.
    #[arg(long, value_name = "URL", env = "GIT_MIGRATE_SCRATCH_URL")]
    pub scratch_url: Option<String>,
}

/// Options of the commands that change the database.
#[derive(Args, Debug, Clone)]
pub struct ExecFlags {
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Seconds to wait for another deployment's lock (exit 5 after that).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// statement_timeout for the migrations, in seconds (default: the server's).
    #[arg(long, value_name = "SECS")]
    pub statement_timeout: Option<u64>,
    /// lock_timeout for each of the migrations' statements, in seconds (or milliseconds with an
    /// `ms` suffix); 0 or off for none (default: policy.statement_lock_timeout, 5 seconds).
    /// Not the wait for the deploy lock.
    #[arg(long, value_name = "SECS", value_parser = parse_wait)]
    pub statement_lock_timeout: Option<Wait>,
    /// Times to run the deployment again (rolled back, after pauses of 1, 2, 4… seconds) when a
    /// migration's statement timed out waiting for a lock (default: policy.lock_retries, 3).
    #[arg(long, value_name = "N")]
    pub lock_retries: Option<u32>,
    /// SQL to run once before the first migration of a fresh database
    /// (default: CREATE EXTENSION IF NOT EXISTS pgcrypto, as Hasura's server does).
    #[arg(long, value_name = "SQL", conflicts_with = "no_prelude")]
    pub prelude_sql: Option<String>,
    /// Do not run any prelude SQL.
    #[arg(long)]
    pub no_prelude: bool,
    /// Commit even when the metadata does not match the schema (prints warnings instead).
    #[arg(long)]
    pub allow_inconsistent_metadata: bool,
    /// Do not write Hasura's hdb_catalog.hdb_metadata even when this database has it.
    #[arg(long)]
    pub skip_hasura_catalog: bool,
    /// Commit even when the schema after the plan differs from the one recorded when this
    /// database was last at the target commit (the difference is recorded).
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Prove the end state against a scratch replay of the target's migrations (a fresh
    /// deploy of the target, in a scratch database: --scratch-url or local server binaries)
    /// instead of the schema recorded when this database was last at the target.
    #[arg(long)]
    pub verify_target: bool,
    /// Record the steps without running their SQL (`apply --skip-execution`).
    #[arg(skip)]
    pub skip_execution: bool,
}

/// A wait given on the command line (`--statement-lock-timeout`): `None` is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait(pub Option<std::time::Duration>);

fn parse_wait(text: &str) -> Result<Wait, String> {
    git_migrate_core::config::parse_wait(text).map(Wait)
}

pub(super) struct Prepared {
    pub(super) client: postgres::Client,
    pub(super) target: TargetProject,
    /// The plan shown and confirmed, with the state it was computed from.
    pub(super) confirmed: execute::Confirmed,
    pub(super) options: PlanOptions,
    pub(super) gather: GatherOptions,
    pub(super) db: String,
    /// The adoption of a database the Hasura CLI manages, done first by execute.
    pub(super) adoption: Option<git_migrate_core::ledger::adopt::Adoption>,
    /// The SQL of each step (read once: shown, checked, then run).
    pub(super) texts: Vec<execute::StepSql>,
    /// Old mistakes in the files read (a YAML key written twice), shown with the plan.
    pub(super) file_warnings: Vec<String>,
}

pub(super) fn plan_options(ctx: &Ctx, mode: Mode, flags: &PlanFlags) -> PlanOptions {
    if let Some(fixed) = flags.fixed {
        return fixed;
    }
    PlanOptions {
        mode,
        out_of_order: if flags.allow_out_of_order {
            OutOfOrderPolicy::Allow
        } else {
            ctx.config.out_of_order
        },
        allow_empty_down: flags.allow_empty_down,
        accept_edited: flags.accept_edited || ctx.config.accept_edited,
        compute_downs: compute_downs(ctx, flags.downs.compute_downs.as_deref()),
        capture_downs: ctx.config.capture_downs,
    }
}

/// `--compute-downs[=all]`, else `policy.compute_downs`.
pub(super) fn compute_downs(ctx: &Ctx, flag: Option<&str>) -> ComputeDowns {
    match flag {
        Some("all") => ComputeDowns::All,
        Some(_) => ComputeDowns::Gaps,
        None => ctx.config.compute_downs,
    }
}

/// Connects, reads the ledger, resolves the target and plans.
/// What to move the database to.
#[derive(Clone, Copy, Debug)]
pub(super) enum Goal<'a> {
    /// A revision (None: HEAD, or for rollback the state before the last deploy).
    Rev(Option<&'a str>),
    /// Nothing: empty metadata (`metadata clear`).
    Empty,
    /// `apply`: a Hasura-style selection of the migrations of a revision.
    Select(Option<&'a str>, git_migrate_core::plan::ApplySpec),
}

pub(super) fn prepare(
    ctx: &Ctx,
    mode: Mode,
    goal: Goal<'_>,
    flags: &PlanFlags,
) -> Result<Prepared, CommandError> {
    let rev = match goal {
        Goal::Rev(r) | Goal::Select(r, _) => r,
        Goal::Empty => None,
    };
    let (db, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let mut state = ledger.read(&mut client)?;
    let project_dir = ctx.project_dir();
    let mut target = if matches!(goal, Goal::Empty) {
        TargetProject {
            reference: "the empty metadata".into(),
            project: None,
        }
    } else if mode == Mode::Rollback
        && rev.is_none()
        && !flags.source.staged
        && !flags.source.worktree
    {
        // Undo the most recent `deploy` that brought the database to the commit it is at now;
        // repeated, this walks back through the deploy history. A database the Hasura CLI
        // manages has none yet: the planner's refusal says what to do.
        let unadopted = git_migrate_core::ledger::adopt::unadopted(&state);
        if let Some(p) = git_migrate_core::plan::unadopted_refusal(mode, unadopted) {
            return Err(CommandError::refused("cannot roll back", vec![p]));
        }
        let history = if state.live.ledger_exists {
            ledger.history(&mut client, 10_000)?
        } else {
            vec![]
        };
        let undo = history.iter().find(|d| {
            d.kind == "deploy" && d.status == "ok" && d.to_commit == state.live.deployed_commit
        });
        let Some(last) = undo else {
            return Err(CommandError::new(
                Kind::Refused,
                "nothing to roll back: no recorded deploy brought the database to the commit it is at",
            )
            .hint("name the revision to roll back to: git migrate rollback <rev>"));
        };
        match &last.from_commit {
            Some(c) => {
                let tree = ctx.repo.tree_of_commit(c)?;
                TargetProject {
                    reference: format!("the state before deployment #{}", last.id),
                    project: Some(ctx.repo.project_at(tree, c, project_dir.as_deref())?),
                }
            }
            None => TargetProject {
                reference: format!("the empty state before deployment #{}", last.id),
                project: None,
            },
        }
    } else {
        let source = flags.source.source(rev)?;
        TargetProject {
            reference: source.describe(),
            project: Some(ctx.repo.project(&source, project_dir.as_deref())?),
        }
    };
    // `--env`'s rules (`require_tag`: only tagged commits, and the working tree, the index and
    // the empty state are not commits; `promote_from`): facts for the planner, which refuses.
    let commit = target
        .project
        .as_ref()
        .filter(|p| !p.tree.is_dirty())
        .and_then(|p| p.commit_hex());
    let environment =
        super::environments::environment_facts(ctx, commit.as_deref(), mode == Mode::Deploy)?;
    // A database the Hasura CLI manages is planned as adopted (written by execute).
    let adoption = if git_migrate_core::ledger::adopt::adopts_in(mode) {
        super::adopt::implicit(&mut state, &mut target, ctx)?
    } else {
        None
    };
    if let Some(rev) = &flags.down_from {
        // Checked up front even when no revert needs it: a typo must not pass silently.
        ctx.repo.resolve_commit(rev)?;
    }
    let options = plan_options(ctx, mode, flags);
    let selection = match (goal, &target.project) {
        (Goal::Select(_, spec), Some(p)) => Some(
            git_migrate_core::plan::select(spec, &p.migrations, &state.live).map_err(
                |problem| {
                    CommandError::refused(
                        &format!("cannot apply {}", target.reference),
                        vec![problem],
                    )
                },
            )?,
        ),
        _ => None,
    };
    let mut gather = GatherOptions {
        down_from: flags.down_from.clone(),
        project_dir,
        selection,
        computed_now: Default::default(),
        environment,
        forward_only: flags.forward.rule(ctx.env.as_ref()),
    };
    let planned = loop {
        let planned = gather::plan_for(
            &ctx.repo,
            &mut client,
            &ledger,
            &mut target,
            &state,
            options,
            &gather,
        )?;
        if planned.needs_replay.is_empty() || !gather.computed_now.is_empty() {
            break planned;
        }
        // Downs to compute that the ledger does not store: replay the applied history in a
        // scratch database, then plan again with them.
        gather.computed_now = replay_downs(ctx, flags, &state.live, &planned.needs_replay)?;
    };
    let what = match mode {
        Mode::Deploy => format!("cannot deploy {}", target.reference),
        Mode::Rollback => format!("cannot roll back to {}", target.reference),
        Mode::Metadata => format!("cannot apply the metadata of {}", target.reference),
        Mode::Apply => format!("cannot apply the migrations of {}", target.reference),
    };
    let plan = planned
        .plan
        .map_err(|problems| CommandError::refused(&what, problems))?;
    let confirmed = execute::Confirmed {
        plan,
        live: state.live,
        snapshot: planned.snapshot,
        metadata_sha256: planned.metadata_sha256,
        metadata_tree: planned.metadata_tree,
    };
    let texts = execute::read_step_sql(&ctx.repo, &target, &confirmed.plan.steps)?;
    let mut file_warnings = git_migrate_core::yaml::take_warnings();
    file_warnings.extend(git_migrate_core::check::plan_lint_warnings(
        &confirmed.plan.steps,
        &texts,
        &ctx.config.lint,
    ));
    Ok(Prepared {
        client,
        target,
        confirmed,
        options,
        gather,
        db: db.redacted(),
        adoption,
        texts,
        file_warnings,
    })
}

/// Whether a plan runs down SQL that someone wrote (not computed, not a no-op).
pub(super) fn ran_written_downs(plan: &git_migrate_core::plan::Plan) -> bool {
    plan.steps.iter().any(|s| {
        matches!(s, Step::Revert { down, noop: false, .. }
            if !matches!(down, git_migrate_core::plan::DownOrigin::Computed { .. }))
    })
}

/// Computes the downs of `versions` by replaying the applied history in a scratch database
/// (`--scratch-url`, or a throwaway cluster from the local server binaries).
pub(super) fn replay_downs(
    ctx: &Ctx,
    flags: &PlanFlags,
    live: &git_migrate_core::plan::LiveState,
    versions: &[git_migrate_core::project::Version],
) -> Result<
    std::collections::BTreeMap<
        git_migrate_core::project::Version,
        git_migrate_core::schema::ComputedDown,
    >,
    CommandError,
> {
    let wanted: std::collections::BTreeSet<_> = versions.iter().copied().collect();
    let Some(last) = wanted.iter().next_back().copied() else {
        return Ok(Default::default());
    };
    let project_dir = ctx.project_dir();
    let history = gather::applied_history(&ctx.repo, live, last, project_dir.as_deref())?;
    if !ctx.json {
        ctx.ui.info(&format!(
            "computing {} down(s) by replaying {} applied migration(s) in a scratch database",
            wanted.len(),
            history.len()
        ));
    }
    let mut server =
        git_migrate_core::verify::ScratchServer::new(flags.downs.scratch_url.as_deref());
    let mut dbs = server.databases()?;
    let ledger_schema = ctx.config.ledger_schema.clone();
    let prelude = super::verify::prelude(ctx);
    git_migrate_core::verify::replay::computed_downs(
        &mut dbs,
        Some(&prelude),
        &history,
        &wanted,
        &[ledger_schema.as_str(), "hdb_catalog"],
    )
    .map_err(|e| {
        CommandError::new(
            Kind::Failure,
            format!("cannot compute downs by replay: {e}"),
        )
        .hint(super::verify::SCRATCH_URL_HINT)
    })
}

/// The schema a fresh deploy of the target gives, replayed in a scratch database
/// (`--verify-target`).
pub(super) fn replay_target(
    ctx: &Ctx,
    flags: &PlanFlags,
    p: &mut Prepared,
) -> Result<git_migrate_core::verify::fingerprint::Fingerprint, CommandError> {
    let Some(project) = p.target.project.as_mut() else {
        return Err(CommandError::new(
            Kind::Usage,
            "--verify-target needs a revision to replay; the target is the empty state",
        ));
    };
    if !ctx.json {
        ctx.ui.info(&format!(
            "replaying the {} migration(s) of {} in a scratch database (--verify-target)",
            project.migrations.len(),
            p.target.reference
        ));
    }
    let mut server =
        git_migrate_core::verify::ScratchServer::new(flags.downs.scratch_url.as_deref());
    super::verify::replay_schema(ctx, project, &mut server)
}
