//! `git migrate check`: the rules of design §8 over a range of commits, the index, or what a
//! push brings; `--verify` also runs each new migration up, down and up in a scratch database.

use super::error::{CommandError, Kind};
use super::json;
use super::Ctx;
use clap::Args;
use console::Style;
use git_migrate_core::check::range::{check_range, ranges, CheckError, RangeReport, RangeSpec};
use git_migrate_core::check::Finding;
use std::io::Read;

/// Arguments of `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// `A..B`, or one commit (checks that commit alone). Default: `@{upstream}..HEAD`, else
    /// the last commit. With --pre-push: the hook's arguments (remote name and URL).
    #[arg(value_name = "RANGE")]
    pub args: Vec<String>,
    /// Check the index against HEAD (pre-commit).
    #[arg(long, conflicts_with_all = ["pre_push", "pre_receive"])]
    pub staged: bool,
    /// Read git's pre-push input from stdin (`<local ref> <sha> <remote ref> <sha>` lines).
    #[arg(long, conflicts_with = "pre_receive")]
    pub pre_push: bool,
    /// Read git's pre-receive input from stdin (`<old> <new> <ref>` lines; bare repositories).
    #[arg(long)]
    pub pre_receive: bool,
    /// Also prove in a scratch database that each new migration's down reverses its up.
    #[arg(long)]
    pub verify: bool,
    /// Server for --verify's scratch database (create and drop a database there) instead of
    /// a throwaway cluster. Also $GIT_MIGRATE_SCRATCH_URL.
    #[arg(long, value_name = "URL", env = "GIT_MIGRATE_SCRATCH_URL")]
    pub scratch_url: Option<String>,
    /// Leave the migration linter out (`lint.enabled` in git-migrate.yaml turns it off for
    /// good).
    #[arg(long)]
    pub no_lint: bool,
}

impl From<CheckError> for CommandError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Source(s) => s.into(),
            CheckError::Gather(g) => g.into(),
            other => CommandError::new(Kind::Usage, other.to_string()),
        }
    }
}

fn read_stdin() -> Result<String, CommandError> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        CommandError::new(
            Kind::Usage,
            format!("cannot read the hook input on stdin: {e}"),
        )
    })?;
    Ok(s)
}

/// `git migrate check`.
pub(crate) fn cmd_check(ctx: &Ctx, args: &CheckArgs) -> Result<(), CommandError> {
    let spec = if args.staged {
        if !args.args.is_empty() {
            return Err(CommandError::new(
                Kind::Usage,
                "--staged checks the index; do not give a range too",
            ));
        }
        RangeSpec::Staged
    } else if args.pre_push {
        RangeSpec::PrePush {
            remote: args.args.first().cloned(),
            input: read_stdin()?,
        }
    } else if args.pre_receive {
        RangeSpec::PreReceive {
            input: read_stdin()?,
        }
    } else {
        match args.args.as_slice() {
            [] => RangeSpec::Default,
            [r] => {
                if r.starts_with('-') {
                    return Err(CommandError::new(
                        Kind::Usage,
                        format!("{r:?} is not a revision range"),
                    )
                    .hint("revisions cannot start with '-'"));
                }
                RangeSpec::Revs(r.clone())
            }
            _ => {
                return Err(
                    CommandError::new(Kind::Usage, "give one range (A..B or a commit)")
                        .hint("e.g. git migrate check origin/main..HEAD"),
                )
            }
        }
    };
    let project_dir = ctx.project_dir();
    let env_allow = std::env::var("GIT_MIGRATE_ALLOW").ok();
    let mut reports = Vec::new();
    // Per range: old mistakes in the files read (a YAML key written twice), shown as notes.
    let mut notes: Vec<Vec<String>> = Vec::new();
    for r in ranges(&ctx.repo, &spec)? {
        reports.push(check_range(
            &ctx.repo,
            r,
            project_dir.as_deref(),
            env_allow.as_deref(),
            (!args.no_lint).then_some(&ctx.config.lint),
        )?);
        notes.push(git_migrate_core::yaml::take_warnings());
    }
    if !ctx.config.require_down {
        // `policy.require_down: false` in git-migrate.yaml: a migration without a down is the
        // team's choice (deploy still warns that it cannot be rolled back).
        for rep in &mut reports {
            rep.findings
                .retain(|f| f.rule != git_migrate_core::check::Rule::MissingDown);
        }
    }
    if args.verify {
        // One server for every range (started only if a range has new migrations).
        let mut scratch = git_migrate_core::verify::ScratchServer::new(args.scratch_url.as_deref());
        for rep in &mut reports {
            let found = super::verify::verify_report(ctx, rep, &mut scratch)?;
            rep.findings.extend(found);
        }
    }
    render(ctx, &reports, &notes)
}

fn render(ctx: &Ctx, reports: &[RangeReport], notes: &[Vec<String>]) -> Result<(), CommandError> {
    let no_notes = Vec::new();
    let notes_of = |i: usize| notes.get(i).unwrap_or(&no_notes);
    let open: Vec<&Finding> = reports
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.allowed_by.is_none() && !f.rule.is_note())
        .collect();
    if ctx.json {
        let doc = json::CheckDoc::new(open.is_empty(), reports, notes);
        ctx.ui.out(&json::text(&doc));
    } else {
        for (i, r) in reports.iter().enumerate() {
            let what = if r.range.commits.is_empty() {
                r.range.label.clone()
            } else {
                format!(
                    "{} ({} commit{})",
                    r.range.label,
                    r.range.commits.len(),
                    if r.range.commits.len() == 1 { "" } else { "s" }
                )
            };
            if let Some(s) = &r.skipped {
                ctx.ui
                    .info(&format!("check {what}: nothing to check ({s})"));
                continue;
            }
            let n_open = r
                .findings
                .iter()
                .filter(|f| f.allowed_by.is_none() && !f.rule.is_note())
                .count();
            let n_allowed = r.findings.iter().filter(|f| f.allowed_by.is_some()).count();
            if n_open == 0 {
                ctx.ui.info(&format!(
                    "check {what}: ok{}",
                    if n_allowed == 0 {
                        String::new()
                    } else {
                        format!(" ({n_allowed} allowed by Migration-Allow)")
                    }
                ));
            } else {
                ctx.ui.out(&format!(
                    "check {what}: {n_open} finding{}",
                    if n_open == 1 { "" } else { "s" }
                ));
            }
            for f in &r.findings {
                let commit = f.commit.as_deref().unwrap_or("");
                // Lint findings point at a line: `path:line@commit`.
                let place = match f.line {
                    Some(line) => format!("{}:{line}@{commit}", f.path),
                    None => format!("{commit}  {}", f.path),
                };
                match &f.allowed_by {
                    None if f.rule.is_note() => {
                        ctx.ui.info(&format!(
                            "  note: {} {}",
                            f.rule.id(),
                            place.replace("  ", " ")
                        ));
                        for line in f.message.lines() {
                            ctx.ui.info(&format!("    {line}"));
                        }
                        if f.line.is_some() {
                            ctx.ui.info(&format!("    hint: {}", f.hint));
                        }
                    }
                    None => {
                        ctx.ui.out(&format!(
                            "  {}  {place}",
                            ctx.ui.paint(f.rule.id(), Style::new().red().bold()),
                        ));
                        for line in f.message.lines() {
                            ctx.ui.out(&format!("    {line}"));
                        }
                        ctx.ui.out(&format!("    hint: {}", f.hint));
                    }
                    Some(by) => ctx.ui.info(&format!(
                        "  {} {} (allowed by {by})",
                        f.rule.id(),
                        place.replace("  ", " "),
                    )),
                }
            }
            for n in notes_of(i) {
                ctx.ui.info(&format!("  note: {n}"));
            }
            for b in &r.bad_allows {
                ctx.ui.warn(&format!(
                    "unreadable allowance in {}: `Migration-Allow: {}` (expected `Migration-Allow: <rule> <version>…`; rules: {})",
                    b.source,
                    b.text,
                    git_migrate_core::check::Rule::ALL.map(|r| r.id()).join(", ")
                ));
            }
        }
    }
    if open.is_empty() {
        Ok(())
    } else {
        Err(CommandError::new(Kind::Findings, ""))
    }
}
