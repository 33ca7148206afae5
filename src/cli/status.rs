//! `git migrate status [REV]`: which commit the database is at and how it differs from REV.

use super::error::{CommandError, Kind};
use super::json::{self, VersionRow};
use super::render::{describe_commit, problem_lines, CommitNames};
use super::{Ctx, SourceArgs};
use clap::Args;
use git_migrate_core::gather::{self, GatherOptions, TargetProject};
use git_migrate_core::plan::{Mode, PlanOptions};

/// Arguments of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Revision to compare with (default HEAD).
    pub rev: Option<String>,
    /// Exit with 1 when the database differs from REV.
    #[arg(long)]
    pub exit_code: bool,
    /// Also print every version in Hasura's `migrate status` table (VERSION, NAME, SOURCE
    /// STATUS, DATABASE STATUS) with the commit each was applied from and its checksum state.
    #[arg(long)]
    pub table: bool,
    /// One line per environment of git-migrate.yaml: its commit, release tag, how far behind
    /// HEAD, and its last deployment.
    #[arg(long, conflicts_with_all = ["rev", "table", "exit_code"])]
    pub all_envs: bool,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub fleet: super::fleet::FleetStatusArgs,
}

/// `git migrate status`.
pub(crate) fn cmd_status(ctx: &Ctx, args: &StatusArgs) -> Result<(), CommandError> {
    if args.all_envs {
        return all_envs(ctx);
    }
    if let Some(fleet) = super::fleet::fleet_of(ctx, args.fleet.fleet.as_deref())? {
        return super::fleet::status(
            ctx,
            &fleet,
            &args.fleet,
            args.rev.as_deref(),
            args.exit_code,
        );
    }
    let (db, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let mut state = ledger.read(&mut client)?;
    let source = args.source.source(args.rev.as_deref())?;
    let project_dir = ctx.project_dir();
    let mut target = TargetProject {
        reference: source.describe(),
        project: Some(ctx.repo.project(&source, project_dir.as_deref())?),
    };
    // A database the Hasura CLI manages: compared as a deploy would adopt it (nothing written).
    let unadopted = super::adopt::status_view(ctx, &mut state, &mut target)?;
    let options = PlanOptions {
        mode: Mode::Deploy,
        out_of_order: ctx.config.out_of_order,
        allow_empty_down: true,
        // `status` shows what a deploy with the team's policy would do.
        accept_edited: ctx.config.accept_edited,
        // Reverts are counted, not run: no down is computed (nor a history replayed) here.
        compute_downs: git_migrate_core::plan::ComputeDowns::Off,
        capture_downs: ctx.config.capture_downs,
    };
    let planned = gather::plan_for(
        &ctx.repo,
        &mut client,
        &ledger,
        &mut target,
        &state,
        options,
        &GatherOptions {
            down_from: None,
            project_dir,
            selection: None,
            computed_now: Default::default(),
            environment: None,
            forward_only: None,
        },
    )?;
    let target_commit = target.commit();
    let (pending, revert, metadata, problems) = match &planned.plan {
        Ok(p) => (
            json::VersionName::of_steps(&p.steps, false),
            json::VersionName::of_steps(&p.steps, true),
            p.metadata.clone(),
            vec![],
        ),
        Err(problems) => (vec![], vec![], None, problems.clone()),
    };
    let problems = match &unadopted {
        Some(u) if !u.problems.is_empty() => [problems, u.problems.clone()].concat(),
        _ => problems,
    };
    let metadata_in_sync = match &planned.plan {
        Ok(p) => p.metadata.is_none(),
        Err(_) => state.live.metadata_sha256 == planned.metadata_sha256,
    };
    let in_sync = pending.is_empty()
        && revert.is_empty()
        && metadata_in_sync
        && problems.is_empty()
        && state.live.ledger_exists
        && unadopted.is_none();
    let at_target =
        state.live.deployed_commit.is_some() && state.live.deployed_commit == target_commit;
    // The schema against the one the last deployment recorded: a change made outside
    // git-migrate since. One query compares a digest of the catalog; only when it moved is the
    // fingerprint taken, to name what changed (and to ignore what the proof ignores).
    let drift = ledger.schema_drift(&mut client, state.schema_version)?;
    let in_sync = in_sync && drift.is_none();
    // Folders that hold no migration (no up.sql, no up.yaml), among those read: never dropped
    // without a word.
    let skipped_folders: Vec<String> = target
        .project
        .as_ref()
        .map(|p| p.skipped_folders.clone())
        .unwrap_or_default();
    let accepted: Vec<String> = match &planned.plan {
        Ok(p) => p
            .accepted
            .iter()
            .map(|a| a.describe(&target.reference))
            .collect(),
        Err(_) => vec![],
    };

    let rows = if args.table {
        version_rows(&target, &state.live)
    } else {
        vec![]
    };
    if ctx.json {
        let doc = json::StatusDoc {
            accepted_edits: accepted,
            applied: state.live.applied.len(),
            at_target_commit: at_target,
            database: db.redacted(),
            deployed: state.live.deployed_commit.as_ref().map(|c| json::Deployed {
                commit: c.clone(),
                describe: describe_commit(&ctx.repo, c),
                dirty: state.live.deployed_dirty,
            }),
            environment: ctx
                .env
                .as_ref()
                .map(|env| env_json(ctx, env, &state, &mut client)),
            hasura: unadopted
                .as_ref()
                .map(|u| json::Unadopted::new(u.versions, u.adoption.as_ref())),
            in_sync,
            last_deployment: state.last.clone(),
            ledger: state.live.ledger_exists,
            metadata: json::MetadataSync {
                changes: metadata.map(|m| m.changes).unwrap_or_default(),
                in_sync: metadata_in_sync,
            },
            migrations: args.table.then_some(rows),
            pending,
            problems,
            schema_drift: drift.map(|(id, d)| json::SchemaDrift::new(id, &d)),
            skipped_folders,
            target: json::Target {
                commit: target_commit,
                reference: target.reference,
            },
            to_revert: revert,
        };
        ctx.ui.out(&json::text(&doc));
    } else {
        let env_lines = match &ctx.env {
            Some(env) => env_lines(ctx, env, &state, &mut client),
            None => vec![],
        };
        let table = if args.table {
            table_lines(&ctx.repo, &rows)
        } else {
            vec![]
        };
        let view = TextView {
            db: db.redacted(),
            state: &state,
            unadopted: unadopted.as_ref().map(|u| u.line()),
            env_lines,
            target_reference: &target.reference,
            target_commit: target_commit.as_deref(),
            pending: &pending,
            revert: &revert,
            drift: drift.as_ref(),
            skipped_folders: &skipped_folders,
            accepted: &accepted,
            problems: &problems,
            table,
            metadata: metadata.as_ref(),
            metadata_in_sync,
            in_sync,
            rev: args.rev.as_deref().unwrap_or("HEAD"),
        };
        for l in text_lines(&view, &ctx.repo) {
            ctx.ui.out(&l);
        }
    }
    if args.exit_code && !in_sync {
        return Err(CommandError::new(Kind::Findings, ""));
    }
    Ok(())
}

/// The rows of Hasura's `migrate status` table: every version of the target or the database,
/// ascending.
fn version_rows(
    target: &TargetProject,
    live: &git_migrate_core::plan::LiveState,
) -> Vec<VersionRow> {
    let mut rows: std::collections::BTreeMap<git_migrate_core::project::Version, VersionRow> =
        std::collections::BTreeMap::new();
    if let Some(p) = &target.project {
        for m in p.migrations.iter() {
            rows.insert(
                m.version,
                VersionRow {
                    version: m.version,
                    name: m.name.clone(),
                    source: true,
                    database: false,
                    applied_commit: None,
                    checksum: "",
                },
            );
        }
    }
    for a in live.applied.values() {
        let m = target
            .project
            .as_ref()
            .and_then(|p| p.migrations.get(a.version));
        let checksum = match m {
            None => "",
            Some(m) if a.folder_tree.is_some() && a.folder_tree == m.tree => "ok",
            Some(m) => match (m.up.as_ref(), a.up_blob.as_deref()) {
                (Some(up), Some(b)) if up.blob == b => "ok",
                (Some(_), Some(_)) => "changed",
                _ => "unknown",
            },
        };
        let row = rows.entry(a.version).or_insert_with(|| VersionRow {
            version: a.version,
            name: a.name.clone(),
            source: false,
            database: false,
            applied_commit: None,
            checksum: "",
        });
        row.database = true;
        row.applied_commit = a.applied_commit.clone();
        row.checksum = checksum;
    }
    rows.into_values().collect()
}

fn table_lines(repo: &git_migrate_core::source::Repo, rows: &[VersionRow]) -> Vec<String> {
    let present = |b: bool| if b { "Present" } else { "Not Present" };
    // Most rows share a handful of commits.
    let names = super::render::DescribeOnce::new(repo);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.version.to_string(),
                if r.source { r.name.clone() } else { "-".into() },
                present(r.source).into(),
                present(r.database).into(),
                r.applied_commit
                    .as_deref()
                    .map(|c| names.describe(c))
                    .unwrap_or_else(|| "-".into()),
                if r.checksum.is_empty() {
                    "-".into()
                } else {
                    r.checksum.into()
                },
            ]
        })
        .collect();
    let head = [
        "VERSION",
        "NAME",
        "SOURCE STATUS",
        "DATABASE STATUS",
        "APPLIED FROM",
        "CHECKSUM",
    ];
    let mut w = head.map(str::len);
    for c in &cells {
        for (i, x) in c.iter().enumerate() {
            w[i] = w[i].max(x.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        c.iter()
            .enumerate()
            .map(|(i, x)| format!("{x:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(head)];
    for c in &cells {
        out.push(line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]]));
    }
    out
}

/// Release facts about the commit a database is at: tags, the first tag containing it, how far
/// HEAD is ahead, and the newest deployment of any status (a failed attempt shows here).
fn env_facts(
    ctx: &Ctx,
    state: &git_migrate_core::ledger::DbState,
    client: &mut postgres::Client,
) -> (
    Vec<String>,
    Option<String>,
    Option<usize>,
    Option<git_migrate_core::ledger::DeploymentSummary>,
) {
    let oid = state
        .live
        .deployed_commit
        .as_deref()
        .filter(|c| ctx.repo.has_commit(c))
        .and_then(|c| git2::Oid::from_str(c).ok());
    let (tags, contained, behind) = match oid {
        Some(o) => (
            ctx.repo.tags_at(o),
            ctx.repo.first_tag_containing(o),
            ctx.repo
                .resolve_commit("HEAD")
                .ok()
                .and_then(|h| ctx.repo.commits_between(o, h)),
        ),
        None => (vec![], None, None),
    };
    let newest = if state.live.ledger_exists {
        ctx.ledger()
            .history(client, 1)
            .ok()
            .and_then(|h| h.into_iter().next())
    } else {
        None
    };
    (tags, contained, behind, newest)
}

fn env_lines(
    ctx: &Ctx,
    env: &git_migrate_core::config::Environment,
    state: &git_migrate_core::ledger::DbState,
    client: &mut postgres::Client,
) -> Vec<String> {
    let (tags, contained, behind, newest) = env_facts(ctx, state, client);
    let mut out = vec![format!(
        "environment {}{}{}",
        env.name,
        env.require_tag
            .as_deref()
            .map(|g| format!(" (requires a tag matching {g:?})"))
            .unwrap_or_default(),
        env.promote_from
            .as_deref()
            .map(|f| format!(", promoted from {f}"))
            .unwrap_or_default()
    )];
    if state.live.deployed_commit.is_some() {
        let release = match (tags.is_empty(), &contained) {
            (false, _) => format!("release     {}", tags.join(", ")),
            (true, Some(t)) => format!("release     untagged; first released in {t}"),
            (true, None) => "release     untagged; in no release yet".to_string(),
        };
        out.push(match behind {
            Some(0) => format!("{release}; HEAD is here"),
            Some(n) => format!("{release}; HEAD is {n} commit(s) ahead"),
            None => format!("{release}; HEAD does not descend from it"),
        });
    }
    if let Some(d) = newest.filter(|d| d.status != "ok") {
        out.push(format!(
            "last try    #{} {} {} at {} by {}: {}",
            d.id,
            d.kind,
            d.target_ref.as_deref().unwrap_or(""),
            d.started_at,
            d.actor.as_deref().unwrap_or("unknown"),
            d.status.to_uppercase()
        ));
    }
    out
}

fn env_json(
    ctx: &Ctx,
    env: &git_migrate_core::config::Environment,
    state: &git_migrate_core::ledger::DbState,
    client: &mut postgres::Client,
) -> json::EnvironmentFacts {
    let (tags, contained, behind, newest) = env_facts(ctx, state, client);
    json::EnvironmentFacts::new(env, tags, contained, behind, newest)
}

/// `status --all-envs`: one row per environment.
fn all_envs(ctx: &Ctx) -> Result<(), CommandError> {
    if ctx.config.environments.is_empty() {
        return Err(CommandError::new(
            Kind::Usage,
            "status --all-envs: no environments are defined",
        )
        .hint("define environments in git-migrate.yaml (see docs/promotion.md)"));
    }
    let states: Vec<_> = ctx
        .config
        .environments
        .iter()
        .map(|e| super::environments::read_env(ctx, e))
        .collect();
    let unread = states.iter().any(|s| s.error.is_some());
    if ctx.json {
        let doc = json::AllEnvsDoc {
            environments: states,
        };
        ctx.ui.out(&json::text(&doc));
    } else {
        for l in super::environments::env_table(&states) {
            ctx.ui.out(&l);
        }
    }
    if unread {
        return Err(CommandError::new(
            Kind::Failure,
            "some environments could not be read, or their databases are not at one commit (see the table)",
        ));
    }
    Ok(())
}
/// What the text of `status` shows, gathered first.
struct TextView<'a> {
    db: String,
    state: &'a git_migrate_core::ledger::DbState,
    /// The `deployed` line of a database the Hasura CLI manages, not adopted yet.
    unadopted: Option<String>,
    env_lines: Vec<String>,
    target_reference: &'a str,
    target_commit: Option<&'a str>,
    pending: &'a [json::VersionName],
    revert: &'a [json::VersionName],
    drift: Option<&'a (i64, Vec<git_migrate_core::verify::fingerprint::Difference>)>,
    skipped_folders: &'a [String],
    accepted: &'a [String],
    problems: &'a [git_migrate_core::plan::Problem],
    table: Vec<String>,
    metadata: Option<&'a git_migrate_core::plan::MetadataPlan>,
    metadata_in_sync: bool,
    in_sync: bool,
    /// The revision as typed, for the `plan` hint.
    rev: &'a str,
}

/// The text of `status` (pure: the view in, lines out).
fn text_lines(v: &TextView<'_>, names: &impl CommitNames) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!("database    {}", v.db));
    match (&v.state.last, &v.state.live.deployed_commit) {
        _ if v.unadopted.is_some() => out.push(format!(
            "deployed    {}",
            v.unadopted.as_deref().unwrap_or_default()
        )),
        (Some(last), None) if last.kind == "adopt" => out.push(format!(
            "deployed    no single commit: adopted from the Hasura CLI's state, which matches no revision exactly ({} #{})",
            last.kind, last.id
        )),
        (Some(last), Some(c)) => out.push(format!(
            "deployed    {}{} by {} at {} ({} #{})",
            names.describe(c),
            if v.state.live.deployed_dirty {
                " + uncommitted changes"
            } else {
                ""
            },
            last.actor.as_deref().unwrap_or("unknown"),
            last.started_at,
            last.kind,
            last.id
        )),
        (Some(last), None) => out.push(format!(
            "deployed    the empty state ({} #{})",
            last.kind, last.id
        )),
        _ if v.state.live.ledger_exists => out.push("deployed    nothing recorded yet".into()),
        _ => out.push("deployed    nothing (no git-migrate ledger in this database yet)".into()),
    }
    out.extend(v.env_lines.iter().cloned());
    out.push(format!(
        "target      {}{}",
        v.target_reference,
        v.target_commit
            .map(|c| format!(" = {}", names.describe(c)))
            .unwrap_or_default()
    ));
    out.push(format!(
        "migrations  {} applied, {} pending, {} to revert",
        v.state.live.applied.len(),
        v.pending.len(),
        v.revert.len()
    ));
    for r in v.revert {
        out.push(format!(
            "  revert    {}_{}  (applied, not in {})",
            r.version, r.name, v.target_reference
        ));
    }
    for p in v.pending {
        out.push(format!("  pending   {}_{}", p.version, p.name));
    }
    if let Some((id, differences)) = v.drift {
        out.push(format!(
            "drift       the schema changed outside git-migrate since deployment #{id}: {} object(s)",
            differences.len()
        ));
        for d in differences.iter().take(40) {
            out.push(format!("  changed   {}", d.against_recorded()));
        }
        if differences.len() > 40 {
            out.push(format!("  … and {} more", differences.len() - 40));
        }
    }
    if !v.skipped_folders.is_empty() {
        out.push(format!(
            "skipped     {} folder(s) that hold no up.sql or up.yaml: {}",
            v.skipped_folders.len(),
            v.skipped_folders.join(", ")
        ));
    }
    for a in v.accepted {
        out.push(format!("  edited    {a}"));
    }
    out.extend(problem_lines(v.problems));
    out.extend(v.table.iter().cloned());
    match v.metadata {
        None if v.metadata_in_sync => out.push("metadata    in sync".into()),
        None => out.push("metadata    differs".into()),
        Some(m) => {
            out.push(format!(
                "metadata    {} change(s) pending",
                m.changes.len().max(1)
            ));
            for c in &m.changes {
                out.push(format!("  {c}"));
            }
        }
    }
    if v.in_sync {
        out.push(format!("in sync with {}", v.target_reference));
    } else {
        out.push(format!(
            "out of sync: run `git migrate plan {}` to see what a deploy would do",
            v.rev
        ));
    }
    out
}
