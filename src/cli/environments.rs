//! Environments (design §4, §9): which commits an environment accepts (`require_tag`), and
//! what each environment's database is at (`status --all-envs`, `promote`).

use super::error::{CommandError, Kind};
use super::json::EnvState;
use super::Ctx;
use git_migrate_core::config::Environment;
use git_migrate_core::source::{short, Repo};

/// Why an environment refuses a target, or the tag that lets it in (pure).
pub(crate) fn tag_verdict(
    env: &Environment,
    commit: Option<&str>,
    tags: &[String],
) -> Result<Option<String>, String> {
    let Some(glob) = env.require_tag.as_deref() else {
        return Ok(None);
    };
    let Some(commit) = commit else {
        return Err(format!(
            "environment {} only accepts commits tagged {glob:?}, and this target is not a commit",
            env.name
        ));
    };
    match tags.iter().find(|t| env.accepts_tag(t)) {
        Some(t) => Ok(Some(t.clone())),
        None if tags.is_empty() => Err(format!(
            "environment {} only accepts commits tagged {glob:?}; commit {} has no tag",
            env.name,
            short(commit)
        )),
        None => Err(format!(
            "environment {} only accepts commits tagged {glob:?}; commit {} is tagged {}, which does not match",
            env.name,
            short(commit),
            tags.join(", ")
        )),
    }
}

/// Refuses (exit 3, before anything is read from the database) a target that `--env`'s
/// `require_tag` does not accept; returns the matching tag.
pub(crate) fn check_target(
    ctx: &Ctx,
    commit: Option<&str>,
    reference: &str,
) -> Result<Option<String>, CommandError> {
    let Some(env) = &ctx.env else {
        return Ok(None);
    };
    let tags = commit
        .and_then(|c| git2::Oid::from_str(c).ok())
        .map(|oid| ctx.repo.tags_at(oid))
        .unwrap_or_default();
    tag_verdict(env, commit, &tags).map_err(|why| {
        let mut e = CommandError::new(
            Kind::Refused,
            format!(
                "refusing to move environment {} to {reference}; nothing was changed",
                env.name
            ),
        )
        .cause(why);
        if let Some(c) = commit {
            e = e.hint(format!(
                "tag the release and push the tag: git tag -a v1.2.3 {} && git push origin v1.2.3",
                short(c)
            ));
        }
        e.hint(format!(
            "or promote a release another environment already runs: git migrate promote <from> {}",
            env.name
        ))
    })
}

/// Reads an environment's state (connects to its database; changes nothing).
pub(crate) fn read_env(ctx: &Ctx, env: &Environment) -> EnvState {
    let mut out = EnvState {
        name: env.name.clone(),
        database: String::new(),
        commit: None,
        tags: vec![],
        describe: None,
        contained_in: None,
        behind_head: None,
        last: None,
        dirty: vec![],
        error: None,
    };
    let (target, mut client) = match ctx.connect_env(env) {
        Ok(tc) => tc,
        Err(e) => {
            out.database = ctx
                .env_target(env)
                .map(|t| t.redacted())
                .unwrap_or_default();
            out.error = Some(
                std::iter::once(e.message)
                    .chain(e.causes)
                    .collect::<Vec<_>>()
                    .join(": "),
            );
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
    out.dirty = state
        .live
        .applied
        .values()
        .filter(|a| a.dirty)
        .map(|a| a.version)
        .collect();
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

/// With `promote_from`, a deploy to this environment must be a commit the source environment
/// has run successfully (staging before production). Rollbacks are exempt: they return to a
/// release this environment ran before, and must work when staging is down at 3 a.m.
pub(crate) fn check_promoted(ctx: &Ctx, commit: Option<&str>) -> Result<(), CommandError> {
    let (Some(env), Some(commit)) = (&ctx.env, commit) else {
        return Ok(());
    };
    let Some(from_name) = &env.promote_from else {
        return Ok(());
    };
    let from = super::find_env(&ctx.config, from_name)?;
    let refuse = |why: String| {
        CommandError::new(
            Kind::Refused,
            format!(
                "refusing to deploy {} to {}; nothing was changed",
                short(commit),
                env.name
            ),
        )
        .cause(why)
        .hint(format!(
            "deploy it to {from_name} first, then: git migrate promote {from_name} {}",
            env.name
        ))
        .hint(format!(
            "(break glass: --database-url instead of --env {} skips the environment's rules)",
            env.name
        ))
    };
    let (_, mut client) = ctx.connect_env(&from).map_err(|e| {
        let mut r = refuse(format!(
            "{} is promoted from {from_name}, whose database cannot be reached to check that it ran this commit: {}",
            env.name, e.message
        ));
        r.causes.extend(e.causes);
        r
    })?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    let history = if state.live.ledger_exists {
        ledger.history(&mut client, 100_000)?
    } else {
        vec![]
    };
    if history
        .iter()
        .any(|d| d.status == "ok" && d.to_commit.as_deref() == Some(commit))
    {
        return Ok(());
    }
    Err(refuse(format!(
        "{} is promoted from {from_name}, and {from_name} has never run {}",
        env.name,
        short(commit)
    )))
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
