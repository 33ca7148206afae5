//! `git migrate plan REV`: the plan to reach REV, changing nothing (with `--out FILE`, also
//! written as a plan file: `plan_file.rs`); and the plan's rendering, which `deploy`,
//! `rollback`, `apply` and `promote` show before they run it.

use super::error::CommandError;
use super::json;
use super::render::plan_lines;
use super::Ctx;
use git_migrate_core::execute::{self};
use git_migrate_core::plan::{Mode, Step};

use super::prepare::*;
use clap::Args;

/// Arguments of `plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Target revision (commit, tag, branch, HEAD~3).
    pub rev: Option<String>,
    /// Plan a rollback (reverting only) to REV; without REV, the undo of the last deploy.
    #[arg(long)]
    pub rollback: bool,
    /// Also write the plan to FILE for review: every statement it runs, the commits and the
    /// digests of the ledger, schema and metadata it was computed against. Run it with
    /// `git migrate deploy --plan FILE`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["staged", "worktree"])]
    pub out: Option<std::path::PathBuf>,
    /// Print the plan file FILE for review (no database needed); --json prints the checked
    /// document.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["rev", "rollback", "out", "down_from", "allow_empty_down", "allow_out_of_order", "accept_edited", "compute_downs", "staged", "worktree"])]
    pub show: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub forward: ForwardOnlyArgs,
}

/// The steps of the plan that run outside the deployment transaction (no-transaction
/// migrations).
fn outside_steps(p: &Prepared) -> impl Iterator<Item = &Step> {
    p.confirmed
        .plan
        .steps
        .iter()
        .zip(&p.texts)
        .filter(|(s, t)| execute::runs_outside(s, t))
        .map(|(s, _)| s)
}

/// Steps that run outside the deployment transaction, and the warning that goes with them.
pub(super) fn print_no_transaction(ctx: &Ctx, p: &Prepared) {
    let outside: Vec<&Step> = outside_steps(p).collect();
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

pub(super) fn print_plan(ctx: &Ctx, p: &Prepared, show_sql: bool) {
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
    let segmented = outside_steps(p).next().is_some();
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
pub(super) fn plan_notes(p: &Prepared) -> Vec<String> {
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

/// The plan as text, as `plan` prints it (without SQL, notes as `note:` lines): the summary a
/// plan file keeps for review.
pub(super) fn summary_lines(ctx: &Ctx, p: &Prepared) -> Vec<String> {
    let segmented = outside_steps(p).next().is_some();
    let mut lines = plan_lines(&ctx.repo, &p.confirmed.plan, false, segmented);
    lines.extend(plan_notes(p).into_iter().map(|n| format!("note: {n}")));
    lines
}

/// The file warnings of a plan that is not printed.
pub(super) fn warn_files(ctx: &Ctx, p: &Prepared) {
    for w in &p.file_warnings {
        ctx.ui.warn(w);
    }
}

/// The plan document of `--json` (docs/json.md, "`plan --json`, `deploy --dry-run --json`").
pub(super) fn plan_json(p: &Prepared, show_sql: bool) -> String {
    let no_transaction = outside_steps(p).map(Step::version).collect();
    let doc = json::PlanDoc::new(
        &p.confirmed.plan,
        json::PlanExtras {
            database: p.db.clone(),
            file_warnings: p.file_warnings.clone(),
            no_transaction,
            notes: plan_notes(p),
            adopt: p.adoption.as_ref().map(json::Adoption::new),
            show_sql,
        },
    );
    json::text(&doc)
}

/// `git migrate plan REV` (`--out FILE`: and write the plan file), or `plan --show FILE`.
pub(crate) fn cmd_plan(ctx: &Ctx, args: &PlanArgs) -> Result<(), CommandError> {
    if let Some(file) = &args.show {
        return super::plan_file::cmd_show(ctx, file);
    }
    let mode = match args.rollback {
        true => Mode::Rollback,
        false => Mode::Deploy,
    };
    let flags = PlanFlags {
        forward: args.forward,
        ..args.flags.clone()
    };
    let mut p = prepare(ctx, mode, Goal::Rev(args.rev.as_deref()), &flags)?;
    print_plan(ctx, &p, flags.sql);
    if let Some(out) = &args.out {
        let summary = summary_lines(ctx, &p);
        super::plan_file::write(ctx, &mut p, args.rev.as_deref(), &flags, summary, out)?;
    }
    Ok(())
}
