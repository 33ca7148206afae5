//! `seed apply` / `seed create`: Hasura's seeds (hasura-cli.md §5.7), read from git. What they
//! do, and why, is in [`git_migrate_core::seed`]; here are their arguments and output.

use super::authoring::{validate_name, work_project};
use super::error::{CommandError, Kind};
use super::{Ctx, SourceArgs};
use clap::{Args, Subcommand};
use git_migrate_core::seed::{
    apply_seed_create, apply_seeds, dump_tables, plan_seed_apply, plan_seed_create, seed_template,
    seeds_dir, SeedError,
};
use std::path::PathBuf;

/// `seed` subcommands.
#[derive(Subcommand, Debug)]
pub enum SeedCommand {
    /// Run seed files from the revision in one transaction
    Apply(SeedApplyArgs),
    /// Write a new seed file
    Create(SeedCreateArgs),
}

/// Arguments of `seed apply`.
#[derive(Args, Debug)]
pub struct SeedApplyArgs {
    /// Revision to read the seed files from (default HEAD).
    pub rev: Option<String>,
    /// A seed file to run, relative to the seeds folder (repeatable; default: every .sql file,
    /// in name order).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,
    /// List the files that would run and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `seed create`.
#[derive(Args, Debug)]
pub struct SeedCreateArgs {
    /// Seed name (the file is <ms>_<name>.sql).
    pub name: String,
    /// Fill the file with the rows of this table (schema.table or table; names are taken
    /// literally, as Hasura quotes them), as INSERT statements (repeatable).
    #[arg(long = "from-table", value_name = "TABLE")]
    pub from_tables: Vec<String>,
    /// The file's SQL.
    #[arg(long, value_name = "SQL", conflicts_with_all = ["from_tables", "sql_from_file"], allow_hyphen_values = true)]
    pub sql: Option<String>,
    /// Copy the file's SQL from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "from_tables")]
    pub sql_from_file: Option<PathBuf>,
}

/// `git migrate seed …`.
pub(crate) fn cmd_seed(ctx: &Ctx, cmd: &SeedCommand) -> Result<(), CommandError> {
    match cmd {
        SeedCommand::Apply(a) => cmd_seed_apply(ctx, a),
        SeedCommand::Create(a) => cmd_seed_create(ctx, a),
    }
}

/// `git migrate seed apply`.
fn cmd_seed_apply(ctx: &Ctx, args: &SeedApplyArgs) -> Result<(), CommandError> {
    let source = args.source.source(args.rev.as_deref())?;
    let tree = ctx.repo.tree(&source)?;
    let location = ctx
        .repo
        .locate_project(&tree, ctx.project_dir().as_deref())?;
    let dir = seeds_dir(&location, ctx.database_name.as_deref());
    let plan = plan_seed_apply(&ctx.repo, &source, &tree, &location, &dir, &args.files)?;
    for n in &plan.notes {
        ctx.ui.info(n);
    }
    let at = &plan.at;
    let names: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
    if args.dry_run {
        if ctx.json {
            let v = serde_json::json!({"source": at, "files": names, "dry_run": true});
            ctx.ui
                .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            ctx.ui.out(&format!(
                "Would run {} seed file(s) from {at} in one transaction:",
                names.len()
            ));
            for n in &names {
                ctx.ui.out(&format!("  {n}"));
            }
            ctx.ui.info("dry run: nothing was changed");
        }
        return Ok(());
    }

    let (target, mut client) = ctx.connect()?;
    let started = std::time::Instant::now();
    apply_seeds(&plan, &mut client, &mut |path| {
        if ctx.ui.verbose > 0 && !ctx.json {
            ctx.ui.info(&format!("running {path}"));
        }
    })?;
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        let v = serde_json::json!({
            "source": at,
            "commit": plan.commit,
            "files": names,
            "database": target.redacted(),
            "seconds": secs,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!(
            "Applied {} seed file(s) from {at} in one transaction in {secs:.2}s:",
            names.len()
        ));
        for n in &names {
            ctx.ui.out(&format!("  {n}"));
        }
    }
    Ok(())
}

/// `git migrate seed create`.
fn cmd_seed_create(ctx: &Ctx, args: &SeedCreateArgs) -> Result<(), CommandError> {
    validate_name("seed name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = seeds_dir(&wp.location, ctx.database_name.as_deref());
    let mut tables = Vec::new();
    let content = if !args.from_tables.is_empty() {
        let (_, mut client) = ctx.connect()?;
        let (sql, t) = dump_tables(&mut client, &args.from_tables)?;
        tables = t;
        sql
    } else if let Some(s) = &args.sql {
        s.clone()
    } else if let Some(f) = &args.sql_from_file {
        let bytes = std::fs::read(f).map_err(|e| {
            CommandError::new(
                Kind::Usage,
                format!("cannot read --sql-from-file {}", f.display()),
            )
            .cause(e.to_string())
        })?;
        String::from_utf8(bytes).map_err(|e| {
            CommandError::new(Kind::Usage, "the seed SQL is not valid UTF-8").cause(e.to_string())
        })?
    } else {
        seed_template(&dir)
    };
    let plan = plan_seed_create(&wp.root, &dir, &args.name, content);
    apply_seed_create(&plan, &wp.root)?;
    let path = &plan.path;
    if ctx.json {
        let v = serde_json::json!({
            "path": path,
            "version": plan.version,
            "name": args.name,
            "tables": tables.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect::<Vec<_>>(),
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!("Created {path}"));
        for (t, n) in &tables {
            ctx.ui.out(&format!("  {t}: {n} row(s)"));
        }
        if args.from_tables.is_empty() && args.sql.is_none() && args.sql_from_file.is_none() {
            ctx.ui
                .info("the file holds only comments: write its INSERT statements, then commit it");
        }
    }
    Ok(())
}

const FROM_REV_HINT: &str = "seeds are read from HEAD; pass --worktree for files not committed yet";

impl From<SeedError> for CommandError {
    fn from(e: SeedError) -> Self {
        let message = e.to_string();
        let new = |kind| CommandError::new(kind, message.clone());
        match e {
            SeedError::Source(s) => s.into(),
            SeedError::NotSql { .. }
            | SeedError::BadTableName { .. }
            | SeedError::NotATable { .. } => new(Kind::Usage),
            SeedError::NoSuchFile {
                dir,
                at,
                names,
                from_rev,
                ..
            } => {
                let mut ce = new(Kind::Usage);
                ce = if names.is_empty() {
                    ce.hint(format!("{dir}/ holds no .sql files at {at}"))
                } else {
                    ce.hint(format!("seed files there: {}", names.join(", ")))
                };
                if from_rev {
                    ce = ce.hint(FROM_REV_HINT);
                }
                ce
            }
            SeedError::NoFiles { from_rev, .. } => {
                let mut ce = new(Kind::Usage);
                if from_rev {
                    ce = ce.hint(FROM_REV_HINT);
                }
                ce.hint("create one with `git migrate seed create <name>`")
            }
            SeedError::NotUtf8 { source, .. } => new(Kind::Usage)
                .cause(source.to_string())
                .hint("SQL files must be UTF-8"),
            SeedError::Forbidden { text, .. } => new(Kind::Usage)
                .cause(format!("  | {text}"))
                .hint("git-migrate runs all seeds in one transaction: remove the BEGIN/COMMIT/ROLLBACK (a single BEGIN … COMMIT around the whole file is accepted)")
                .hint("write rows as INSERT statements instead of COPY … FROM stdin (`git migrate seed create --from-table` does)"),
            SeedError::Db { .. } => new(Kind::Failure),
            SeedError::CommitUncertain(_) => new(Kind::Failure)
                .hint("look at the seeded tables before running the seeds again"),
            SeedError::Failed(f) => failed(new(Kind::Failure), *f),
            SeedError::NoSuchTable { .. } => new(Kind::Usage)
                .hint("write schema.table; names are case-sensitive, as in Hasura"),
            SeedError::Io { source, .. } => new(Kind::Failure).cause(source.to_string()),
        }
    }
}

/// The causes of a failed seed file: where, what the server said, and the line.
fn failed(mut ce: CommandError, f: git_migrate_core::seed::SeedFailure) -> CommandError {
    let e = match f.error {
        Ok(e) => e,
        Err(other) => return ce.cause(other),
    };
    let loc = match e.position {
        Some((l, c)) => format!("{}:{l}:{c}", f.path),
        None => f.path.clone(),
    };
    ce = ce.cause(format!(
        "{loc} @ {}: {} (SQLSTATE {})",
        f.at, e.message, e.code
    ));
    if let (Some((_, c)), Some(line)) = (e.position, &e.line_text) {
        ce = ce
            .cause(format!("  | {line}"))
            .cause(format!("  | {}^", " ".repeat(c.saturating_sub(1))));
    }
    if let Some(n) = e.statement {
        ce = ce.cause(format!("failing statement: #{n} of the file"));
    }
    if let Some(d) = e.detail {
        ce = ce.cause(format!("detail: {d}"));
    }
    if let Some(h) = e.hint {
        ce = ce.cause(format!("server hint: {h}"));
    }
    if let Some(w) = e.context {
        ce = ce.cause(format!("context: {w}"));
    }
    ce.hint("fix the seed file (and commit it), then run `git migrate seed apply` again")
}
