//! `git migrate deploy REV`: move the database to REV, forward or backward, in one transaction;
//! `deploy --plan FILE`: run a reviewed plan file (checked by `plan_file.rs`); and
//! [`run_mutation`], the run that `rollback`, `apply`, `metadata apply` and `promote` share.

use super::error::{CommandError, PLAN_FILE_HINT};
use super::fleet::{fleet_of, rollout, FleetArgs, Launch};
use super::json;
use super::plan_file;
use super::render::describe_commit;
use super::Ctx;
use git_migrate_core::execute::{self, Event, ExecOptions};
use git_migrate_core::plan::{ComputeDowns, Mode, Step};

use super::plan::*;
use super::prepare::*;
use clap::Args;
use std::time::{Duration, Instant};

/// Arguments of `deploy`.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Target revision (commit, tag, branch, HEAD~3). Default: HEAD.
    pub rev: Option<String>,
    /// Run the plan file FILE written by `git migrate plan REV --out FILE`, with the options it
    /// records; refused (exit 3) when it was edited or when the database, the ledger or the
    /// plan moved since it was made.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["rev", "down_from", "allow_empty_down", "allow_out_of_order", "accept_edited", "compute_downs", "staged", "worktree"])]
    pub plan: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub forward: ForwardOnlyArgs,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// `git migrate deploy REV`, or `deploy --plan FILE`.
pub(crate) fn cmd_deploy(ctx: &Ctx, args: &DeployArgs) -> Result<(), CommandError> {
    if let Some(fleet) = fleet_of(ctx, args.fleet.fleet.as_deref())? {
        if args.plan.is_some() {
            return Err(CommandError::new(
                super::error::Kind::Usage,
                "a plan file holds the plan of one database; it cannot run over a fleet",
            )
            .hint("deploy the revision the plan names over the fleet: git migrate deploy REV --fleet FILE"));
        }
        let launch = Launch {
            what: format!("deploy {}", args.rev.as_deref().unwrap_or("HEAD")),
            rev: None,
            yes: args.exec.yes,
            dry_run: args.exec.dry_run,
        };
        return rollout(ctx, &fleet, &args.fleet.rollout, &launch);
    }
    let flags = PlanFlags {
        forward: args.forward,
        ..args.flags.clone()
    };
    if let Some(file) = &args.plan {
        return cmd_deploy_plan(ctx, file, &flags, &args.exec);
    }
    run_mutation(
        ctx,
        Mode::Deploy,
        Goal::Rev(args.rev.as_deref()),
        &flags,
        &args.exec,
    )
}

/// `deploy --plan FILE`: reads and checks the file, plans again with its options at its
/// target commit, refuses unless the new plan is the file's statement for statement (and the
/// ledger, the schema, the commits and the metadata digest are the file's), then runs that
/// plan like `deploy`; the executor compares the ledger and the schema once more under the
/// lock. A plan file is never retried with other options.
fn cmd_deploy_plan(
    ctx: &Ctx,
    path: &std::path::Path,
    cli_flags: &PlanFlags,
    exec: &ExecFlags,
) -> Result<(), CommandError> {
    let file = plan_file::read(path)?;
    let mode = file.options.mode;
    let flags = plan_file::fixed_flags(ctx, &file, path, cli_flags)?;
    let goal = Goal::Rev(file.to.commit.as_deref());
    let mut p = prepare(ctx, mode, goal, &flags)?;
    if let Some(rev) = &file.to.rev {
        // The commit is what runs; the ledger and the output name the revision as given.
        p.confirmed.plan.target_ref = rev.clone();
    }
    let summary = summary_lines(ctx, &p);
    plan_file::check(ctx, &file, path, &mut p, &flags, summary)?;
    run_prepared(ctx, mode, goal, &flags, exec, p, Some(file.expected())).map_err(|mut e| {
        // The way past a stale plan file is a new one, made from the same revision.
        for h in e.hints.iter_mut() {
            if h == PLAN_FILE_HINT {
                *h = plan_file::replan_hint(&file, path);
            }
        }
        e
    })
}

pub(super) fn run_mutation(
    ctx: &Ctx,
    mode: Mode,
    goal: Goal<'_>,
    flags: &PlanFlags,
    exec: &ExecFlags,
) -> Result<(), CommandError> {
    let p = prepare(ctx, mode, goal, flags)?;
    run_prepared(ctx, mode, goal, flags, exec, p, None)
}

/// Runs a prepared plan: shows it, confirms, executes, reports. `plan_file`: the digests of a
/// plan file (`deploy --plan`), checked again under the lock; such a run is never retried
/// with other options.
pub(super) fn run_prepared(
    ctx: &Ctx,
    mode: Mode,
    goal: Goal<'_>,
    flags: &PlanFlags,
    exec: &ExecFlags,
    mut p: Prepared,
    plan_file: Option<git_migrate_core::planfile::Expected>,
) -> Result<(), CommandError> {
    if nothing_to_do(ctx, mode, &p) {
        return Ok(());
    }
    // With --json, one document: the plan for a dry run, the result after running
    // (docs/json.md).
    if !ctx.json || exec.dry_run {
        print_plan(ctx, &p, flags.sql);
    }
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
    confirm(ctx, exec, &p)?;
    let started = Instant::now();
    let may_retry = plan_file.is_none();
    let mut options = exec_options(ctx, mode, flags, exec, &mut p)?;
    options.plan_file = plan_file;
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
    let lock_retries = std::cell::Cell::new(0u32);
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
        Event::LockRetry {
            retry,
            retries,
            wait,
            failure,
        } => {
            lock_retries.set(retry);
            ui.warn(&format!(
                "{} migration {} waited longer than the lock timeout ({}) for a lock; the deployment was rolled back",
                failure.direction,
                failure.label,
                options
                    .statement_lock_timeout
                    .map(|t| format!("{}ms", t.as_millis()))
                    .unwrap_or_else(|| "the server's".into()),
            ));
            for b in &failure.blockers {
                ui.warn(&format!("blocked by {b}"));
            }
            ui.warn(&format!(
                "retry {retry} of {retries} in {}s…",
                wait.as_secs()
            ));
        }
    };
    let ledger = ctx.ledger();
    // A second connection holds the lock while no-transaction migrations run.
    let connect = || ctx.connect().map(|(_, c)| c).map_err(|e| e.message);
    // And another one, from a thread, names the sessions that block a migration.
    let observe_target = ctx
        .db_target()
        .ok()
        .map(|t| t.resolve(git_migrate_core::db::LibpqEnv::from_process()).0);
    let observe = move || match &observe_target {
        Some(t) => t.connect().map_err(|e| e.to_string()),
        None => Err("no database".to_string()),
    };
    let extras = execute::Extras {
        texts: Some(std::mem::take(&mut p.texts)),
        connect: Some(&connect),
        observe: Some(&observe),
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
            let all = after_failure(ctx, goal, flags, &mut p, &options, started, e, may_retry)?;
            return run_mutation(ctx, mode, goal, &all, exec);
        }
    };
    report(ctx, mode, &outcome, started, lock_retries.get());
    Ok(())
}

/// When there is nothing to do: says so (or prints the plan document) and returns true.
fn nothing_to_do(ctx: &Ctx, mode: Mode, p: &Prepared) -> bool {
    if mode == Mode::Apply && p.confirmed.plan.is_noop() {
        if ctx.json {
            ctx.ui.out(&plan_json(p, false));
        } else {
            ctx.ui.out("Nothing to apply.");
            warn_files(ctx, p);
        }
        return true;
    }
    let already_there = p.confirmed.plan.already_there() && p.adoption.is_none();
    if already_there {
        if ctx.json {
            ctx.ui.out(&plan_json(p, false));
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
            warn_files(ctx, p);
        }
        return true;
    }
    false
}

/// Asks before a change to an environment that wants every change confirmed, and before any
/// revert, unless `--yes`; refuses without a terminal.
fn confirm(ctx: &Ctx, exec: &ExecFlags, p: &Prepared) -> Result<(), CommandError> {
    if ctx.fleet_child.as_ref().is_some_and(|c| c.confirmed) {
        // The fleet's rollout was confirmed once, on the terminal of the parent.
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
    Ok(())
}

/// The executor's options for this run.
fn exec_options(
    ctx: &Ctx,
    mode: Mode,
    flags: &PlanFlags,
    exec: &ExecFlags,
    p: &mut Prepared,
) -> Result<ExecOptions, CommandError> {
    let prelude = if exec.no_prelude {
        None
    } else {
        exec.prelude_sql
            .clone()
            .or_else(|| ctx.config.prelude_sql.clone())
            .or_else(|| Some(git_migrate_core::project::DEFAULT_PRELUDE.to_string()))
    };
    Ok(ExecOptions {
        lock_timeout: Duration::from_secs(exec.lock_timeout),
        // The flag, else policy.statement_lock_timeout (default 5 s); `off` or 0: none.
        statement_lock_timeout: match exec.statement_lock_timeout {
            Some(w) => w.0,
            None => ctx.config.statement_lock_timeout,
        },
        lock_retries: exec.lock_retries.unwrap_or(ctx.config.lock_retries),
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
            true => Some(replay_target(ctx, flags, p)?),
            false => None,
        },
        plan_file: None,
    })
}

/// After a failed execution: records the failed attempt in the ledger (when it failed in a
/// migration, the metadata check or the end-state proof), and returns the error; or, with
/// `--compute-downs` when written downs were the cause, the flags for one more try with every
/// down computed (never when `may_retry` is false: a plan file runs as reviewed or not at all).
#[allow(clippy::too_many_arguments)]
fn after_failure(
    ctx: &Ctx,
    goal: Goal<'_>,
    flags: &PlanFlags,
    p: &mut Prepared,
    options: &ExecOptions,
    started: Instant,
    e: execute::ExecError,
    may_retry: bool,
) -> Result<PlanFlags, CommandError> {
    let ui = &ctx.ui;
    let ledger = ctx.ledger();
    let failed_here = matches!(
        e,
        execute::ExecError::Migration(_)
            | execute::ExecError::Inconsistent(_)
            | execute::ExecError::EndStateMismatch { .. }
    );
    // With --compute-downs, written downs that fail, or that do not end at the proven
    // schema, are replaced by computed ones: one more try, in a new transaction.
    let retry_computed = may_retry
        && p.options.compute_downs == ComputeDowns::Gaps
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
        return Ok(all);
    }
    Err(ce)
}

/// The one line (or document) that says what was done.
fn report(ctx: &Ctx, mode: Mode, outcome: &execute::Outcome, started: Instant, lock_retries: u32) {
    let secs = started.elapsed().as_secs_f64();
    let at = outcome
        .plan
        .to_commit
        .as_deref()
        .map(|c| describe_commit(&ctx.repo, c))
        .unwrap_or_else(|| "the empty state".into());
    if ctx.json {
        let mut doc = json::DeployDoc::new(&outcome.plan, outcome.deployment_id, secs);
        doc.lock_retries = lock_retries;
        ctx.ui.out(&json::text(&doc));
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
        let retried = match lock_retries {
            0 => String::new(),
            1 => " (after 1 lock retry)".into(),
            n => format!(" (after {n} lock retries)"),
        };
        ctx.ui.out(&format!(
            "{verb} {at} in {secs:.2}s{retried}: {} reverted, {} applied{}.{id}",
            outcome.plan.reverted().len(),
            outcome.plan.applied().len(),
            if outcome.plan.metadata.is_some() {
                ", metadata updated"
            } else {
                ""
            },
        ));
    }
}

/// The revision as typed, for the ledger's `target_ref`.
pub(super) fn goal_ref(goal: Goal<'_>) -> Option<String> {
    match goal {
        Goal::Rev(r) | Goal::Select(r, _) => r.map(str::to_string),
        Goal::Empty => None,
    }
}
