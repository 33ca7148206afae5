//! `git migrate diff [FROM] [TO]`: how the schema (and the metadata) differ between two
//! states, each a revision, `live` (the database) or the working tree (issue 15).
//!
//! A revision's schema is the one a fresh deploy of it gives: its migrations replayed in a
//! scratch database, kept as a template for the next run
//! ([`git_migrate_core::verify::template`]). The live schema is read from the database. The
//! statements come from the schema differ ([`git_migrate_core::schema::diff`]).

use super::error::{CommandError, Kind};
use super::json;
use super::metadata::{live_snapshot, snapshot_of, snapshots_of_revisions};
use super::render::label;
use super::Ctx;
use clap::Args;
use git_migrate_core::metadata::MetadataChange;
use git_migrate_core::schema::{Model, Statement};
use git_migrate_core::source::{Project, Source};
use git_migrate_core::verify::replay::ReplayStep;
use git_migrate_core::verify::template;
use git_migrate_core::verify::ScratchServer;

/// Arguments of `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The state to compare from: a revision, or `live` (the database). Default: live.
    pub from: Option<String>,
    /// The state to compare to: a revision, or `live`. Default: HEAD. With one state given,
    /// it is TO and FROM is live.
    pub to: Option<String>,
    /// The working tree as the last state: `diff --worktree` compares live with it,
    /// `diff REV --worktree` compares REV with it.
    #[arg(long)]
    pub worktree: bool,
    /// Compare the schema (the default; `--metadata-only` leaves it out).
    #[arg(long, conflicts_with = "metadata_only")]
    pub schema: bool,
    /// Leave the metadata out.
    #[arg(long, conflicts_with = "metadata_only")]
    pub schema_only: bool,
    /// Leave the schema out (the same as `git migrate metadata diff`).
    #[arg(long)]
    pub metadata_only: bool,
    /// Server for the scratch databases that replay a revision's migrations (and keep each
    /// replay as a template database for the next run) instead of a throwaway cluster. Also
    /// $GIT_MIGRATE_SCRATCH_URL.
    #[arg(long, value_name = "URL", env = "GIT_MIGRATE_SCRATCH_URL")]
    pub scratch_url: Option<String>,
    /// SQL run in each scratch database before the migrations (default: `prelude_sql` of
    /// git-migrate.yaml, else `CREATE EXTENSION IF NOT EXISTS pgcrypto;`): the extensions a
    /// platform provides, say.
    #[arg(long, value_name = "SQL")]
    pub prelude_sql: Option<String>,
}

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Side {
    /// The database.
    Live,
    /// A revision.
    Rev(String),
    /// The working tree.
    Worktree,
}

impl Side {
    /// `live` names the database; anything else is a revision.
    pub(crate) fn parse(token: &str) -> Side {
        if token == "live" {
            Side::Live
        } else {
            Side::Rev(token.to_string())
        }
    }
}

/// The two sides `args` name: a missing FROM is live, a missing TO is HEAD.
fn sides(args: &DiffArgs) -> Result<(Side, Side), CommandError> {
    let mut given: Vec<Side> = [&args.from, &args.to]
        .into_iter()
        .flatten()
        .map(|t| Side::parse(t))
        .collect();
    if args.worktree {
        if given.len() == 2 {
            return Err(CommandError::new(
                Kind::Usage,
                "give at most one state with --worktree (it is the other one)",
            ));
        }
        given.push(Side::Worktree);
    }
    Ok(match given.len() {
        0 => (Side::Live, Side::Rev("HEAD".into())),
        1 => (Side::Live, given.remove(0)),
        _ => {
            let to = given.remove(1);
            (given.remove(0), to)
        }
    })
}

/// A side read: how it is named, and its project (not for live).
pub(crate) struct State {
    pub side: Side,
    pub label: String,
    pub project: Option<Project>,
    /// The project's migrations as a replay runs them, once read.
    steps: Option<Vec<ReplayStep>>,
}

impl State {
    /// The project's migrations as a replay runs them (read once); `None` for live.
    pub(crate) fn steps(&mut self, ctx: &Ctx) -> Result<Option<&[ReplayStep]>, CommandError> {
        let Some(project) = self.project.as_mut() else {
            return Ok(None);
        };
        if self.steps.is_none() {
            self.steps = Some(super::verify::replay_steps(ctx, project)?);
        }
        Ok(self.steps.as_deref())
    }
}

/// Reads a side's project (none for live).
pub(crate) fn state(ctx: &Ctx, side: Side) -> Result<State, CommandError> {
    let source = match &side {
        Side::Live => {
            return Ok(State {
                side,
                label: "live".into(),
                project: None,
                steps: None,
            })
        }
        Side::Rev(r) => Source::Rev(r.clone()),
        Side::Worktree => Source::Worktree,
    };
    let project = ctx.repo.project(&source, ctx.project_dir().as_deref())?;
    let label = match (&side, project.commit_hex()) {
        (Side::Rev(r), Some(c)) if *r == c => super::render::describe_commit(&ctx.repo, &c),
        (Side::Rev(r), Some(c)) => label(&ctx.repo, r, &c),
        _ => "the working tree".to_string(),
    };
    Ok(State {
        side,
        label,
        project: Some(project),
        steps: None,
    })
}

/// The schemas the ledger and Hasura's catalog live in: never part of a user's schema.
pub(crate) fn excluded_schemas(ctx: &Ctx) -> Vec<String> {
    vec![ctx.config.ledger_schema.clone(), "hdb_catalog".into()]
}

/// Reads schema models: the database's, and revisions' replayed on one scratch server.
pub(crate) struct Schemas<'c> {
    ctx: &'c Ctx,
    scratch: ScratchServer,
    /// Run in each scratch database before the migrations.
    pub prelude: String,
    live: Option<postgres::Client>,
}

impl<'c> Schemas<'c> {
    /// Replays on `scratch_url`'s server (else a throwaway cluster), after `prelude` (else the
    /// configured one).
    pub(crate) fn new(
        ctx: &'c Ctx,
        scratch_url: Option<&str>,
        prelude: Option<&str>,
    ) -> Schemas<'c> {
        Schemas {
            ctx,
            scratch: ScratchServer::new(scratch_url),
            prelude: prelude
                .map(str::to_string)
                .unwrap_or_else(|| super::verify::prelude(ctx)),
            live: None,
        }
    }

    /// The session on the database (opened on first use).
    pub(crate) fn live_client(&mut self) -> Result<&mut postgres::Client, CommandError> {
        if self.live.is_none() {
            self.live = Some(self.ctx.connect()?.1);
        }
        Ok(self.live.as_mut().expect("opened above"))
    }

    /// The schema of a side.
    pub(crate) fn model(&mut self, state: &mut State) -> Result<Model, CommandError> {
        let exclude = excluded_schemas(self.ctx);
        let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
        let Some(steps) = state.steps(self.ctx)? else {
            let client = self.live_client()?;
            return git_migrate_core::schema::read(client, &exclude).map_err(|e| {
                CommandError::new(Kind::Failure, format!("cannot read the live schema: {e}"))
            });
        };
        let steps = steps.to_vec();
        let prelude = self.prelude.clone();
        let mut dbs = self.scratch.databases()?;
        let started = std::time::Instant::now();
        let (model, from_template, replayed) =
            template::model_of(&mut dbs, Some(&prelude), &steps, &exclude).map_err(|e| {
                CommandError::new(
                    Kind::Failure,
                    format!("cannot replay the migrations of {}: {e}", state.label),
                )
                .hint(super::verify::SCRATCH_URL_HINT)
            })?;
        if !self.ctx.json {
            let how = match (from_template, replayed) {
                (_, 0) => "read from the kept template".to_string(),
                (0, n) => format!("{n} migration(s) replayed"),
                (k, n) => format!("{k} migration(s) from a kept template, {n} replayed"),
            };
            self.ctx.ui.info(&format!(
                "schema of {}: {how} in {:.1} s",
                state.label,
                started.elapsed().as_secs_f64()
            ));
        }
        Ok(model)
    }
}

/// Whether two project sides run the same ups after the same prelude (so leave the same schema
/// and need no replay to compare).
fn same_replay(
    ctx: &Ctx,
    prelude: &str,
    a: &mut State,
    b: &mut State,
) -> Result<bool, CommandError> {
    let (Some(sa), Some(sb)) = (a.steps(ctx)?, b.steps(ctx)?.map(<[ReplayStep]>::to_vec)) else {
        return Ok(false);
    };
    let ka = template::replay_key(Some(prelude), sa);
    Ok(ka.is_some() && ka == template::replay_key(Some(prelude), &sb))
}

/// The statements that turn `from` into `to`.
pub(crate) fn schema_statements(from: &Model, to: &Model) -> Result<Vec<Statement>, CommandError> {
    git_migrate_core::schema::diff(from, to).map_err(diff_error)
}

/// Why the differ could not compute a change, with what to do.
pub(crate) fn diff_error(e: git_migrate_core::schema::DiffError) -> CommandError {
    CommandError::new(Kind::Failure, e.to_string()).hint(
        "the objects named are outside the schema model: write that part of the change by hand (`git migrate diff --metadata-only` still compares the metadata)",
    )
}

/// The metadata changes from one side to the other.
fn metadata_changes(
    ctx: &Ctx,
    from: &mut State,
    to: &mut State,
) -> Result<Vec<MetadataChange>, CommandError> {
    let hint = "compare two revisions instead: git migrate diff REV1 REV2";
    let (old, new) = match (from.project.take(), to.project.take()) {
        (Some(pa), Some(pb)) => {
            if pa.metadata_tree.is_some() && pa.metadata_tree == pb.metadata_tree {
                return Ok(vec![]);
            }
            let ((old, _), (new, _)) =
                snapshots_of_revisions(ctx, (&from.label, pa), (&to.label, pb), false)?;
            (old, new)
        }
        (pa, pb) => {
            let side = |p: Option<Project>, label: &str| match p {
                Some(p) => snapshot_of(ctx, label, p).map(|(v, _)| v),
                None => live_snapshot(ctx, hint).map(|(_, v)| v),
            };
            (side(pa, &from.label)?, side(pb, &to.label)?)
        }
    };
    Ok(git_migrate_core::metadata::describe_changes(&old, &new))
}

/// `git migrate diff`.
pub(crate) fn cmd_diff(ctx: &Ctx, args: &DiffArgs) -> Result<(), CommandError> {
    let (from, to) = sides(args)?;
    let mut from = state(ctx, from)?;
    let mut to = state(ctx, to)?;
    let mut schemas = Schemas::new(
        ctx,
        args.scratch_url.as_deref(),
        args.prelude_sql.as_deref(),
    );
    let statements = if args.metadata_only {
        None
    } else if from.side == to.side || same_replay(ctx, &schemas.prelude, &mut from, &mut to)? {
        Some(vec![])
    } else {
        let a = schemas.model(&mut from)?;
        let b = schemas.model(&mut to)?;
        Some(schema_statements(&a, &b)?)
    };
    let (from_label, to_label) = (from.label.clone(), to.label.clone());
    let metadata = if args.schema_only {
        None
    } else {
        Some(metadata_changes(ctx, &mut from, &mut to)?)
    };
    let differs = statements.as_ref().is_some_and(|s| !s.is_empty())
        || metadata.as_ref().is_some_and(|m| !m.is_empty());
    if ctx.json {
        let doc = json::DiffDoc::new(&from_label, &to_label, statements.as_deref(), metadata);
        ctx.ui.out(&json::text(&doc));
    } else {
        ctx.ui.out(&super::render::diff_text(
            &from_label,
            &to_label,
            statements.as_deref(),
            metadata.as_deref(),
        ));
    }
    if differs {
        Err(CommandError::new(Kind::Findings, ""))
    } else {
        Ok(())
    }
}
