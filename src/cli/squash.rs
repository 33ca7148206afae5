//! `git migrate squash --from V`: one migration with a correct combined down in place of a range,
//! like `hasura migrate squash`; with a database (or `--state-only`) the recorded state follows
//! (see [`git_migrate_core::authoring`] for why; the logic is in
//! [`git_migrate_core::authoring::squash`]).

use super::authoring::{
    database, database_given, migrations_at, validate_name, work_project, WorkProject,
};
use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;
use git_migrate_core::authoring::squash::{
    apply_squash, apply_squash_state_only, check_squash_state, plan_squash, plan_squash_state_only,
    trailer, SquashOptions, SquashPlan, SquashReport, StateOnlyOutcome,
};
use git_migrate_core::project::{MigrationSet, Version};

/// Arguments of `squash`.
#[derive(Args, Debug)]
pub struct SquashArgs {
    /// First version to squash.
    #[arg(long, value_name = "V")]
    pub from: Version,
    /// Last version to squash (default: the latest).
    #[arg(long, value_name = "V")]
    pub to: Option<Version>,
    /// Name of the squashed migration.
    #[arg(long, value_name = "NAME", default_value = "squashed")]
    pub name: String,
    /// Delete the source folders instead of moving them to squashed_<from>_to_<to>/.
    #[arg(long)]
    pub delete_source: bool,
    /// Squash even when some downs are missing or empty (the squashed down skips them).
    #[arg(long)]
    pub allow_empty_down: bool,
    /// Version of the squashed migration (default: the current time in milliseconds, or --to's
    /// version when newer migrations follow the range). Required with --state-only.
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(i64).range(0..))]
    pub version: Option<i64>,
    /// Write no files: record in the database (--database-url) that the squashed migration
    /// --version, already in the working tree, replaces the versions it was squashed from.
    #[arg(long, requires = "version")]
    pub state_only: bool,
    /// Print what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `git migrate squash`.
pub(crate) fn cmd_squash(ctx: &Ctx, args: &SquashArgs) -> Result<(), CommandError> {
    validate_name("migration name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = wp.migrations_dir(ctx.database_name.as_deref());
    let set = migrations_at(ctx, &wp, &dir)?;
    if args.state_only {
        return squash_state_only(ctx, args, &wp, &set);
    }
    let opts = SquashOptions {
        from: args.from,
        to: args.to,
        name: &args.name,
        version: args.version,
        allow_empty_down: args.allow_empty_down,
    };
    let mut plan = plan_squash(&wp.root, &dir, &set, &opts)?;
    for w in &plan.warnings {
        ctx.ui.warn(w);
    }

    // The database, when one is given: all of the range applied, or none.
    let ledger = ctx.ledger();
    let mut conn = None;
    if database_given(ctx) {
        let (target, mut client) = ctx.connect()?;
        let db = database(ctx, &ledger, target.redacted(), wp.location.config.version);
        check_squash_state(&mut plan, &mut client, &db)?;
        conn = Some((client, db));
    }
    if args.dry_run {
        show_squash_dry_run(ctx, args, &plan);
        return Ok(());
    }
    let report = apply_squash(
        &plan,
        &wp.root,
        args.delete_source,
        conn.as_mut().map(|(c, db)| (c, &*db)),
    )?;
    for w in &report.warnings {
        ctx.ui.warn(w);
    }
    show_squash(ctx, args, &plan, &report);
    Ok(())
}

fn show_squash_dry_run(ctx: &Ctx, args: &SquashArgs, plan: &SquashPlan) {
    let (first, to) = (plan.first, plan.to);
    ctx.ui.out(&format!(
        "Would squash {} migrations ({first}..{to}) into {}/",
        plan.versions.len(),
        plan.folder
    ));
    ctx.ui.out(&format!(
        "Would {} the source folders{}",
        if args.delete_source { "delete" } else { "move" },
        if args.delete_source {
            String::new()
        } else {
            format!(" to {}/", plan.sources_dir)
        }
    ));
    if let Some(state) = &plan.database {
        let name = &state.target;
        ctx.ui.out(&if state.all_applied {
            format!(
                "Would record {} as applied in {name} in place of the squashed versions (no SQL runs)",
                plan.version
            )
        } else {
            format!("{name} has none of them applied: nothing to record")
        });
    }
    ctx.ui.info("dry run: nothing was changed");
}

fn show_squash(ctx: &Ctx, args: &SquashArgs, plan: &SquashPlan, report: &SquashReport) {
    let (first, to, version) = (plan.first, plan.to, plan.version);
    let (folder, squashed_dir) = (&plan.folder, &plan.sources_dir);
    let trailer = trailer(&plan.versions);
    let state_cmd = format!(
        "git migrate squash --from {first} --to {to} --state-only --version {version}{} --database-url <url>",
        ctx.database_name
            .as_deref()
            .map(|d| format!(" --database-name {d}"))
            .unwrap_or_default()
    );
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "name": args.name,
            "path": folder,
            "squashed": plan.versions,
            "sources": if args.delete_source { serde_json::Value::Null } else { serde_json::Value::String(squashed_dir.clone()) },
            "database": match &plan.database {
                Some(state) if report.recorded => serde_json::json!({"target": state.target, "recorded": true, "deployment_id": report.deployment_id}),
                Some(state) => serde_json::json!({"target": state.target, "recorded": false}),
                None => serde_json::Value::Null,
            },
            "trailer": trailer,
            "state_only_command": state_cmd,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    ctx.ui.out(&format!(
        "Squashed {} migrations ({first}..{to}) into {folder}/",
        plan.versions.len()
    ));
    ctx.ui.out(&format!(
        "  up.sql runs their ups in order; down.sql runs their downs in reverse order{}",
        if version == to {
            format!(" (version {to} is kept because newer migrations follow the range)")
        } else {
            String::new()
        }
    ));
    if args.delete_source {
        ctx.ui.out("Deleted the source folders.");
    } else {
        ctx.ui.out(&format!(
            "Moved the source folders to {squashed_dir}/ (ignored by git-migrate and Hasura; delete it when you no longer need it)."
        ));
    }
    match &plan.database {
        Some(state) if report.recorded => ctx.ui.out(&format!(
            "{}: had all {} applied; the ledger now records {version} in their place (no SQL ran).",
            state.target,
            plan.versions.len()
        )),
        Some(state) => ctx.ui.out(&format!(
            "{}: none of them is applied there; nothing to record.",
            state.target
        )),
        None => ctx.ui.out(
            "No database given: only files were written (pass --database-url to also record the squash in a database that has them applied).",
        ),
    }
    ctx.ui.out("");
    ctx.ui.out("Next:");
    ctx.ui.out(&format!(
        "  1. Commit. `git migrate check` reports the removed versions as edited-migration; put this trailer in the commit message:\n       {trailer}"
    ));
    ctx.ui.out(&format!(
        "  2. Every other database that has {first}..{to} applied must record the squash before it deploys that commit\n     (otherwise the deploy reverts them and applies {version}):\n       {state_cmd}"
    ));
    if report.recorded {
        ctx.ui.out(
            "  Until the squash is committed, `status` against HEAD shows the squashed versions as pending: deploy the new commit, not the old HEAD.",
        );
    }
}

/// `squash --state-only`: the squashed migration is already in the working tree (committed,
/// pulled); record it in the database in place of the versions its `-- from` lines name.
fn squash_state_only(
    ctx: &Ctx,
    args: &SquashArgs,
    wp: &WorkProject,
    set: &MigrationSet,
) -> Result<(), CommandError> {
    let version = args
        .version
        .expect("clap requires --version with --state-only");
    if !database_given(ctx) {
        return Err(CommandError::new(
            Kind::Usage,
            "--state-only changes the database state, but no database is given",
        )
        .hint("pass --database-url postgresql://… (or set DATABASE_URL)"));
    }
    let plan = plan_squash_state_only(&wp.root, set, version, args.from, args.to)?;
    let ledger = ctx.ledger();
    let (target, mut client) = ctx.connect()?;
    let db = database(ctx, &ledger, target.redacted(), wp.location.config.version);
    let outcome = apply_squash_state_only(&plan, &mut client, &db)?;
    let name = &db.name;
    let versions = &plan.versions;
    let list = versions
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (first, last) = (versions[0], versions[versions.len() - 1]);
    let (recorded, id) = match outcome {
        StateOnlyOutcome::AlreadyDone | StateOnlyOutcome::NothingApplied if ctx.json => {
            (false, None)
        }
        StateOnlyOutcome::AlreadyDone => {
            ctx.ui.out(&format!(
                "{name} already records {} in place of {list}; nothing to do.",
                plan.label,
            ));
            (false, None)
        }
        StateOnlyOutcome::NothingApplied => {
            ctx.ui.out(&format!(
                "{name} has none of {list} applied; nothing to record (a deploy applies {} normally).",
                plan.label
            ));
            (false, None)
        }
        StateOnlyOutcome::Recorded(id) => {
            if !ctx.json {
                ctx.ui.out(&format!(
                    "{name}: recorded {} as applied in place of {} version(s) ({first}..{last}); no SQL ran.",
                    plan.label,
                    versions.len(),
                ));
            }
            (true, id)
        }
    };
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "squashed": versions,
            "target": name,
            "recorded": recorded,
            "deployment_id": id,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(())
}
