//! `git migrate create NAME`: a new migration folder `<ms>_<name>/` in the working tree, like
//! `hasura migrate create` (see [`super::authoring`] for what the authoring commands share).

use super::authoring::*;
use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;
use git_migrate_core::project::sql::is_effectively_empty;
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
}

/// `git migrate create`.
pub(crate) fn cmd_create(ctx: &Ctx, args: &CreateArgs) -> Result<(), CommandError> {
    validate_name("migration name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = database_folder(
        &wp.location,
        &wp.location.config.migrations_directory,
        ctx.database_name.as_deref(),
    )?;
    let up: Vec<u8> = match (&args.up_sql, &args.sql_from_file) {
        (Some(s), _) => s.clone().into_bytes(),
        (None, Some(f)) => std::fs::read(f).map_err(|e| {
            CommandError::new(
                Kind::Usage,
                format!("cannot read --sql-from-file {}", f.display()),
            )
            .cause(e.to_string())
        })?,
        (None, None) => vec![],
    };
    let up_text = String::from_utf8(up).map_err(|e| {
        CommandError::new(Kind::Usage, "the up SQL is not valid UTF-8")
            .cause(e.to_string())
            .hint("SQL files must be UTF-8")
    })?;
    let up_given = args.up_sql.is_some() || args.sql_from_file.is_some();
    let down = args.down_sql.clone().unwrap_or_default();
    if is_effectively_empty(&down) && !args.allow_empty_down {
        let (message, cause) = if !up_given && args.down_sql.is_none() {
            (
                "no SQL given: refusing to create a migration with an empty up.sql and down.sql",
                "`hasura migrate create` writes two empty files here; an empty down.sql means the migration can never be rolled back",
            )
        } else if args.down_sql.is_none() {
            (
                "no --down-sql given: refusing to create a migration that cannot be rolled back",
                "an empty down.sql means `rollback` and `apply --down` refuse this migration",
            )
        } else {
            (
                "--down-sql is empty (only whitespace or comments): refusing to create a migration that cannot be rolled back",
                "a down.sql without statements cannot reverse anything",
            )
        };
        let mut e = CommandError::new(Kind::Usage, message)
            .cause(cause)
            .hint("pass --down-sql '<the statements that undo the up>', e.g. --down-sql 'DROP TABLE orders;'");
        if !up_given {
            e = e.hint("give the up SQL with --up-sql '<SQL>' or --sql-from-file <file>");
        }
        return Err(e.hint(
            "or pass --allow-empty-down to create it anyway (then write down.sql before committing)",
        ));
    }
    let set = migrations_at(ctx, &wp.tree, &dir)?;
    let max = set.iter().next_back().map(|m| m.version);
    let version = match args.version {
        Some(v) => {
            if let Some(m) = set.get(v) {
                return Err(CommandError::new(
                    Kind::Usage,
                    format!("version {v} is taken by {}", m.location),
                )
                .hint("leave out --version to use the current time"));
            }
            if let Some(max) = max.filter(|m| v <= *m) {
                ctx.ui.warn(&format!(
                    "version {v} is not above the highest existing version ({max}); `git migrate check` reports it as out-of-order"
                ));
            }
            v
        }
        None => next_version(max)?,
    };
    let folder = join(&dir, &format!("{version}_{}", args.name));
    if wp.root.join(&folder).exists() {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{folder}/ already exists"),
        ));
    }
    write_migration(&wp.root, &folder, up_text.as_bytes(), down.as_bytes())?;
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "name": args.name,
            "path": folder,
            "up": join(&folder, "up.sql"),
            "down": join(&folder, "down.sql"),
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!("Created {folder}/ (up.sql, down.sql)"));
    }
    if !up_given {
        ctx.ui.warn(
            "up.sql and down.sql are empty: write the SQL before committing (an empty up.sql applies as a no-op)",
        );
    } else if is_effectively_empty(&up_text) {
        ctx.ui.warn("up.sql holds no statements");
    }
    if is_effectively_empty(&down) && up_given {
        ctx.ui
            .warn("down.sql is empty: this migration cannot be rolled back until you write it");
    }
    Ok(())
}
