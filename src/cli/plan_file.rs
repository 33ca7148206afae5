//! Plan files (issue 15): `plan REV --out FILE` writes one ([`write`]), `plan --show FILE`
//! prints it for review ([`cmd_show`]), and `deploy --plan FILE` (in `deploy.rs`) reads it
//! ([`read`]), plans with its options ([`fixed_flags`]) and checks the new plan against it
//! ([`check`]) before it runs. The document, its digest and the comparison with a new plan are
//! the core's ([`git_migrate_core::planfile`]); this file reads and writes the file and prints.
//! It uses neither `plan.rs` nor `deploy.rs` (they use it): the plan as printed comes in as
//! `summary`.

use super::error::{CommandError, Kind};
use super::json;
use super::prepare::*;
use super::render::describe_commit;
use super::Ctx;
use git_migrate_core::plan::Mode;
use git_migrate_core::planfile::{self, Made, Options, PlanFile, PlanFileError};
use std::path::Path;

/// The plan file of a prepared plan: its statements, the digests of the ledger and the live
/// schema it was computed against, and the options that made it. `summary`: the plan as
/// `plan` prints it.
fn document(
    ctx: &Ctx,
    p: &mut Prepared,
    rev: Option<&str>,
    flags: &PlanFlags,
    summary: Vec<String>,
) -> Result<PlanFile, CommandError> {
    let schema = ctx.ledger().take_schema(&mut p.client)?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let made = Made {
        created_at: planfile::utc_timestamp(secs),
        created_by: ctx.actor.clone(),
        database: p.db.clone(),
        live: p.confirmed.live.clone(),
        schema_digest: schema.digest(),
        rev: rev.map(str::to_string),
        options: Options {
            accept_edited: p.options.accept_edited,
            allow_empty_down: p.options.allow_empty_down,
            capture_downs: p.options.capture_downs,
            compute_downs: p.options.compute_downs,
            database_name: ctx.database_name.clone(),
            down_from: flags.down_from.clone(),
            environment: ctx.env.as_ref().map(|e| e.name.clone()),
            mode: p.options.mode,
            out_of_order: p.options.out_of_order,
            project: ctx.project_dir(),
        },
        summary,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(PlanFile::new(&p.confirmed.plan, &p.texts, made))
}

/// `plan REV --out FILE`: writes the plan file and says where (stderr).
pub(super) fn write(
    ctx: &Ctx,
    p: &mut Prepared,
    rev: Option<&str>,
    flags: &PlanFlags,
    summary: Vec<String>,
    out: &Path,
) -> Result<(), CommandError> {
    if p.confirmed.plan.dirty {
        return Err(CommandError::new(
            Kind::Usage,
            "a plan file needs a commit to deploy: the index and the working tree are not one",
        ));
    }
    let doc = document(ctx, p, rev, flags, summary)?;
    let text = doc.to_text();
    std::fs::write(out, &text).map_err(|e| {
        CommandError::new(
            Kind::Failure,
            format!("cannot write the plan file {}: {e}", out.display()),
        )
    })?;
    let digest = PlanFile::parse(&text).map(|d| d.digest).unwrap_or_default();
    ctx.ui.info(&format!(
        "plan file written to {} ({} statement(s), digest {digest}); run it with `git migrate deploy --plan {}`",
        out.display(),
        doc.statements.len(),
        out.display()
    ));
    Ok(())
}

/// Reads and checks a plan file: an unreadable file is a usage error (exit 2); one that is not
/// a plan file of a known format, or whose digest does not match its content, is refused
/// (exit 3).
pub(super) fn read(path: &Path) -> Result<PlanFile, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CommandError::new(
            Kind::Usage,
            format!("cannot read the plan file {}: {e}", path.display()),
        )
    })?;
    PlanFile::parse(&text).map_err(|e| {
        let ce = CommandError::new(
            Kind::Refused,
            format!("{}: {e}; nothing was changed", path.display()),
        );
        match e {
            PlanFileError::UnknownFormat { .. } => ce.hint(format!(
                "this git-migrate reads {}; make the plan again with this version: git migrate plan <rev> --out {}",
                planfile::FORMAT,
                path.display()
            )),
            _ => ce.hint(format!(
                "a plan file is not edited by hand; make a new plan and review it: git migrate plan <rev> --out {}",
                path.display()
            )),
        }
    })
}

/// The command that makes this plan file again.
pub(super) fn replan_hint(file: &PlanFile, path: &Path) -> String {
    let rollback = match file.options.mode {
        Mode::Rollback => " --rollback",
        _ => "",
    };
    let rev = file.to.rev.as_deref().unwrap_or(match file.options.mode {
        Mode::Rollback => "",
        _ => "<rev>",
    });
    let rev = if rev.is_empty() {
        String::new()
    } else {
        format!(" {rev}")
    };
    format!(
        "make a new plan and review it: git migrate plan{rollback}{rev} --out {}",
        path.display()
    )
}

/// A global flag that changes the plan must be the one the plan file was made with.
fn same_flag(flag: &str, file: &Option<String>, now: &Option<String>) -> Result<(), CommandError> {
    if file == now {
        return Ok(());
    }
    let given = |v: &Option<String>| match v {
        Some(v) => format!("{flag} {v}"),
        None => format!("no {flag}"),
    };
    Err(CommandError::new(
        Kind::Usage,
        format!(
            "the plan file was made with {}, this run has {}",
            given(file),
            given(now)
        ),
    )
    .hint(format!(
        "run `deploy --plan` with the same {flag} as `plan --out`"
    )))
}

/// The flags `deploy --plan` plans with: the file's options (the global flags that change a
/// plan must be the ones the file was made with, else a usage error), and from the command
/// line only what does not change the plan (`--sql`, `--scratch-url`).
pub(super) fn fixed_flags(
    ctx: &Ctx,
    file: &PlanFile,
    path: &Path,
    cli_flags: &PlanFlags,
) -> Result<PlanFlags, CommandError> {
    if !matches!(file.options.mode, Mode::Deploy | Mode::Rollback) {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "{}: a plan file runs a deploy or a rollback",
                path.display()
            ),
        ));
    }
    same_flag(
        "--env",
        &file.options.environment,
        &ctx.env.as_ref().map(|e| e.name.clone()),
    )?;
    same_flag(
        "--database-name",
        &file.options.database_name,
        &ctx.database_name,
    )?;
    same_flag("--project", &file.options.project, &ctx.project_dir())?;
    Ok(PlanFlags {
        down_from: file.options.down_from.clone(),
        fixed: Some(file.options.plan_options()),
        sql: cli_flags.sql,
        // Forward-only only refuses: it holds a plan file's run as it holds any deploy.
        forward: cli_flags.forward,
        downs: ComputeDownsArgs {
            compute_downs: None,
            scratch_url: cli_flags.downs.scratch_url.clone(),
        },
        ..PlanFlags::default()
    })
}

/// Refuses (exit 3, naming every difference and the command that makes a new plan) unless
/// the plan `p`, made again with the file's options at its commit, is the file's: the same
/// statements, accepted checksums and metadata digest, against the same ledger, schema,
/// deployed commit and database.
pub(super) fn check(
    ctx: &Ctx,
    file: &PlanFile,
    path: &Path,
    p: &mut Prepared,
    flags: &PlanFlags,
    summary: Vec<String>,
) -> Result<(), CommandError> {
    let now = document(ctx, p, file.to.rev.as_deref(), flags, summary)?;
    let differences = planfile::differences(file, &now);
    if !differences.is_empty() {
        let mut ce = CommandError::new(
            Kind::Refused,
            format!(
                "{}: the plan file no longer matches the database or the repository, nothing was changed",
                path.display()
            ),
        );
        ce.causes = differences;
        return Err(ce.hint(replan_hint(file, path)));
    }
    if !ctx.json {
        ctx.ui.info(&format!(
            "plan file {} matches: the same {} statement(s) against the same ledger and schema",
            path.display(),
            file.statements.len()
        ));
    }
    Ok(())
}

/// `plan --show FILE`: the file, checked, for review; no database.
pub(super) fn cmd_show(ctx: &Ctx, path: &Path) -> Result<(), CommandError> {
    let file = read(path)?;
    if ctx.json {
        ctx.ui.out(&json::text(&file));
        return Ok(());
    }
    let ui = &ctx.ui;
    let commit = |c: &Option<String>, none: &str| match c {
        Some(c) => format!("{c} = {}", describe_commit(&ctx.repo, c)),
        None => none.to_string(),
    };
    let o = &file.options;
    ui.out(&format!(
        "Plan file {} ({}, digest {})",
        path.display(),
        file.format,
        file.digest
    ));
    ui.out(&format!(
        "  made {} by {} with git-migrate {}",
        file.created_at, file.created_by, file.tool_version
    ));
    ui.out(&format!("  database: {}", file.database));
    ui.out(&format!(
        "  from: {}",
        commit(&file.from_commit, "nothing deployed")
    ));
    ui.out(&format!(
        "  to: {}{}",
        file.to
            .rev
            .as_deref()
            .map(|r| format!("{r}: "))
            .unwrap_or_default(),
        commit(&file.to.commit, "the empty state")
    ));
    let mode = match o.mode {
        Mode::Rollback => "rollback",
        _ => "deploy",
    };
    let mut options = vec![format!("mode {mode}")];
    options.push(format!("compute downs {:?}", o.compute_downs).to_lowercase());
    options.push(format!("out of order {:?}", o.out_of_order).to_lowercase());
    for (on, name) in [
        (o.accept_edited, "accept edited"),
        (o.allow_empty_down, "allow empty down"),
    ] {
        if on {
            options.push(name.into());
        }
    }
    for (v, name) in [
        (&o.environment, "--env"),
        (&o.database_name, "--database-name"),
        (&o.down_from, "--down-from"),
        (&o.project, "--project"),
    ] {
        if let Some(v) = v {
            options.push(format!("{name} {v}"));
        }
    }
    ui.out(&format!("  options: {}", options.join(", ")));
    ui.out(&format!("  ledger digest: {}", file.ledger_digest));
    ui.out(&format!("  schema digest: {}", file.schema_digest));
    ui.out(&format!(
        "  metadata digest: {}",
        file.metadata_digest
            .as_deref()
            .unwrap_or("none (the metadata does not change)")
    ));
    ui.out("");
    for l in &file.summary {
        ui.out(l);
    }
    ui.out("");
    ui.out(&format!("Statements ({}):", file.statements.len()));
    for (i, s) in file.statements.iter().enumerate() {
        let mut marks = String::new();
        if s.noop {
            marks.push_str("  [recorded without running]");
        } else if s.no_transaction {
            marks.push_str("  [outside the transaction]");
        }
        ui.out(&format!(
            "{:>3}. {:<4} {}_{}  ({}){marks}",
            i + 1,
            s.direction,
            s.version,
            s.name,
            s.file
        ));
        for l in s.sql.lines() {
            ui.out(&format!("       | {l}"));
        }
    }
    for n in &file.accepted_edits {
        ui.out(&format!(
            "  records checksum {} for {} (was {})",
            n.to_sha256, n.version, n.from_sha256
        ));
    }
    Ok(())
}
