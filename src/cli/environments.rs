//! Environments (design §4, §9): which commits an environment accepts (`require_tag`), and
//! what each environment's database is at (`status --all-envs`, `promote`).

use super::error::CommandError;
use super::json::EnvState;
use super::Ctx;
use git_migrate_core::config::Environment;
use git_migrate_core::plan::{EnvironmentRules, PromotedFact};
use git_migrate_core::source::{short, Repo};

/// What `--env`'s rules need to know of the target, for the planner to decide
/// ([`git_migrate_core::plan::EnvironmentRules`]): the target commit's tags and, for a deploy to
/// an environment promoted from another, whether that one ran the commit (read from its
/// database).
pub(crate) fn environment_facts(
    ctx: &Ctx,
    commit: Option<&str>,
    deploy: bool,
) -> Result<Option<EnvironmentRules>, CommandError> {
    let Some(env) = &ctx.env else {
        return Ok(None);
    };
    let tags = commit
        .and_then(|c| git2::Oid::from_str(c).ok())
        .map(|oid| ctx.repo.tags_at(oid))
        .unwrap_or_default();
    let promoted = match (&env.promote_from, commit) {
        (Some(from_name), Some(commit)) if deploy => Some(promoted(ctx, from_name, commit)?),
        _ => None,
    };
    Ok(Some(EnvironmentRules {
        environment: env.clone(),
        commit: commit.map(str::to_string),
        tags,
        promoted,
    }))
}

/// Whether environment `from_name` ran `commit`: a successful deployment of its history reached
/// it.
fn promoted(ctx: &Ctx, from_name: &str, commit: &str) -> Result<PromotedFact, CommandError> {
    let from = super::find_env(&ctx.config, from_name)?;
    let targets = match super::fleet::env_targets(ctx, &from) {
        Ok(t) => t,
        Err(e) => {
            return Ok(PromotedFact::Unreachable {
                why: e.message,
                causes: e.causes,
            })
        }
    };
    // Of a fleet, every database must have run it.
    for target in targets {
        let mut client = match ctx.connect_target(target) {
            Ok((_, c)) => c,
            Err(e) => {
                return Ok(PromotedFact::Unreachable {
                    why: e.message,
                    causes: e.causes,
                })
            }
        };
        if !ctx.ledger().reached(&mut client, commit)? {
            return Ok(PromotedFact::NeverRan);
        }
    }
    Ok(PromotedFact::Ran)
}

/// Reads an environment's state (connects to its database; changes nothing).
pub(crate) fn read_env(ctx: &Ctx, env: &Environment) -> EnvState {
    if env.is_fleet() {
        let mut out = super::fleet::env_state(ctx, env);
        if let Some(c) = out.commit.clone() {
            describe_into(&ctx.repo, &c, &mut out);
        }
        return out;
    }
    let mut out = EnvState::named(&env.name);
    let (target, mut client) = match ctx.connect_env(env) {
        Ok(tc) => tc,
        Err(e) => {
            out.database = ctx
                .env_target(env)
                .map(|t| t.redacted())
                .unwrap_or_default();
            out.error = Some(e.one_line());
            return out;
        }
    };
    out.database = target.redacted();
    let ledger = ctx.ledger();
    let state = match ledger.read(&mut client) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(super::ui::scrub(&e.to_string()));
            return out;
        }
    };
    out.dirty = state.live.dirty_versions();
    if state.live.ledger_exists {
        out.last = ledger
            .history(&mut client, 1)
            .ok()
            .and_then(|h| h.into_iter().next());
    }
    out.commit = state.live.deployed_commit.clone();
    if let Some(c) = out.commit.clone() {
        describe_into(&ctx.repo, &c, &mut out);
    }
    out
}

fn describe_into(repo: &Repo, commit: &str, out: &mut EnvState) {
    let Ok(oid) = git2::Oid::from_str(commit) else {
        return;
    };
    if !repo.has_commit(commit) {
        return;
    }
    out.tags = repo.tags_at(oid);
    out.describe = Some(super::render::describe_commit(repo, commit));
    out.contained_in = repo.first_tag_containing(oid);
    if let Ok(head) = repo.resolve_commit("HEAD") {
        out.behind_head = repo.commits_between(oid, head);
    }
}

/// The `status --all-envs` table (pure: states in, lines out).
pub(crate) fn env_table(states: &[EnvState]) -> Vec<String> {
    let rows: Vec<[String; 5]> = states
        .iter()
        .map(|s| {
            if let Some(e) = &s.error {
                return [
                    s.name.clone(),
                    "?".into(),
                    "?".into(),
                    "?".into(),
                    format!("error: {e}"),
                ];
            }
            let commit = s.commit.as_deref().map(short).unwrap_or_else(|| "-".into());
            let tag = if !s.tags.is_empty() {
                s.tags.join(",")
            } else if let Some(d) = &s.describe {
                d.split(' ').next().unwrap_or("-").to_string()
            } else {
                "-".into()
            };
            let behind = match (s.commit.is_some(), s.behind_head) {
                (false, _) => "-".into(),
                (true, Some(n)) => n.to_string(),
                (true, None) => "diverged".into(),
            };
            let mut last = match &s.last {
                Some(d) => format!(
                    "#{} {} {} by {} {}",
                    d.id,
                    d.kind,
                    d.status,
                    d.actor.as_deref().unwrap_or("unknown"),
                    d.started_at
                ),
                None => "never deployed".into(),
            };
            if !s.dirty.is_empty() {
                last.push_str(&format!(" (dirty: {:?})", s.dirty));
            }
            [s.name.clone(), commit, tag, behind, last]
        })
        .collect();
    let header = [
        "ENVIRONMENT".to_string(),
        "COMMIT".into(),
        "TAG".into(),
        "BEHIND HEAD".into(),
        "LAST DEPLOYMENT".into(),
    ];
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(rows.iter())
        .map(|r| {
            let mut line = String::new();
            for (i, (c, w)) in r.iter().zip(widths).enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<w$}  "));
                }
            }
            line
        })
        .collect()
}
