//! The command layer: argument parsing, one module per command, rendering, errors → exit codes.
//! Only this module prints.

mod adopt;
mod apply;
mod authoring;
mod check;
mod completions;
mod create;
mod delete;
mod demo;
mod deploy;
mod diff;
mod drift;
mod environments;
pub mod error;
mod fleet;
mod hooks;
mod json;
mod log;
mod metadata;
mod plan;
mod plan_file;
mod prepare;
mod promote;
mod render;
mod repair;
mod rollback;
mod seed;
mod squash;
mod status;
pub mod ui;
mod verify;

use clap::{Args, Parser, Subcommand};
use error::{CommandError, Kind};
use git_migrate_core::config::ToolConfig;
use git_migrate_core::db::DbTarget;
use git_migrate_core::ledger::Ledger;
use git_migrate_core::source::{Repo, Source};
use std::path::PathBuf;
use ui::Ui;

/// Version a PostgreSQL schema and its Hasura metadata by git commit.
///
/// Reads migrations and metadata straight from git objects, plans the difference with the
/// database, and applies it in one transaction.
///
/// Exit codes: 0 ok; 1 drift (status --exit-code); 2 usage or configuration error;
/// 3 plan refused; 4 database or git failure (nothing changed); 5 lock not acquired in time;
/// 130 interrupted (Ctrl-C; the transaction was rolled back).
#[derive(Parser, Debug)]
#[command(
    name = "git-migrate",
    bin_name = "git migrate",
    version,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Run as if started in PATH (like git -C).
    #[arg(short = 'C', global = true, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// Project folder (holding config.yaml) inside the repository; default: auto-detect.
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<String>,
    /// Database URL (postgresql://… or key=value). Default: $DATABASE_URL, then PG* variables.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Environment from git-migrate.yaml: its database_url, require_tag and promotion rules.
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
    /// Tool configuration file (default: git-migrate.yaml at the repository root).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The Hasura database whose migrations to use (config v3 `migrations/<NAME>/`; the key in
    /// Hasura's `cli_state`). Default: default.
    #[arg(long, global = true, value_name = "NAME")]
    pub database_name: Option<String>,
    /// One JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colours.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// Print less.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show which commit the database is at and how it differs from REV (default HEAD)
    Status(status::StatusArgs),
    /// Show the plan to reach REV without changing anything
    Plan(plan::PlanArgs),
    /// Move the database to REV (forward or backward) in one transaction
    Deploy(deploy::DeployArgs),
    /// Put the database back to REV by reverting only (no REV: undo the last deploy)
    Rollback(rollback::RollbackArgs),
    /// Show the deployment history
    Log(log::LogArgs),
    /// Show how the schema and metadata differ between two states (revisions, live, --worktree)
    Diff(diff::DiffArgs),
    /// The metadata alone: diff, apply, export, inconsistency, reload, clear
    #[command(subcommand)]
    Metadata(metadata::MetadataCommand),
    /// Apply or revert migrations with Hasura's flags (--up/--down N|all, --version V --type, --goto V)
    Apply(apply::ApplyArgs),
    /// Create a migration folder <ms>_<name>/ in the working tree (like `hasura migrate create`)
    Create(create::CreateArgs),
    /// Squash a range of migrations into one (like `hasura migrate squash`)
    Squash(squash::SquashArgs),
    /// Delete migrations from the working tree and/or the database state (like `hasura migrate delete`)
    Delete(delete::DeleteArgs),
    /// Seed data: apply seed files from a revision, or create one
    #[command(subcommand)]
    Seed(seed::SeedCommand),
    /// Deploy to environment TO exactly the commit environment FROM is at (release promotion)
    Promote(promote::PromoteArgs),
    /// Fix a dirty or modified ledger row: --done V, --undone V, --accept V
    Repair(repair::RepairArgs),
    /// Take over a database the Hasura CLI manages: ledger rows from its state, nothing executed
    Adopt(adopt::AdoptArgs),
    /// Check a range of commits, the index, or a push for migration mistakes (hooks, CI)
    Check(check::CheckArgs),
    /// Prove in a scratch database that each migration's down reverses its up
    Verify(verify::VerifyArgs),
    /// Install or remove git hooks that run `git migrate check`
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// A self-contained tour: sample repository + throwaway Postgres, deploy, rollback, status
    Demo(demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write every page with --out DIR
    Man(completions::ManArgs),
}

/// Where to read the target from.
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Read the project from the index instead of a commit.
    #[arg(long, conflicts_with = "worktree")]
    pub staged: bool,
    /// Read the project from the working tree (recorded as dirty in the ledger).
    #[arg(long)]
    pub worktree: bool,
}

impl SourceArgs {
    fn source(&self, rev: Option<&str>) -> Result<Source, CommandError> {
        if (self.staged || self.worktree) && rev.is_some() {
            return Err(CommandError::new(
                Kind::Usage,
                "give either a revision or --staged/--worktree, not both",
            ));
        }
        Ok(if self.staged {
            Source::Staged
        } else if self.worktree {
            Source::Worktree
        } else {
            Source::Rev(rev.unwrap_or("HEAD").to_string())
        })
    }
}

/// What every command needs: the repository, config, output, the database target.
pub(crate) struct Ctx {
    /// Output.
    pub ui: Ui,
    /// The repository.
    pub repo: Repo,
    /// Tool config.
    pub config: ToolConfig,
    /// Global flags.
    pub cli_project: Option<String>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `--database-name`.
    pub database_name: Option<String>,
    /// `--env`, checked against git-migrate.yaml.
    pub env: Option<git_migrate_core::config::Environment>,
    /// Who runs the command, for the ledger ([`git_migrate_core::source::Repo::identity`]).
    pub actor: String,
    /// Set when this process runs one database of a fleet's rollout (`fleet.rs`).
    pub fleet_child: Option<fleet::FleetChild>,
}

impl Ctx {
    /// The project folder override (`--project`, then git-migrate.yaml).
    pub(crate) fn project_dir(&self) -> Option<String> {
        self.cli_project
            .clone()
            .or_else(|| self.config.project.clone())
    }

    /// The ledger.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(&self.config.ledger_schema).with_database(self.repo.database())
    }

    /// The database to talk to: `--database-url` > `DATABASE_URL` > libpq variables.
    pub(crate) fn db_target(&self) -> Result<DbTarget, CommandError> {
        let t = if let Some(u) = self.database_url.as_ref().filter(|u| !u.trim().is_empty()) {
            DbTarget::from_url(u)
        } else if let Some(env) = &self.env {
            DbTarget::from_url(&env_url(env)?)
        } else if let Some(u) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            DbTarget::from_url(&u)
        } else if let Some(t) = DbTarget::from_pg_env(|k| std::env::var(k).ok()) {
            t
        } else {
            return Err(CommandError::new(Kind::Usage, "no database given")
                .hint("pass --database-url postgresql://user@host/db, or set DATABASE_URL or PGHOST/PGDATABASE"));
        };
        if let Some(p) = t.password() {
            ui::register_secret(p);
        }
        Ok(t)
    }

    /// The database of another environment (`promote`, `status --all-envs`).
    pub(crate) fn env_target(
        &self,
        env: &git_migrate_core::config::Environment,
    ) -> Result<DbTarget, CommandError> {
        let t = DbTarget::from_url(&env_url(env)?);
        if let Some(p) = t.password() {
            ui::register_secret(p);
        }
        Ok(t)
    }

    /// Connects, after applying the libpq environment (TLS defaults, `PGPASSWORD`,
    /// the password file; docs/connections.md).
    pub fn connect(&self) -> Result<(DbTarget, postgres::Client), CommandError> {
        self.connect_target(self.db_target()?)
    }

    /// Connects to another environment's database (`promote`, `status --all-envs`), the same
    /// way as [`Ctx::connect`].
    pub(crate) fn connect_env(
        &self,
        env: &git_migrate_core::config::Environment,
    ) -> Result<(DbTarget, postgres::Client), CommandError> {
        self.connect_target(self.env_target(env)?)
    }

    /// Connects to `target`, the same way as [`Ctx::connect`].
    pub(crate) fn connect_target(
        &self,
        target: DbTarget,
    ) -> Result<(DbTarget, postgres::Client), CommandError> {
        let (t, warnings) = target.resolve(git_migrate_core::db::LibpqEnv::from_process());
        if let Some(p) = t.password() {
            ui::register_secret(p);
        }
        for w in &warnings {
            self.ui.warn(w);
        }
        let c = t.connect().map_err(connect_error)?;
        Ok((t, c))
    }
}

/// A connection that failed, as an error: the driver's causes once each, and what to check.
pub(crate) fn connect_error(e: git_migrate_core::db::ConnectError) -> CommandError {
    let bad_url = e.is_configuration();
    let kind = if bad_url { Kind::Usage } else { Kind::Failure };
    let mut ce = CommandError::new(kind, e.to_string());
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let text = git_migrate_core::db::describe_pg_error_any(s);
        // postgres::Error's Display repeats its source's message: show it once.
        if !ce
            .causes
            .iter()
            .any(|c| c.contains(&text) || text.contains(c.as_str()))
        {
            ce.causes.push(text);
        }
        src = s.source();
    }
    ce.hints.push(if let Some(h) = e.hint() {
        h
    } else if bad_url {
        "use postgresql://user[:password]@host[:port]/dbname[?sslmode=...] or key=value pairs (host=... dbname=...)".into()
    } else {
        "check that the server is running and the URL, user and password are right".into()
    });
    ce
}

/// An environment's database URL, `${VAR}` expanded from the process environment.
fn env_url(env: &git_migrate_core::config::Environment) -> Result<String, CommandError> {
    use git_migrate_core::config::ExpandError;
    if env.is_fleet() {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "environment {} is a fleet of databases; this command runs on one database",
                env.name
            ),
        )
        .hint("pick one with --database-url, or use deploy, rollback, promote or status, which run over the whole fleet"));
    }
    match env.expanded_url(|k| std::env::var(k).ok()) {
        Ok(Some(u)) if !u.trim().is_empty() => Ok(u),
        Ok(_) => Err(CommandError::new(
            Kind::Usage,
            format!("environment {} has no database_url", env.name),
        )
        .hint(format!(
            "add `database_url: ${{{}_DATABASE_URL}}` under environments.{} in git-migrate.yaml, or pass --database-url",
            env.name.to_uppercase().replace(['-', '.'], "_"),
            env.name
        ))),
        Err(ExpandError::Missing(var)) => Err(CommandError::new(
            Kind::Usage,
            format!(
                "environment {}: database_url uses ${{{var}}}, which is not set",
                env.name
            ),
        )
        .hint(format!(
            "export {var}=postgresql://user@host/db (keep secrets out of git-migrate.yaml)"
        ))),
        Err(e) => Err(CommandError::new(
            Kind::Usage,
            format!("environment {}: database_url: {e}", env.name),
        )),
    }
}

/// The environment `--env NAME` names, or a usage error listing the known ones.
pub(crate) fn find_env(
    config: &ToolConfig,
    name: &str,
) -> Result<git_migrate_core::config::Environment, CommandError> {
    config.environment(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let e = CommandError::new(
            Kind::Usage,
            format!(
                "--env {name}: no such environment in {}",
                config
                    .origin
                    .as_deref()
                    .unwrap_or("git-migrate.yaml (there is none)")
            ),
        );
        if known.is_empty() {
            e.hint("define environments in git-migrate.yaml (see docs/promotion.md)")
        } else {
            e.hint(format!("environments here: {}", known.join(", ")))
        }
    })
}

fn run(cli: Cli, ui: Ui) -> Result<(), CommandError> {
    match &cli.command {
        Command::Demo(args) => return demo::cmd_demo(&ui, args, cli.database_url.as_deref()),
        // Neither needs a repository: they describe the tool itself.
        Command::Completions(args) => return completions::cmd_completions(args),
        Command::Man(args) => return completions::cmd_man(args),
        _ => {}
    }
    if let Some(u) = &cli.database_url {
        if let Some(p) = DbTarget::from_url(u).password() {
            ui::register_secret(p);
        }
    }
    let mut repo = match &cli.dir {
        Some(dir) => Repo::open(dir)?,
        None => Repo::open_from_env()?,
    };
    let config = ToolConfig::load(repo.git(), cli.config.as_deref())?;
    let actor = repo.identity();
    if let Some(name) = &cli.database_name {
        // Only the spelling is checked here. Whether the database exists is a fact of the
        // revision read: every read of a project checks it there (source::Repo::locate_project),
        // so that an old tag can be deployed after HEAD moved on, and a refusal names the
        // revision.
        authoring::validate_name("--database-name", name)?;
        repo.set_database(name);
        // Writing the first migration or seed of a new database is how it starts existing.
        if matches!(
            cli.command,
            Command::Create(_) | Command::Seed(seed::SeedCommand::Create(_))
        ) {
            repo.allow_new_database();
        }
    }
    let env = match &cli.env {
        Some(name) => Some(find_env(&config, name)?),
        None => None,
    };
    // A child of a fleet's rollout: its database, and a JSON document for the parent to read.
    let fleet_child = fleet::FleetChild::from_env();
    if let Some(child) = &fleet_child {
        if let Some(p) = DbTarget::from_url(&child.url).password() {
            ui::register_secret(p);
        }
    }
    let ctx = Ctx {
        database_url: fleet_child
            .as_ref()
            .map(|c| c.url.clone())
            .or_else(|| cli.database_url.clone()),
        json: cli.json || fleet_child.is_some(),
        fleet_child,
        env,
        actor,
        ui,
        repo,
        config,
        cli_project: cli.project.clone(),
        database_name: cli.database_name.clone(),
    };
    match &cli.command {
        Command::Status(a) => status::cmd_status(&ctx, a),
        Command::Plan(a) => plan::cmd_plan(&ctx, a),
        Command::Deploy(a) => deploy::cmd_deploy(&ctx, a),
        Command::Rollback(a) => rollback::cmd_rollback(&ctx, a),
        Command::Log(a) => log::cmd_log(&ctx, a),
        Command::Diff(a) => diff::cmd_diff(&ctx, a),
        Command::Metadata(c) => metadata::cmd_metadata(&ctx, c),
        Command::Apply(a) => apply::cmd_apply(&ctx, a),
        Command::Create(a) => create::cmd_create(&ctx, a),
        Command::Squash(a) => squash::cmd_squash(&ctx, a),
        Command::Delete(a) => delete::cmd_delete(&ctx, a),
        Command::Seed(c) => seed::cmd_seed(&ctx, c),
        Command::Adopt(a) => adopt::cmd_adopt(&ctx, a),
        Command::Promote(a) => promote::cmd_promote(&ctx, a),
        Command::Repair(a) => repair::cmd_repair(&ctx, a),
        Command::Check(a) => check::cmd_check(&ctx, a),
        Command::Verify(a) => verify::cmd_verify(&ctx, a),
        Command::Hooks(c) => hooks::cmd_hooks(&ctx, c),
        Command::Demo(_) | Command::Completions(_) | Command::Man(_) => {
            unreachable!("handled above")
        }
    }
}

/// The command-line definition (for completions, man pages and the tests that snapshot every
/// command's `--help`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses arguments, runs the command, maps the result to an exit code.
pub fn main() -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: internal error (a bug in git-migrate): {}",
            ui::scrub(&info.to_string())
        );
    }));
    let cli = Cli::parse();
    let ui = Ui::new(&cli.color, cli.quiet, cli.verbose);
    // A fleet's child answers its parent in JSON, errors included.
    let json = cli.json || fleet::FleetChild::from_env().is_some();
    let result = run(cli, ui.clone());
    // What reading files from history found and no command showed yet (duplicate YAML keys).
    for w in git_migrate_core::yaml::take_warnings() {
        ui.warn(&w);
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if json && e.kind != Kind::Findings && !e.document_printed {
                ui.out(&json::text(&json::ErrorDoc::new(&e)));
            }
            if e.kind != Kind::Findings || !e.message.is_empty() {
                ui.error(&e);
            }
            std::process::ExitCode::from(e.kind as u8)
        }
    }
}
