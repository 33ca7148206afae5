//! `plan`, `deploy` and `rollback`: the same planner, then (for the last two) execution.

use super::error::{CommandError, Kind};
use super::render::{describe_commit, plan_lines};
use super::{Ctx, SourceArgs};
use git_migrate_core::execute::{self, Event, ExecOptions};
use git_migrate_core::gather::{self, GatherOptions, TargetProject};
use git_migrate_core::plan::{ComputeDowns, Mode, OutOfOrderPolicy, PlanOptions, Step};

use clap::Args;
use std::time::{Duration, Instant};

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
    /// lock_timeout for the migrations' statements, in seconds (default: the server's).
    #[arg(long, value_name = "SECS")]
    pub statement_lock_timeout: Option<u64>,
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

/// Arguments of `plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Target revision (commit, tag, branch, HEAD~3).
    pub rev: Option<String>,
    #[command(flatten)]
    pub flags: PlanFlags,
}

/// Arguments of `deploy`.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Target revision (commit, tag, branch, HEAD~3). Default: HEAD.
    pub rev: Option<String>,
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
}

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
}

struct Prepared {
    client: postgres::Client,
    target: TargetProject,
    /// The plan shown and confirmed, with the state it was computed from.
    confirmed: execute::Confirmed,
    options: PlanOptions,
    gather: GatherOptions,
    db: String,
    /// The adoption of a database the Hasura CLI manages, done first by execute.
    adoption: Option<git_migrate_core::ledger::adopt::Adoption>,
    /// The SQL of each step (read once: shown, checked, then run).
    texts: Vec<execute::StepSql>,
    /// Old mistakes in the files read (a YAML key written twice), shown with the plan.
    file_warnings: Vec<String>,
}

fn plan_options(ctx: &Ctx, mode: Mode, flags: &PlanFlags) -> PlanOptions {
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

fn prepare(
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
    super::adopt::refuse_unadopted(&state, mode)?;
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
        // repeated, this walks back through the deploy history.
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
    // `--env` with `require_tag`: only tagged commits (the working tree, the index and the
    // empty state are not commits).
    if ctx.env.is_some() {
        let commit = target
            .project
            .as_ref()
            .filter(|p| !p.tree.is_dirty())
            .and_then(|p| p.commit_hex());
        super::environments::check_target(ctx, commit.as_deref(), &target.reference)?;
        if mode == Mode::Deploy {
            super::environments::check_promoted(ctx, commit.as_deref())?;
        }
    }
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
    Ok(Prepared {
        client,
        target,
        confirmed,
        options,
        gather,
        db: db.redacted(),
        adoption,
        texts,
        file_warnings: git_migrate_core::yaml::take_warnings(),
    })
}

/// Whether a plan runs down SQL that someone wrote (not computed, not a no-op).
fn ran_written_downs(plan: &git_migrate_core::plan::Plan) -> bool {
    plan.steps.iter().any(|s| {
        matches!(s, Step::Revert { down, noop: false, .. }
            if !matches!(down, git_migrate_core::plan::DownOrigin::Computed { .. }))
    })
}

/// Computes the downs of `versions` by replaying the applied history in a scratch database
/// (`--scratch-url`, or a throwaway cluster from the local server binaries).
fn replay_downs(
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
fn replay_target(
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

/// Steps that run outside the deployment transaction, and the warning that goes with them.
fn print_no_transaction(ctx: &Ctx, p: &Prepared) {
    let outside: Vec<&Step> = p
        .confirmed
        .plan
        .steps
        .iter()
        .zip(&p.texts)
        .filter(|(s, t)| execute::runs_outside(s, t))
        .map(|(s, _)| s)
        .collect();
    if outside.is_empty() {
        return;
    }
    for s in &outside {
        let (what, v, n) = match s {
            Step::Revert { version, name, .. } => ("revert", version, name),
            Step::Apply { version, name, .. } => ("apply", version, name),
        };
        ctx.ui.out(&format!(
            "  outside a transaction: {what} {v}_{n} ({})",
            git_migrate_core::check::rules::NO_TRANSACTION_MARKER
        ));
    }
    ctx.ui.warn(&format!(
        "{} step(s) run outside the deployment transaction: the steps before each one commit first, and a failure or Ctrl-C inside one leaves its migration marked dirty and the deployment partial until `git migrate repair --done V` or `--undone V`",
        outside.len()
    ));
}

fn print_plan(ctx: &Ctx, p: &Prepared, show_sql: bool) {
    if ctx.json {
        ctx.ui.out(&plan_json(p, show_sql));
        return;
    }
    if let Some(a) = &p.adoption {
        for l in super::adopt::adoption_lines(ctx, a, false) {
            ctx.ui.out(&l);
        }
    }
    if p.confirmed.plan.mode == Mode::Apply {
        // Hasura's `migrate apply --dry-run` table.
        let rows: Vec<(String, &str, String)> = p
            .confirmed
            .plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Revert { version, name, .. } => (version.to_string(), "down", name.clone()),
                Step::Apply { version, name, .. } => (version.to_string(), "up", name.clone()),
            })
            .collect();
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(7).max(7);
        ctx.ui.out(&format!("{:<w$}  TYPE  NAME", "VERSION"));
        for (v, t, n) in rows {
            ctx.ui.out(&format!("{v:<w$}  {t:<4}  {n}"));
        }
        print_no_transaction(ctx, p);
        for n in plan_notes(p) {
            ctx.ui.out(&format!("note: {n}"));
        }
        for w in p.file_warnings.iter().chain(&p.confirmed.plan.warnings) {
            ctx.ui.warn(w);
        }
        return;
    }
    let segmented = p
        .confirmed
        .plan
        .steps
        .iter()
        .zip(&p.texts)
        .any(|(s, t)| execute::runs_outside(s, t));
    for l in plan_lines(&ctx.repo, &p.confirmed.plan, show_sql, segmented) {
        ctx.ui.out(&l);
    }
    print_no_transaction(ctx, p);
    for n in plan_notes(p) {
        ctx.ui.out(&format!("note: {n}"));
    }
    for w in p.file_warnings.iter().chain(&p.confirmed.plan.warnings) {
        ctx.ui.warn(w);
    }
}

/// What the plan does that the user should know but that needs no decision: transaction
/// wrappers ignored, legacy YAML migrations, folders that are not migrations, edited applied
/// migrations whose new checksum is recorded. Every such thing gets a line.
fn plan_notes(p: &Prepared) -> Vec<String> {
    let mut notes = Vec::new();
    for (step, sql) in p.confirmed.plan.steps.iter().zip(&p.texts) {
        let (what, v, n) = match step {
            Step::Revert { version, name, .. } => ("revert", version, name),
            Step::Apply { version, name, .. } => ("apply", version, name),
        };
        if sql.legacy_yaml {
            let skipped = if sql.skipped_calls.is_empty() {
                String::new()
            } else {
                format!(
                    "; skipped {} other API call(s) ({}): the metadata comes from metadata/",
                    sql.skipped_calls.len(),
                    git_migrate_core::project::legacy::describe_skipped(&sql.skipped_calls)
                )
            };
            notes.push(format!(
                "{what} {v}_{n}: legacy YAML migration, runs the SQL of its run_sql calls{skipped}"
            ));
        }
        if let Some(w) = &sql.wrapper {
            notes.push(format!(
                "{what} {v}_{n}: transaction wrapper ignored ({w}): the deployment is one transaction"
            ));
        }
    }
    // Both commits: the one each edit was applied from, and the target's.
    let plan = &p.confirmed.plan;
    let target = match &plan.to_commit {
        Some(c) if !c.starts_with(&plan.target_ref) => {
            format!(
                "{} ({})",
                plan.target_ref,
                git_migrate_core::source::short(c)
            )
        }
        _ => plan.target_ref.clone(),
    };
    for a in &plan.accepted {
        notes.push(a.describe(&target));
    }
    if let Some(project) = &p.target.project {
        for f in &project.skipped_folders {
            notes.push(format!(
                "{f} holds no up.sql or up.yaml: skipped, it is not a migration"
            ));
        }
        for f in &project.ignored_yaml {
            notes.push(format!(
                "{f} ignored: the .sql file of the same direction is there and runs instead"
            ));
        }
    }
    notes
}

/// The file warnings of a plan that is not printed.
fn warn_files(ctx: &Ctx, p: &Prepared) {
    for w in &p.file_warnings {
        ctx.ui.warn(w);
    }
}

fn plan_json(p: &Prepared, show_sql: bool) -> String {
    let mut v = serde_json::to_value(&p.confirmed.plan).unwrap_or_default();
    if show_sql {
        if let Some(steps) = v.get_mut("steps").and_then(|s| s.as_array_mut()) {
            for (s, step) in steps.iter_mut().zip(&p.confirmed.plan.steps) {
                if let Step::Revert { sql, .. } = step {
                    s["sql"] = serde_json::Value::String(sql.clone());
                }
            }
        }
    }
    v["database"] = serde_json::Value::String(p.db.clone());
    if let Some(w) = v.get_mut("warnings").and_then(|w| w.as_array_mut()) {
        w.splice(0..0, p.file_warnings.iter().cloned().map(Into::into));
    }
    v["no_transaction"] = p
        .confirmed
        .plan
        .steps
        .iter()
        .zip(&p.texts)
        .filter(|(s, t)| execute::runs_outside(s, t))
        .map(|(s, _)| s.version())
        .collect();
    if let Some(a) = &p.adoption {
        v["adopt"] = super::adopt::adoption_json(a);
    }
    v["notes"] = plan_notes(p).into();
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// `git migrate plan REV`.
pub(crate) fn cmd_plan(ctx: &Ctx, args: &PlanArgs) -> Result<(), CommandError> {
    let p = prepare(
        ctx,
        Mode::Deploy,
        Goal::Rev(args.rev.as_deref()),
        &args.flags,
    )?;
    print_plan(ctx, &p, args.flags.sql);
    Ok(())
}

/// `git migrate deploy REV`.
pub(crate) fn cmd_deploy(ctx: &Ctx, args: &DeployArgs) -> Result<(), CommandError> {
    run_mutation(
        ctx,
        Mode::Deploy,
        Goal::Rev(args.rev.as_deref()),
        &args.flags,
        &args.exec,
    )
}

/// `git migrate rollback [REV]`.
pub(crate) fn cmd_rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<(), CommandError> {
    run_mutation(
        ctx,
        Mode::Rollback,
        Goal::Rev(args.rev.as_deref()),
        &args.flags,
        &args.exec,
    )
}

pub(super) fn run_mutation(
    ctx: &Ctx,
    mode: Mode,
    goal: Goal<'_>,
    flags: &PlanFlags,
    exec: &ExecFlags,
) -> Result<(), CommandError> {
    let mut p = prepare(ctx, mode, goal, flags)?;
    if mode == Mode::Apply && p.confirmed.plan.is_noop() {
        if ctx.json {
            ctx.ui.out(&plan_json(&p, false));
        } else {
            ctx.ui.out("Nothing to apply.");
            warn_files(ctx, &p);
        }
        return Ok(());
    }
    let already_there = p.confirmed.plan.is_noop()
        && p.adoption.is_none()
        && (mode == Mode::Metadata
            || p.confirmed.plan.to_commit == p.confirmed.plan.from_commit
                && !p.confirmed.plan.dirty);
    if already_there {
        if ctx.json {
            ctx.ui.out(&plan_json(&p, false));
        } else {
            let at = p
                .confirmed
                .plan
                .to_commit
                .as_deref()
                .map(|c| describe_commit(&ctx.repo, c))
                .unwrap_or_else(|| "the empty state".into());
            if mode == Mode::Metadata {
                ctx.ui.out(&format!(
                    "The metadata already matches {at}; nothing to do."
                ));
            } else {
                ctx.ui.out(&format!("Already at {at}; nothing to do."));
            }
            warn_files(ctx, &p);
        }
        return Ok(());
    }
    print_plan(ctx, &p, flags.sql);
    if !exec.skip_execution {
        let found = execute::transaction_control_in(&p.confirmed.plan.steps, &p.texts);
        if !found.is_empty() {
            return Err(execute::ExecError::TransactionControl(found).into());
        }
    }
    if exec.dry_run {
        if !ctx.json {
            ctx.ui.info("dry run: nothing was changed");
        }
        return Ok(());
    }
    let env_confirms = ctx.env.as_ref().is_some_and(|e| e.confirm);
    if env_confirms && !p.confirmed.plan.reverts() && !exec.yes {
        let env = ctx
            .env
            .as_ref()
            .map(|e| e.name.as_str())
            .unwrap_or_default();
        ctx.ui.confirm_or_refuse(
            &format!("This changes environment {env} ({}). Proceed?", p.db),
            &format!("environment {env} asks for confirmation of every change and there is no terminal to confirm it"),
            "nothing was changed",
            "review the plan above, then pass --yes",
        )?;
    }
    if p.confirmed.plan.reverts() && !exec.yes {
        ctx.ui.confirm_or_refuse(
            &format!(
                "This reverts {} migration(s) on {}. Proceed?",
                p.confirmed.plan.reverted().len(),
                p.db
            ),
            "this plan reverts migrations and there is no terminal to confirm it",
            "nothing was changed",
            "review the plan above, then pass --yes",
        )?;
    }
    let started = Instant::now();
    let prelude = if exec.no_prelude {
        None
    } else {
        exec.prelude_sql
            .clone()
            .or_else(|| ctx.config.prelude_sql.clone())
            .or_else(|| Some(git_migrate_core::project::DEFAULT_PRELUDE.to_string()))
    };
    let options = ExecOptions {
        lock_timeout: Duration::from_secs(exec.lock_timeout),
        statement_lock_timeout: exec.statement_lock_timeout.map(Duration::from_secs),
        statement_timeout: exec.statement_timeout.map(Duration::from_secs),
        prelude,
        kind: match mode {
            Mode::Deploy => "deploy",
            Mode::Rollback => "rollback",
            Mode::Metadata => "metadata",
            Mode::Apply => "apply",
        },
        actor: git_migrate_core::ledger::actor_with_role(&mut p.client, &ctx.actor),
        // `apply` changes migrations only, like Hasura's: the metadata is checked and warned
        // about, and `metadata apply` is the next step (design §11).
        allow_inconsistent_metadata: exec.allow_inconsistent_metadata || mode == Mode::Apply,
        skip_hasura_catalog: exec.skip_hasura_catalog,
        skip_execution: exec.skip_execution,
        allow_mismatch: exec.allow_mismatch,
        expected_schema: match exec.verify_target {
            true => Some(replay_target(ctx, flags, &mut p)?),
            false => None,
        },
    };
    let ui = &ctx.ui;
    let quiet = ctx.json || ui.quiet;
    // A progress bar on a terminal, shown once the deployment has run for a second.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(p.confirmed.plan.steps.len() as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let show_bar = !quiet && ui.verbose == 0 && console::Term::stderr().is_term();
    let mut bar_visible = false;
    let mut on_event = |e: Event<'_>| match e {
        Event::Waiting(h) => ui.info(&format!(
            "waiting for another deployment to finish{} (up to {}s)…",
            h.map(|h| format!(": lock held by {h}")).unwrap_or_default(),
            exec.lock_timeout
        )),
        Event::Step(s) if !quiet && ui.verbose > 0 => match s {
            Step::Revert { version, name, .. } => ui.info(&format!("reverting {version}_{name}")),
            Step::Apply { version, name, .. } => ui.info(&format!("applying {version}_{name}")),
        },
        Event::Step(s) => {
            if show_bar && !bar_visible && started.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar_visible = true;
            }
            bar.set_message(format!("{}", s.version()));
            bar.inc(1);
        }
        Event::AlreadyThere => ui.info("another deployment reached the target while we waited"),
        Event::Inconsistent(problems) if mode == Mode::Apply => {
            for p in problems {
                ui.warn(&format!(
                    "the live metadata does not match the schema now: {p}"
                ));
            }
            ui.warn("next: bring the metadata in line with `git migrate metadata apply <rev>` (apply changes migrations only, like Hasura's)");
        }
        Event::Inconsistent(problems) => {
            for p in problems {
                ui.warn(&format!("inconsistent metadata (allowed): {p}"));
            }
        }
    };
    let ledger = ctx.ledger();
    // A second connection holds the lock while no-transaction migrations run.
    let connect = || ctx.connect().map(|(_, c)| c).map_err(|e| e.message);
    let extras = execute::Extras {
        texts: Some(std::mem::take(&mut p.texts)),
        connect: Some(&connect),
    };
    let outcome = execute::execute_with(
        &mut p.client,
        &ctx.repo,
        &ledger,
        &mut p.target,
        &p.confirmed,
        p.options,
        &p.gather,
        &options,
        &mut on_event,
        extras,
    );
    bar.finish_and_clear();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let failed_here = matches!(
                e,
                execute::ExecError::Migration(_)
                    | execute::ExecError::Inconsistent(_)
                    | execute::ExecError::EndStateMismatch { .. }
            );
            // With --compute-downs, written downs that fail, or that do not end at the proven
            // schema, are replaced by computed ones: one more try, in a new transaction.
            let retry_computed = p.options.compute_downs == ComputeDowns::Gaps
                && ran_written_downs(&p.confirmed.plan)
                && match &e {
                    execute::ExecError::Migration(f) => f.direction == "down",
                    execute::ExecError::EndStateMismatch { .. } => true,
                    _ => false,
                };
            let mut ce = CommandError::from(e);
            if failed_here && p.confirmed.live.ledger_exists {
                let attempt = git_migrate_core::ledger::FailedAttempt {
                    kind: options.kind.to_string(),
                    target_ref: goal_ref(goal),
                    from_commit: p.confirmed.live.deployed_commit.clone(),
                    to_commit: p.confirmed.plan.to_commit.clone(),
                    actor: options.actor.clone(),
                    error: super::ui::scrub(&ce.message),
                    seconds: started.elapsed().as_secs_f64(),
                };
                match ledger.record_failure(&mut p.client, &attempt) {
                    Ok(Some(id)) => ce.causes.push(format!(
                        "the failed attempt is recorded as deployment #{id} (git migrate log)"
                    )),
                    Ok(None) => {}
                    Err(le) => ce.causes.push(format!(
                        "the failed attempt could not be recorded in the ledger: {le}"
                    )),
                }
            }
            if retry_computed {
                ui.warn(&format!("{}: {}", ce.message, ce.causes.join("; ")));
                ui.warn("the written downs did not bring the database to the target; trying again with every down computed from the schema (--compute-downs=all)");
                let all = PlanFlags {
                    downs: ComputeDownsArgs {
                        compute_downs: Some("all".into()),
                        ..flags.downs.clone()
                    },
                    ..flags.clone()
                };
                return run_mutation(ctx, mode, goal, &all, exec);
            }
            return Err(ce);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let at = outcome
        .plan
        .to_commit
        .as_deref()
        .map(|c| describe_commit(&ctx.repo, c))
        .unwrap_or_else(|| "the empty state".into());
    if ctx.json {
        let v = serde_json::json!({
            "deployment_id": outcome.deployment_id,
            "at": outcome.plan.to_commit,
            "reverted": outcome.plan.reverted(),
            "applied": outcome.plan.applied(),
            "metadata_changed": outcome.plan.metadata.is_some(),
            "seconds": secs,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let verb = match mode {
            Mode::Deploy => "Deployed",
            Mode::Rollback => "Rolled back to",
            Mode::Metadata => "Applied the metadata of",
            Mode::Apply => "Applied migrations of",
        };
        let id = outcome
            .deployment_id
            .map(|i| format!(" Deployment #{i}."))
            .unwrap_or_default();
        ctx.ui.out(&format!(
            "{verb} {at} in {secs:.2}s: {} reverted, {} applied{}.{id}",
            outcome.plan.reverted().len(),
            outcome.plan.applied().len(),
            if outcome.plan.metadata.is_some() {
                ", metadata updated"
            } else {
                ""
            },
        ));
    }
    Ok(())
}

/// The revision as typed, for the ledger's `target_ref`.
fn goal_ref(goal: Goal<'_>) -> Option<String> {
    match goal {
        Goal::Rev(r) | Goal::Select(r, _) => r.map(str::to_string),
        Goal::Empty => None,
    }
}
