//! `git migrate delete --version V`: removes migrations from the working tree and/or the
//! database state, like `hasura migrate delete` (the logic is in
//! [`git_migrate_core::authoring::delete`]).

use super::authoring::{database, database_given, migrations_at, validate_name, work_project};
use super::error::CommandError;
use super::Ctx;
use clap::Args;
use git_migrate_core::authoring::delete::{
    apply_delete, apply_delete_server, check_delete_state, plan_delete, plan_delete_server,
};
use git_migrate_core::project::Version;

/// Arguments of `delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Version to delete (repeatable).
    #[arg(
        long = "version",
        value_name = "V",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub versions: Vec<Version>,
    /// Every migration.
    #[arg(long)]
    pub all: bool,
    /// Remove only the database state (the ledger row and Hasura's state); keep the files. No
    /// SQL runs.
    #[arg(long)]
    pub server: bool,
    /// Do not ask, and delete files even when the database has the migration applied.
    #[arg(long)]
    pub force: bool,
}

/// `git migrate delete`.
pub(crate) fn cmd_delete(ctx: &Ctx, args: &DeleteArgs) -> Result<(), CommandError> {
    if args.server {
        return delete_server(ctx, args);
    }
    let wp = work_project(ctx)?;
    let dir = wp.migrations_dir(ctx.database_name.as_deref());
    let set = migrations_at(ctx, &wp, &dir)?;
    let plan = plan_delete(&set, &dir, &args.versions, args.all)?;
    if plan.chosen.is_empty() {
        ctx.ui
            .out(&format!("{dir}/ holds no migrations; nothing to delete."));
        return Ok(());
    }
    // A database that has them applied would revert them on its next deploy.
    if database_given(ctx) && !args.force {
        let (target, mut client) = ctx.connect().map_err(|e| {
            e.hint("pass --force to delete the files without checking the database")
        })?;
        let ledger = ctx.ledger();
        let db = database(ctx, &ledger, target.redacted(), wp.location.config.version);
        check_delete_state(&plan, &mut client, &db)?;
    }
    if args.all && !args.force {
        let n = plan.chosen.len();
        ctx.ui.confirm_or_refuse(
            &format!("Delete all {n} migrations in {dir}/ from the working tree?"),
            &format!("--all deletes {n} migrations and there is no terminal to confirm it"),
            "nothing was deleted",
            "pass --force to delete them without asking",
        )?;
    }
    let deleted = apply_delete(&plan, &wp.root)?;
    if ctx.json {
        let v = serde_json::json!({
            "deleted": plan.chosen.iter().map(|m| m.version).collect::<Vec<_>>(),
            "paths": deleted,
            "server": false,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for p in &deleted {
            ctx.ui.out(&format!("Deleted {p}"));
        }
        ctx.ui.info(
            "the database state was not touched (add --server for that); committed files come back with `git restore`",
        );
    }
    Ok(())
}

/// `delete --server`: forget versions in the database state; keep the files; run nothing.
fn delete_server(ctx: &Ctx, args: &DeleteArgs) -> Result<(), CommandError> {
    let ledger = ctx.ledger();
    if let Some(d) = &ctx.database_name {
        validate_name("database name", d)?;
    }
    // Which of Hasura's stores the project's CLI reads (config v2: schema_migrations, v3:
    // cli_state); without a readable project, assume config v2.
    let config_version = work_project(ctx)
        .map(|wp| wp.location.config.version)
        .unwrap_or(2);
    let (target, mut client) = ctx.connect()?;
    let db = database(ctx, &ledger, target.redacted(), config_version);
    let name = &db.name;
    let plan = plan_delete_server(&mut client, &db, &args.versions, args.all)?;
    if args.all && !args.force {
        let n = plan.recorded;
        ctx.ui.confirm_or_refuse(
            &format!("Remove all {n} versions from the migration state of {name}?"),
            &format!("--all --server forgets {n} applied versions and there is no terminal to confirm it"),
            "nothing was changed",
            "pass --force to do it without asking",
        )?;
    }
    let Some(report) = apply_delete_server(&plan, &mut client, &db)? else {
        if ctx.json {
            let v = serde_json::json!({"deleted": [], "server": true, "target": name});
            ctx.ui
                .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            ctx.ui.out(&format!(
                "{name} records no applied versions; nothing to delete."
            ));
        }
        return Ok(());
    };
    let versions = &report.versions;
    if ctx.json {
        let v = serde_json::json!({
            "deleted": versions,
            "server": true,
            "target": name,
            "deployment_id": report.deployment_id,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!(
            "Removed {} version(s) from the migration state of {name} ({}): {}",
            versions.len(),
            report.tables,
            versions
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        ctx.ui.out(
            "No SQL ran: whatever those migrations created is still in the database, and the files are unchanged.",
        );
        ctx.ui
            .info("the next deploy of a commit that holds these migrations applies them again");
    }
    Ok(())
}
