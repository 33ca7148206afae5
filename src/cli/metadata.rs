//! `git migrate metadata …`: the metadata alone (diff, apply).

use super::deploy::run_mutation;
use super::error::{CommandError, Kind};
use super::json;
use super::prepare::{ExecFlags, Goal, PlanFlags};
use super::render::label;
use super::Ctx;
use clap::{Args, Subcommand};
use git_migrate_core::gather::{self, GatherError, TargetProject};
use git_migrate_core::plan::Mode;
use git_migrate_core::source::{Project, Source};

/// Metadata subcommands.
#[derive(Subcommand, Debug)]
pub enum MetadataCommand {
    /// Show how the metadata differs: live vs REV (default HEAD), or between REV1 and REV2
    Diff(DiffArgs),
    /// Apply the metadata of REV (default HEAD) alone, in one transaction
    Apply(ApplyArgs),
    /// Check the live metadata against the database schema
    #[command(subcommand)]
    Inconsistency(InconsistencyCommand),
    /// Re-validate the live metadata against the current schema (exit 1 when inconsistent)
    Reload,
    /// Replace the live metadata with empty metadata, in one transaction
    Clear(ClearArgs),
    /// Write the live metadata into the working tree, in the project's layout
    Export,
}

/// `metadata inconsistency` subcommands.
#[derive(Subcommand, Debug)]
pub enum InconsistencyCommand {
    /// List every object of the live metadata that does not match the schema
    List,
    /// Say whether the live metadata matches the schema (exit 1 when it does not)
    Status,
}

/// Arguments of `metadata clear`.
#[derive(Args, Debug)]
pub struct ClearArgs {
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
}

/// Arguments of `metadata diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Revision to compare the live metadata with; with a second revision, compare the two
    /// revisions without a database.
    pub rev: Option<String>,
    /// Second revision.
    pub rev2: Option<String>,
    /// Output format.
    #[arg(long, default_value = "changes", value_parser = ["changes", "unified"])]
    pub format: String,
}

/// Arguments of `metadata apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Revision whose metadata to apply (default HEAD).
    pub rev: Option<String>,
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
}

/// Dispatches `metadata` subcommands.
pub(crate) fn cmd_metadata(ctx: &Ctx, cmd: &MetadataCommand) -> Result<(), CommandError> {
    match cmd {
        MetadataCommand::Diff(a) => cmd_diff(ctx, a),
        MetadataCommand::Apply(a) => run_mutation(
            ctx,
            Mode::Metadata,
            Goal::Rev(a.rev.as_deref()),
            &a.flags,
            &a.exec,
        ),
        MetadataCommand::Clear(a) => {
            run_mutation(ctx, Mode::Metadata, Goal::Empty, &a.flags, &a.exec)
        }
        MetadataCommand::Export => cmd_export(ctx),
        MetadataCommand::Inconsistency(InconsistencyCommand::List) => cmd_inconsistency(ctx, false),
        MetadataCommand::Inconsistency(InconsistencyCommand::Status) | MetadataCommand::Reload => {
            cmd_inconsistency(ctx, true)
        }
    }
}

/// Writes the live metadata into the working tree's metadata folder (config v2 or v3 layout
/// after `config.yaml`), and removes the per-table files it owns that are now stale.
pub(super) fn cmd_export(ctx: &Ctx) -> Result<(), CommandError> {
    use git_migrate_core::metadata::export::{export, stale_files, Layout};
    let Some(workdir) = ctx.repo.git().workdir().map(|p| p.to_path_buf()) else {
        return Err(CommandError::new(
            Kind::Usage,
            "metadata export writes files into the working tree, and this repository is bare",
        ));
    };
    let project = ctx
        .repo
        .project(&Source::Worktree, ctx.project_dir().as_deref())?;
    let (_, live) = live_snapshot(ctx, "deploy first: git migrate deploy REV")?;
    let layout = if project.config.version >= 3 {
        Layout::V3
    } else {
        Layout::V2
    };
    let root = workdir.join(&project.metadata_dir);
    let files = export(&live, layout);
    let io = |what: &str, path: &std::path::Path, e: std::io::Error| {
        CommandError::new(Kind::Failure, format!("{what} {}: {e}", path.display()))
    };
    let mut existing = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(&root) {
                existing.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    for (rel, bytes) in &files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| io("cannot write", &path, e))?;
    }
    let stale = stale_files(&existing, &files, layout);
    for rel in &stale {
        let path = root.join(rel);
        std::fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
    }
    ctx.ui.out(&format!(
        "exported the live metadata into {} ({} file(s) written, {} stale file(s) removed)",
        project.metadata_dir,
        files.len(),
        stale.len()
    ));
    Ok(())
}

/// Connects and reads the live metadata (Hasura's catalog, else the ledger's snapshot).
pub(super) fn live_snapshot(
    ctx: &Ctx,
    what: &str,
) -> Result<(postgres::Client, serde_json::Value), CommandError> {
    let (db, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    match ledger.live_metadata(&mut client, state.live.ledger_exists)? {
        Some(live) => Ok((client, live)),
        None => Err(CommandError::new(
            Kind::Usage,
            format!(
                "{} has no metadata deployed by git-migrate yet",
                db.redacted()
            ),
        )
        .hint(what.to_string())),
    }
}

/// Checks the live metadata (the ledger's snapshot) against the schema. With `status`, a
/// finding is exit code 1.
fn cmd_inconsistency(ctx: &Ctx, status: bool) -> Result<(), CommandError> {
    let (mut client, live) = live_snapshot(ctx, "deploy first: git migrate deploy REV")?;
    let problems =
        git_migrate_core::metadata::consistency::check(&mut client, &live).map_err(|e| {
            CommandError::new(
                Kind::Failure,
                format!(
                    "checking the metadata against the schema: {}",
                    git_migrate_core::db::describe_pg_error(&e)
                ),
            )
        })?;
    if ctx.json {
        let doc = json::InconsistencyDoc::new(problems.clone());
        ctx.ui.out(&json::text(&doc));
    } else if problems.is_empty() {
        ctx.ui.out("the live metadata matches the schema");
    } else {
        ctx.ui
            .out(&format!("{} inconsistent object(s):", problems.len()));
        for p in &problems {
            ctx.ui.out(&format!("  {p}"));
        }
    }
    if status && !problems.is_empty() {
        return Err(CommandError::new(Kind::Findings, ""));
    }
    Ok(())
}

fn snapshot_at(ctx: &Ctx, rev: &str) -> Result<(serde_json::Value, String), CommandError> {
    let project = ctx
        .repo
        .project(&Source::Rev(rev.to_string()), ctx.project_dir().as_deref())?;
    snapshot_of(ctx, rev, project)
}

/// "v1.2.0 (abc1234567)" or the revision as typed.
fn project_label(ctx: &Ctx, rev: &str, project: &Project) -> String {
    project
        .commit_hex()
        .map(|c| label(&ctx.repo, rev, &c))
        .unwrap_or_else(|| rev.to_string())
}

/// The metadata snapshot of a project read at `rev`, with its label.
pub(super) fn snapshot_of(
    ctx: &Ctx,
    rev: &str,
    project: Project,
) -> Result<(serde_json::Value, String), CommandError> {
    let label = project_label(ctx, rev, &project);
    // Config v3 from git: read folder by folder (the same value as target_snapshot gives).
    if let Some(built) = git_migrate_core::metadata::git::build_project(&ctx.repo, &project) {
        return Ok((built.map_err(GatherError::from)?, label));
    }
    let target = TargetProject {
        reference: rev.to_string(),
        project: Some(project),
    };
    Ok((gather::target_snapshot(&ctx.repo, &target)?, label))
}

/// The snapshots of two revisions with their labels. Config v3 projects are compared by content
/// addressing: files shared by both revisions are not parsed, and the snapshots come back
/// without the objects both hold unchanged (enough for the list of changes). `full`: the whole
/// snapshots (for the unified diff).
pub(super) fn snapshots_of_revisions(
    ctx: &Ctx,
    (a, pa): (&str, Project),
    (b, pb): (&str, Project),
    full: bool,
) -> Result<Snapshots, CommandError> {
    if let Some(both) = git_migrate_core::metadata::git::diff_snapshots(&ctx.repo, &pa, &pb, full) {
        let (old, new) = both.map_err(GatherError::from)?;
        return Ok((
            (old, project_label(ctx, a, &pa)),
            (new, project_label(ctx, b, &pb)),
        ));
    }
    Ok((snapshot_of(ctx, a, pa)?, snapshot_of(ctx, b, pb)?))
}

pub(super) type Snapshots = ((serde_json::Value, String), (serde_json::Value, String));

fn cmd_diff(ctx: &Ctx, args: &DiffArgs) -> Result<(), CommandError> {
    let ((old, old_label), (new, new_label)) = match (&args.rev, &args.rev2) {
        (Some(a), Some(b)) => {
            let dir = ctx.project_dir();
            let pa = ctx.repo.project(&Source::Rev(a.clone()), dir.as_deref())?;
            let pb = ctx.repo.project(&Source::Rev(b.clone()), dir.as_deref())?;
            // Content addressing: equal metadata folder trees are equal metadata; nothing to
            // parse.
            if pa.metadata_tree.is_some() && pa.metadata_tree == pb.metadata_tree {
                if ctx.json {
                    let doc = json::MetadataDiffDoc {
                        changes: vec![],
                        from: a.clone(),
                        to: b.clone(),
                    };
                    ctx.ui.out(&json::text(&doc));
                } else {
                    ctx.ui.out(&format!("no differences between {a} and {b}"));
                }
                return Ok(());
            }
            let full = args.format == "unified" && !ctx.json;
            snapshots_of_revisions(ctx, (a, pa), (b, pb), full)?
        }
        (rev, None) => {
            let (_, live) = live_snapshot(
                ctx,
                "compare two revisions instead: git migrate metadata diff REV1 REV2",
            )?;
            (
                (live, "live".to_string()),
                snapshot_at(ctx, rev.as_deref().unwrap_or("HEAD"))?,
            )
        }
        (None, Some(_)) => unreachable!("clap fills the first positional first"),
    };
    let result = print_diff(ctx, args, &old, &new, &old_label, &new_label);
    // A 5,000-table snapshot takes a while to free, and the process ends here.
    std::mem::forget((old, new));
    result
}

fn print_diff(
    ctx: &Ctx,
    args: &DiffArgs,
    old: &serde_json::Value,
    new: &serde_json::Value,
    old_label: &str,
    new_label: &str,
) -> Result<(), CommandError> {
    let changes = git_migrate_core::metadata::describe_changes(old, new);
    if ctx.json {
        let doc = json::MetadataDiffDoc {
            changes,
            from: old_label.to_string(),
            to: new_label.to_string(),
        };
        ctx.ui.out(&json::text(&doc));
        return Ok(());
    }
    if changes.is_empty() {
        ctx.ui.out(&format!(
            "no differences between {old_label} and {new_label}"
        ));
        return Ok(());
    }
    if args.format == "unified" {
        ctx.ui.out(&git_migrate_core::metadata::unified(
            old, new, old_label, new_label,
        ));
    } else {
        // One write: thousands of lines (a first deploy of a large project) one by one cost
        // a system call each.
        let mut text = format!("{old_label} -> {new_label}: {} change(s)", changes.len());
        for c in &changes {
            text.push_str(&format!("\n  {c}"));
        }
        ctx.ui.out(&text);
    }
    Ok(())
}
