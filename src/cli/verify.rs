//! `git migrate verify [REV]` and `check --verify`: run migrations up, down and up again in a
//! scratch database and compare catalog fingerprints.

use super::error::{CommandError, Kind};
use super::json;
use super::Ctx;
use clap::Args;
use git_migrate_core::check::range::RangeReport;
use git_migrate_core::check::{Finding, Rule};
use git_migrate_core::project::Version;
use git_migrate_core::source::{Project, Source};
use git_migrate_core::verify::{
    verify_sequence, Outcome, ScratchServer, ScratchServerError, Step, Verified, VerifyError,
};
use std::collections::BTreeSet;
use std::time::Instant;

/// Arguments of `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The revision whose migrations to verify (default HEAD).
    #[arg(value_name = "REV")]
    pub rev: Option<String>,
    /// Verify only migrations with a version at or above this one (earlier ones still run up).
    #[arg(long, value_name = "VERSION")]
    pub from: Option<Version>,
    /// Server for the scratch database (databases are created and dropped there) instead of
    /// a throwaway cluster. Also $GIT_MIGRATE_SCRATCH_URL.
    #[arg(long, value_name = "URL", env = "GIT_MIGRATE_SCRATCH_URL")]
    pub scratch_url: Option<String>,
}

/// What to do when the scratch server does not let us make a database.
pub(super) const SCRATCH_URL_HINT: &str = "--scratch-url names a server where the tool may create and drop databases of its own (it connects to the database in the URL only for that)";

impl From<ScratchServerError> for CommandError {
    fn from(e: ScratchServerError) -> CommandError {
        let hint = match &e {
            ScratchServerError::Start(_) => "install the PostgreSQL server binaries, or pass --scratch-url postgresql://… (a server where the tool may create a database)",
            ScratchServerError::Connect { .. } => SCRATCH_URL_HINT,
        };
        CommandError::new(Kind::Failure, e.to_string()).hint(hint)
    }
}

/// The steps for a project: every migration up to the last one to verify.
fn steps(
    ctx: &Ctx,
    project: &mut Project,
    verify: &BTreeSet<Version>,
) -> Result<Vec<Step>, CommandError> {
    let Some(last) = verify.iter().next_back().copied() else {
        return Ok(vec![]);
    };
    let versions: Vec<Version> = project
        .migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| *v <= last)
        .collect();
    let at = project.at();
    ctx.repo.resolve(&mut project.migrations, versions, &at)?;
    let mut out = Vec::new();
    for m in project.migrations.iter().filter(|m| m.version <= last) {
        let Some(up) = &m.up else { continue };
        // What a deployment would run: a legacy YAML migration's run_sql SQL, with a
        // whole-file transaction wrapper blanked out (the same rules as deploy).
        let read = |f: &git_migrate_core::project::MigrationFile| -> Result<(String, String), CommandError> {
            let bytes = ctx.repo.read(&project.tree, &f.path, Some(&f.blob))?;
            let text = git_migrate_core::source::sql_text(bytes, &f.path, &at)?;
            let text = git_migrate_core::execute::StepSql::new(text, f.path.clone()).text;
            Ok((f.path.clone(), text))
        };
        out.push(Step {
            version: m.version,
            location: m.location.clone(),
            up: read(up)?,
            down: m.down.as_ref().map(read).transpose()?,
            verify: verify.contains(&m.version),
        });
    }
    Ok(out)
}

pub(super) fn prelude(ctx: &Ctx) -> String {
    ctx.config
        .prelude_sql
        .clone()
        .unwrap_or_else(|| git_migrate_core::project::DEFAULT_PRELUDE.to_string())
}

fn run(
    ctx: &Ctx,
    project: &mut Project,
    verify: &BTreeSet<Version>,
    scratch: &mut ScratchServer,
    mut progress: impl FnMut(&Verified),
) -> Result<Vec<Verified>, CommandError> {
    let steps = steps(ctx, project, verify)?;
    if !steps.iter().any(|s| s.verify) {
        return Ok(vec![]);
    }
    let mut dbs = scratch.databases()?;
    let ledger_schema = ctx.config.ledger_schema.clone();
    let exclude = [ledger_schema.as_str(), "hdb_catalog"];
    let prelude = prelude(ctx);
    verify_sequence(&mut dbs, Some(&prelude), &steps, &exclude, &mut progress).map_err(|e| {
        let scratch = matches!(e, VerifyError::Scratch(_));
        let ce = CommandError::new(Kind::Failure, e.to_string());
        if scratch {
            ce.hint(SCRATCH_URL_HINT)
        } else {
            ce
        }
    })
}

/// Every migration of `project` as a replay runs it: its runnable up SQL, in version order.
pub(super) fn replay_steps(
    ctx: &Ctx,
    project: &mut Project,
) -> Result<Vec<git_migrate_core::verify::replay::ReplayStep>, CommandError> {
    let all: BTreeSet<Version> = project.migrations.iter().map(|m| m.version).collect();
    Ok(steps(ctx, project, &all)?
        .into_iter()
        .map(|s| git_migrate_core::verify::replay::ReplayStep {
            version: s.version,
            up: Ok(s.up.1),
        })
        .collect())
}

/// The schema (fingerprint) every migration of `project` leaves when run up in order, after the
/// prelude, in a new scratch database: what a fresh deploy of it gives.
pub(super) fn replay_schema(
    ctx: &Ctx,
    project: &mut Project,
    scratch: &mut ScratchServer,
) -> Result<git_migrate_core::verify::fingerprint::Fingerprint, CommandError> {
    let history = replay_steps(ctx, project)?;
    let mut dbs = scratch.databases()?;
    let ledger_schema = ctx.config.ledger_schema.clone();
    git_migrate_core::verify::replay::schema_of(
        &mut dbs,
        Some(&prelude(ctx)),
        &history,
        &[ledger_schema.as_str(), "hdb_catalog"],
    )
    .map_err(|e| {
        CommandError::new(Kind::Failure, format!("cannot replay the target: {e}"))
            .hint(SCRATCH_URL_HINT)
    })
}

fn finding(v: &Verified, down_path: Option<&str>) -> Option<Finding> {
    let (rule, path, message, hint) = match &v.outcome {
        Outcome::Reversed | Outcome::NoDown => return None,
        Outcome::NotRun { cause } => (
            Rule::VerifySql,
            v.location.clone(),
            format!("migration {} was not verified: {cause}", v.version),
            "fix that failure first; the migrations after it are verified once it runs".to_string(),
        ),
        Outcome::SqlFailed { phase, path, message } => (
            Rule::VerifySql,
            path.clone(),
            format!("{} of migration {} failed in a scratch database: {message}", phase.describe(), v.version),
            match phase {
                git_migrate_core::verify::Phase::UpAgain => "the down ran and the schema came back, but something it left (rows, or a server-wide object such as a role) stops the up from running again; make down undo everything up does".to_string(),
                _ => "fix the SQL; the scratch database started empty and ran the migrations before this one".to_string(),
            },
        ),
        Outcome::NotReversed { differences } => {
            let shown: Vec<String> = differences.iter().take(5).map(|d| d.to_string()).collect();
            let more = differences.len().saturating_sub(shown.len());
            (
                Rule::VerifyDown,
                down_path.map(str::to_string).unwrap_or_else(|| v.location.clone()),
                format!(
                    "down of migration {} does not reverse its up:\n- {}{}",
                    v.version,
                    shown.join("\n- "),
                    if more > 0 { format!("\n- and {more} more") } else { String::new() }
                ),
                "make down.sql drop or restore exactly what up.sql creates or changes".to_string(),
            )
        }
    };
    Some(Finding {
        rule,
        commit: None,
        path,
        version: Some(v.version),
        message,
        hint,
        allowed_by: None,
        line: None,
    })
}

/// `check --verify`: verifies the new migrations of a checked range.
pub(crate) fn verify_report(
    ctx: &Ctx,
    report: &RangeReport,
    scratch: &mut ScratchServer,
) -> Result<Vec<Finding>, CommandError> {
    if report.new_versions.is_empty() || report.skipped.is_some() {
        return Ok(vec![]);
    }
    // Layout problems are already findings; verify only a project that reads cleanly.
    let Ok(mut project) = ctx.repo.project_at(
        report.range.tip.clone(),
        &report.range.label,
        ctx.project_dir().as_deref(),
    ) else {
        return Ok(vec![]);
    };
    let verify: BTreeSet<Version> = report
        .new_versions
        .iter()
        .copied()
        .filter(|v| project.migrations.contains(*v))
        .collect();
    let results = run(ctx, &mut project, &verify, scratch, |_| {})?;
    let commit = match &report.range.tip {
        git_migrate_core::source::TreeRef::Git {
            commit: Some(c), ..
        } => git_migrate_core::source::short(&c.to_string()),
        git_migrate_core::source::TreeRef::Git { commit: None, .. } => "the index".into(),
        git_migrate_core::source::TreeRef::Fs { .. } => "the working tree".into(),
    };
    Ok(results
        .iter()
        .filter_map(|v| {
            let down = project
                .migrations
                .get(v.version)
                .and_then(|m| m.down.as_ref())
                .map(|d| d.path.clone());
            finding(v, down.as_deref())
        })
        .map(|mut f| {
            f.commit = Some(commit.clone());
            f
        })
        .collect())
}

/// `git migrate verify [REV]`.
pub(crate) fn cmd_verify(ctx: &Ctx, args: &VerifyArgs) -> Result<(), CommandError> {
    let source = Source::Rev(args.rev.clone().unwrap_or_else(|| "HEAD".into()));
    let mut project = ctx.repo.project(&source, ctx.project_dir().as_deref())?;
    let verify: BTreeSet<Version> = project
        .migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| args.from.is_none_or(|f| *v >= f))
        .collect();
    let started = Instant::now();
    let ui = ctx.ui.clone();
    let json = ctx.json;
    let results = run(
        ctx,
        &mut project,
        &verify,
        &mut ScratchServer::new(args.scratch_url.as_deref()),
        |v| {
            if json {
                return;
            }
            let label = v.location.rsplit('/').next().unwrap_or(&v.location);
            match &v.outcome {
                Outcome::Reversed => ui.info(&format!("  ok       {label}")),
                Outcome::NoDown => ui.info(&format!("  no down  {label}")),
                Outcome::NotRun { .. } => ui.out(&format!("  not run  {label}")),
                Outcome::SqlFailed { .. } => ui.out(&format!("  FAILED   {label}")),
                Outcome::NotReversed { .. } => ui.out(&format!("  NOT REVERSED  {label}")),
            }
        },
    )?;
    let findings: Vec<Finding> = results
        .iter()
        .filter_map(|v| {
            let down = project
                .migrations
                .get(v.version)
                .and_then(|m| m.down.as_ref())
                .map(|d| d.path.clone());
            finding(v, down.as_deref())
        })
        .collect();
    let reversed = results
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Reversed))
        .count();
    let no_down = results
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::NoDown))
        .count();
    let ok = findings.is_empty();
    if ctx.json {
        let doc = json::VerifyDoc {
            findings,
            no_down,
            ok,
            reversed,
            revision: project.source_name.clone(),
            seconds: started.elapsed().as_secs_f64(),
            verified: results.len(),
        };
        ctx.ui.out(&json::text(&doc));
    } else {
        for f in &findings {
            ctx.ui.out(&format!("{}  {}", f.rule.id(), f.path));
            for line in f.message.lines() {
                ctx.ui.out(&format!("    {line}"));
            }
            ctx.ui.out(&format!("    hint: {}", f.hint));
        }
        ctx.ui.info(&format!(
            "verified {} migration(s) of {} in {:.1} s: {reversed} reversed, {no_down} without a down, {} failed",
            results.len(),
            project.source_name,
            started.elapsed().as_secs_f64(),
            findings.len()
        ));
    }
    if ok {
        Ok(())
    } else {
        Err(CommandError::new(Kind::Findings, ""))
    }
}
