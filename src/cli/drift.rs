//! `git migrate create NAME --from-live` and `create NAME --from REV1 --to REV2` (issue 15):
//! a migration written from the schema difference between two states, proven up → down → up
//! in a scratch database (the texts come from [`git_migrate_core::authoring::drift`]).

use super::authoring::{join, work_project};
use super::diff::{diff_error, excluded_schemas, state, Schemas, Side, State};
use super::error::{CommandError, Kind};
use super::json;
use super::Ctx;
use git_migrate_core::authoring::create::{apply_create, plan_create, CreateOptions};
use git_migrate_core::authoring::drift::{drift_migration, DriftMigration};
use git_migrate_core::verify::round_trip::{round_trip, RoundTrip, Start};

/// What `create NAME --from-live` / `--from REV1 --to REV2` was asked for.
pub(crate) struct DriftArgs<'a> {
    /// The migration's name.
    pub name: &'a str,
    /// `--from-live`.
    pub from_live: bool,
    /// `--from`.
    pub from: Option<&'a str>,
    /// `--to`.
    pub to: Option<&'a str>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--metadata`.
    pub metadata: bool,
    /// `--scratch-url`.
    pub scratch_url: Option<&'a str>,
    /// `--version`.
    pub version: Option<i64>,
    /// `--prelude-sql`.
    pub prelude_sql: Option<&'a str>,
}

/// The two states: `--from-live` is the deployed commit and live.
fn sides(
    ctx: &Ctx,
    args: &DriftArgs<'_>,
    schemas: &mut Schemas<'_>,
) -> Result<(Side, Side), CommandError> {
    if !args.from_live {
        let from = Side::parse(args.from.unwrap_or("live"));
        let to = Side::parse(args.to.unwrap_or("live"));
        if from == to {
            return Err(CommandError::new(
                Kind::Usage,
                "--from and --to name the same state: there is nothing to write",
            ));
        }
        return Ok((from, to));
    }
    let client = schemas.live_client()?;
    let ledger_state = ctx.ledger().read(client)?;
    match ledger_state.live.deployed_commit {
        Some(commit) => Ok((Side::Rev(commit), Side::Live)),
        None => Err(CommandError::new(
            Kind::Usage,
            "--from-live needs the commit the database was deployed to, and git-migrate has recorded no deployment on it",
        )
        .hint("name the state the drift starts from: git migrate create NAME --from REV")),
    }
}

/// How a file's first line names a state.
fn file_label(s: &State) -> String {
    match s.side {
        Side::Live => "the live database".into(),
        _ => s.label.clone(),
    }
}

/// `create NAME --from-live` / `--from REV1 [--to REV2]`.
pub(crate) fn cmd_create_from(ctx: &Ctx, args: &DriftArgs<'_>) -> Result<(), CommandError> {
    let mut schemas = Schemas::new(ctx, args.scratch_url, args.prelude_sql);
    let (from, to) = sides(ctx, args, &mut schemas)?;
    let mut from = state(ctx, from)?;
    let mut to = state(ctx, to)?;
    let from_model = schemas.model(&mut from)?;
    let to_model = schemas.model(&mut to)?;
    let drift = drift_migration(&from_model, &to_model, &file_label(&from), &file_label(&to))
        .map_err(diff_error)?;
    let Some(drift) = drift else {
        if ctx.json {
            let doc = json::CreateFromDoc::unchanged(&from.label, &to.label);
            ctx.ui.out(&json::text(&doc));
        } else {
            ctx.ui.out(&format!(
                "no schema difference between {} and {}: no migration written",
                from.label, to.label
            ));
        }
        return export_metadata(ctx, args);
    };
    let wp = work_project(ctx)?;
    let dir = wp.migrations_dir(ctx.database_name.as_deref());
    let plan = plan_create(
        &ctx.repo,
        &wp,
        &dir,
        CreateOptions {
            name: args.name,
            up: Some(drift.up.clone().into_bytes()),
            down: Some(&drift.down),
            allow_empty_down: false,
            version: args.version,
        },
    )?;
    for w in &plan.warnings {
        ctx.ui.warn(w);
    }
    if !args.dry_run {
        apply_create(&plan, &wp.root)?;
    }
    // The proof runs on the texts just written.
    let start = from.steps(ctx)?.map(<[_]>::to_vec);
    let start = match &start {
        Some(steps) => Start::Replay(steps),
        None => Start::Model(&from_model),
    };
    let exclude = excluded_schemas(ctx);
    let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
    let prelude = schemas.prelude.clone();
    let verdict = {
        let mut server = git_migrate_core::verify::ScratchServer::new(args.scratch_url);
        let mut dbs = server.databases()?;
        round_trip(
            &mut dbs,
            Some(&prelude),
            start,
            (plan.up(), plan.down()),
            &to_model,
            &exclude,
        )
        .map_err(|e| {
            CommandError::new(Kind::Failure, format!("cannot prove the migration: {e}"))
                .hint(super::verify::SCRATCH_URL_HINT)
        })?
    };
    let folder = plan.folder.clone();
    if ctx.json {
        let doc = json::CreateFromDoc::new(
            (&from.label, &to.label),
            plan.version,
            &folder,
            &drift,
            &verdict,
            !args.dry_run,
        );
        ctx.ui.out(&json::text(&doc));
    } else {
        report(ctx, args, (&from, &to), &folder, &plan, &drift);
    }
    for d in drift.down_destroys() {
        ctx.ui.warn(&format!("its down {d}"));
    }
    if verdict != RoundTrip::Reversed {
        return Err(not_proven(&verdict, &folder, args.dry_run));
    }
    if !ctx.json {
        ctx.ui.info(&format!(
            "proven in a scratch database: up gives the schema of {}, down gives {}'s back, up runs again",
            to.label, from.label
        ));
    }
    if !args.dry_run && to.side == Side::Live {
        ctx.ui.warn(&format!(
            "the live database already has this change: once the migration is committed, record it there with `git migrate apply --version {} --skip-execution` (deploying it would run it again)",
            plan.version
        ));
    }
    if args.dry_run {
        Ok(())
    } else {
        export_metadata(ctx, args)
    }
}

fn report(
    ctx: &Ctx,
    args: &DriftArgs<'_>,
    (from, to): (&State, &State),
    folder: &str,
    plan: &git_migrate_core::authoring::create::CreatePlan,
    drift: &DriftMigration,
) {
    let counts = format!(
        "up.sql: {} statement(s), down.sql: {} statement(s)",
        drift.up_statements.len(),
        drift.down_statements.len()
    );
    if args.dry_run {
        ctx.ui.out(&format!(
            "would create {folder}/ ({counts}) from {} to {}\n--- {}\n{}\n--- {}\n{}",
            from.label,
            to.label,
            join(folder, "up.sql"),
            plan.up().trim_end(),
            join(folder, "down.sql"),
            plan.down().trim_end()
        ));
    } else {
        ctx.ui.out(&format!(
            "Created {folder}/ ({counts}) from {} to {}",
            from.label, to.label
        ));
    }
}

/// The error of a migration the round trip did not prove.
fn not_proven(verdict: &RoundTrip, folder: &str, dry_run: bool) -> CommandError {
    let why = verdict.to_string();
    let state = if dry_run {
        "nothing was written"
    } else {
        "the folder is written"
    };
    CommandError::new(
        Kind::Findings,
        format!("the migration {folder}/ is not proven: {why} ({state})"),
    )
    .hint(
        "edit up.sql/down.sql by hand (objects the differ cannot order or reverse), then prove them with `git add` and `git migrate check --staged --verify`",
    )
}

/// `--metadata`: the live metadata into the working tree.
fn export_metadata(ctx: &Ctx, args: &DriftArgs<'_>) -> Result<(), CommandError> {
    if args.metadata && !args.dry_run {
        super::metadata::cmd_export(ctx)?;
    }
    Ok(())
}
