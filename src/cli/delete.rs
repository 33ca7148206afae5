//! `git migrate delete --version V`: removes migrations from the working tree and/or the
//! database state, like `hasura migrate delete` (see [`super::authoring`]).

use super::authoring::*;
use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;
use git_migrate_core::project::{Migration, Version};

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
    let dir = database_folder(
        &wp.location,
        &wp.location.config.migrations_directory,
        ctx.database_name.as_deref(),
    )?;
    let set = migrations_at(ctx, &wp.tree, &dir)?;
    let chosen: Vec<&Migration> = if args.all {
        set.iter().collect()
    } else {
        let mut out = Vec::new();
        for v in &args.versions {
            match set.get(*v) {
                Some(m) => out.push(m),
                None => {
                    return Err(CommandError::new(
                        Kind::Usage,
                        format!(
                        "there is no migration {v} in {dir}/ (working tree); nothing was deleted"
                    ),
                    )
                    .hint("to remove only the database's record of it, add --server"))
                }
            }
        }
        out
    };
    if chosen.is_empty() {
        ctx.ui
            .out(&format!("{dir}/ holds no migrations; nothing to delete."));
        return Ok(());
    }
    // A database that has them applied would revert them on its next deploy.
    if database_given(ctx) && !args.force {
        let (target, mut client) = ctx.connect().map_err(|e| {
            e.hint("pass --force to delete the files without checking the database")
        })?;
        let applied = read_applied(
            &mut client,
            &ctx.ledger(),
            &target.redacted(),
            wp.location.config.version,
            ctx.database_name.as_deref().unwrap_or("default"),
        )?;
        let on: Vec<String> = chosen
            .iter()
            .filter(|m| applied.has(m.version))
            .map(|m| m.label())
            .collect();
        if !on.is_empty() {
            let list: Vec<String> = chosen
                .iter()
                .filter(|m| applied.has(m.version))
                .map(|m| format!("--version {}", m.version))
                .collect();
            return Err(CommandError::new(
                Kind::Refused,
                format!(
                    "{} of the migrations to delete are applied in {}; nothing was deleted",
                    on.len(),
                    applied.db
                ),
            )
            .cause(format!("applied: {}", on.join(", ")))
            .cause("without their files, the next deploy there would revert them")
            .hint(format!(
                "to forget them in the database too (no SQL runs): git migrate delete --server {}",
                list.join(" ")
            ))
            .hint("or pass --force to delete the files anyway"));
        }
    }
    if args.all && !args.force {
        ctx.ui.confirm_or_refuse(
            &format!(
                "Delete all {} migrations in {dir}/ from the working tree?",
                chosen.len()
            ),
            &format!(
                "--all deletes {} migrations and there is no terminal to confirm it",
                chosen.len()
            ),
            "nothing was deleted",
            "pass --force to delete them without asking",
        )?;
    }
    let mut deleted = Vec::new();
    for m in &chosen {
        for p in migration_paths(m) {
            let abs = wp.root.join(&p);
            let r = if abs.is_dir() {
                std::fs::remove_dir_all(&abs)
            } else {
                std::fs::remove_file(&abs)
            };
            r.map_err(|e| io_error(format!("cannot delete {p}"), e))?;
            deleted.push(p);
        }
    }
    if ctx.json {
        let v = serde_json::json!({
            "deleted": chosen.iter().map(|m| m.version).collect::<Vec<_>>(),
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
    let database = ctx.database_name.as_deref().unwrap_or("default");
    if let Some(d) = &ctx.database_name {
        validate_name("database name", d)?;
    }
    // Which of Hasura's stores the project's CLI reads (config v2: schema_migrations, v3:
    // cli_state); without a readable project, assume config v2.
    let config_version = work_project(ctx)
        .map(|wp| wp.location.config.version)
        .unwrap_or(2);
    let (target, mut client) = ctx.connect()?;
    let name = target.redacted();
    let preview = read_applied(&mut client, &ledger, &name, config_version, database)?;
    let stores = preview.state.hasura_stores();
    if !preview.state.live.ledger_exists && !stores.schema_migrations && !stores.cli_state {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "{name} has no migration state (no {}.migrations, no Hasura state); nothing was changed",
                ledger.schema()
            ),
        ));
    }
    if args.all && !args.force {
        let n = preview.versions().len();
        ctx.ui.confirm_or_refuse(
            &format!("Remove all {n} versions from the migration state of {name}?"),
            &format!("--all --server forgets {n} applied versions and there is no terminal to confirm it"),
            "nothing was changed",
            "pass --force to do it without asking",
        )?;
    }
    let done = with_lock(&mut client, &ledger, |tx| {
        let applied = read_applied(tx, &ledger, &name, config_version, database)?;
        let recorded = applied.versions();
        let versions: Vec<Version> = if args.all {
            recorded.iter().copied().collect()
        } else {
            let missing: Vec<String> = args
                .versions
                .iter()
                .filter(|v| !recorded.contains(v))
                .map(|v| v.to_string())
                .collect();
            if !missing.is_empty() {
                return Err(CommandError::new(
                    Kind::Refused,
                    format!(
                        "{name} does not record {} as applied; nothing was changed",
                        missing.join(", ")
                    ),
                )
                .hint("`git migrate status --table` lists what the database records"));
            }
            let mut v = args.versions.clone();
            v.sort_unstable();
            v.dedup();
            v
        };
        if versions.is_empty() {
            return Ok(None);
        }
        let plan = serde_json::json!({"delete_state": versions, "executed": false});
        let id = write_state(
            tx,
            &ledger,
            &applied,
            &versions,
            None,
            "delete --server",
            plan,
            &ctx.actor,
        )?;
        Ok(Some((versions, id, applied.tables(&ledger))))
    })?;
    let Some((versions, id, tables)) = done else {
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
    if ctx.json {
        let v = serde_json::json!({
            "deleted": versions,
            "server": true,
            "target": name,
            "deployment_id": id,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!(
            "Removed {} version(s) from the migration state of {name} ({tables}): {}",
            versions.len(),
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
