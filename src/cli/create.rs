//! `git migrate create NAME`: a new migration folder `<ms>_<name>/` in the working tree, like
//! `hasura migrate create` (the logic is in [`git_migrate_core::authoring::create`]).

use super::authoring::{join, validate_name, work_project};
use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;
use git_migrate_core::authoring::create::{apply_create, plan_create, CreateOptions};
use std::path::PathBuf;

/// Arguments of `create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Migration name (the folder is <version>_<name>).
    pub name: String,
    /// SQL for up.sql.
    #[arg(
        long,
        value_name = "SQL",
        conflicts_with = "sql_from_file",
        allow_hyphen_values = true
    )]
    pub up_sql: Option<String>,
    /// SQL for down.sql: the statements that undo the up.
    #[arg(long, value_name = "SQL", allow_hyphen_values = true)]
    pub down_sql: Option<String>,
    /// Copy up.sql from this file.
    #[arg(long, value_name = "FILE")]
    pub sql_from_file: Option<PathBuf>,
    /// Create the migration even though its down.sql is empty (it then cannot be rolled back).
    #[arg(long)]
    pub allow_empty_down: bool,
    /// Version to use instead of the current time in milliseconds.
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(i64).range(0..))]
    pub version: Option<i64>,
    /// Write the drift as the migration: up brings the schema of the commit the database was
    /// last deployed to to the live schema, down brings it back.
    #[arg(long, conflicts_with_all = ["up_sql", "down_sql", "sql_from_file", "from", "allow_empty_down"])]
    pub from_live: bool,
    /// Write the difference between two states as the migration, from this one (a revision or
    /// `live`) ...
    #[arg(long, value_name = "REV", conflicts_with_all = ["up_sql", "down_sql", "sql_from_file", "allow_empty_down"])]
    pub from: Option<String>,
    /// ... to this one (a revision or `live`; default live).
    #[arg(long, value_name = "REV", requires = "from")]
    pub to: Option<String>,
    /// With --from-live or --from: show the files (and prove them) without writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// With --from-live: also export the live metadata into the metadata folder.
    #[arg(long, requires = "from_live")]
    pub metadata: bool,
    /// With --from-live or --from: the server for the scratch databases that replay revisions
    /// and prove the migration, instead of a throwaway cluster. Also $GIT_MIGRATE_SCRATCH_URL.
    #[arg(long, value_name = "URL", env = "GIT_MIGRATE_SCRATCH_URL")]
    pub scratch_url: Option<String>,
    /// With --from-live or --from: SQL run in each scratch database before the migrations
    /// (default: `prelude_sql` of git-migrate.yaml, else `CREATE EXTENSION IF NOT EXISTS
    /// pgcrypto;`).
    #[arg(long, value_name = "SQL")]
    pub prelude_sql: Option<String>,
}

/// `git migrate create`.
pub(crate) fn cmd_create(ctx: &Ctx, args: &CreateArgs) -> Result<(), CommandError> {
    validate_name("migration name", &args.name)?;
    if args.from_live || args.from.is_some() {
        let drift = super::drift::DriftArgs {
            name: &args.name,
            from_live: args.from_live,
            from: args.from.as_deref(),
            to: args.to.as_deref(),
            dry_run: args.dry_run,
            metadata: args.metadata,
            scratch_url: args.scratch_url.as_deref(),
            version: args.version,
            prelude_sql: args.prelude_sql.as_deref(),
        };
        return super::drift::cmd_create_from(ctx, &drift);
    }
    if args.dry_run {
        return Err(CommandError::new(
            Kind::Usage,
            "--dry-run goes with --from-live or --from (a plain create shows nothing it could skip)",
        ));
    }
    let wp = work_project(ctx)?;
    let dir = wp.migrations_dir(ctx.database_name.as_deref());
    let up: Option<Vec<u8>> = match (&args.up_sql, &args.sql_from_file) {
        (Some(s), _) => Some(s.clone().into_bytes()),
        (None, Some(f)) => Some(std::fs::read(f).map_err(|e| {
            CommandError::new(
                Kind::Usage,
                format!("cannot read --sql-from-file {}", f.display()),
            )
            .cause(e.to_string())
        })?),
        (None, None) => None,
    };
    let opts = CreateOptions {
        name: &args.name,
        up,
        down: args.down_sql.as_deref(),
        allow_empty_down: args.allow_empty_down,
        version: args.version,
    };
    let plan = plan_create(&ctx.repo, &wp, &dir, opts)?;
    for w in &plan.warnings {
        ctx.ui.warn(w);
    }
    apply_create(&plan, &wp.root)?;
    let folder = &plan.folder;
    if ctx.json {
        let v = serde_json::json!({
            "version": plan.version,
            "name": args.name,
            "path": folder,
            "up": join(folder, "up.sql"),
            "down": join(folder, "down.sql"),
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!("Created {folder}/ (up.sql, down.sql)"));
    }
    for r in &plan.reminders {
        ctx.ui.warn(r);
    }
    Ok(())
}
