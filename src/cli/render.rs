//! Rendering plans, states and histories as text (pure: values in, strings out).

use git_migrate_core::plan::{Plan, Problem, Step};
use git_migrate_core::source::{short, Repo};

/// "v1.4.0 (1a2b3c4d5e)" when tagged, "v1.4.0+3 (1a2b3c4d5e)" three first-parent commits after
/// a tag, else the short id.
pub(crate) fn describe_commit(repo: &Repo, commit: &str) -> String {
    let Ok(oid) = git2::Oid::from_str(commit) else {
        return short(commit);
    };
    let tags = repo.tags_at(oid);
    if !tags.is_empty() {
        return format!("{} ({})", tags.join(", "), short(commit));
    }
    if !repo.has_commit(commit) {
        return format!("{} (not in this repository)", short(commit));
    }
    match repo.nearest_tag(oid) {
        Some((tag, n)) => format!("{tag}+{n} ({})", short(commit)),
        None => short(commit),
    }
}

/// "REV = description", or just the description when it already starts with REV
/// ("v1.4.0 (1a2b3c4d5e)" rather than "v1.4.0 = v1.4.0 (1a2b3c4d5e)").
pub fn label(repo: &Repo, rev: &str, commit: &str) -> String {
    let d = describe_commit(repo, commit);
    if d.starts_with(rev) {
        d
    } else {
        format!("{rev} = {d}")
    }
}

/// Lines describing a plan.
/// `segmented`: some steps run outside a transaction (no-transaction migrations), so the plan
/// commits in several transactions around them.
pub(crate) fn plan_lines(repo: &Repo, plan: &Plan, show_sql: bool, segmented: bool) -> Vec<String> {
    let mut out = Vec::new();
    let to = match &plan.to_commit {
        Some(c) => {
            let mut s = label(repo, &plan.target_ref, c);
            if let Some(summary) = git2::Oid::from_str(c).ok().and_then(|o| repo.summary(o)) {
                s.push_str(&format!(" \"{summary}\""));
            }
            if plan.dirty {
                s.push_str(" + uncommitted changes");
            }
            s
        }
        None => plan.target_ref.clone(),
    };
    let from = match &plan.from_commit {
        Some(c) => format!("at {}", describe_commit(repo, c)),
        None => "nothing deployed yet".into(),
    };
    out.push(match plan.mode {
        git_migrate_core::plan::Mode::Deploy => format!("Plan: deploy to {to}"),
        git_migrate_core::plan::Mode::Rollback => format!("Plan: rollback to {to}"),
        git_migrate_core::plan::Mode::Metadata => format!("Plan: apply the metadata of {to}"),
        git_migrate_core::plan::Mode::Apply => {
            format!("Plan: apply migrations of {to} (metadata left as it is)")
        }
    });
    out.push(format!("  database: {from}"));
    for step in &plan.steps {
        match step {
            Step::Revert {
                version,
                name,
                down,
                noop,
                sql,
                ..
            } => {
                out.push(format!(
                    "  revert  {version}_{name}  (down from {down}{})",
                    if *noop {
                        "; empty: recorded without running"
                    } else {
                        ""
                    }
                ));
                if show_sql {
                    out.extend(sql.lines().map(|l| format!("          | {l}")));
                }
            }
            Step::Apply {
                version,
                name,
                out_of_order,
                ..
            } => {
                let note = out_of_order
                    .as_ref()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default();
                out.push(format!("  apply   {version}_{name}{note}"));
            }
        }
    }
    if !plan.destroys.is_empty() {
        out.push("  destroys data (computed downs):".into());
        out.extend(plan.destroys.iter().map(|d| format!("    {d}")));
    }
    if let Some(m) = &plan.metadata {
        out.push(format!("  metadata: {} change(s)", m.changes.len().max(1)));
        for c in &m.changes {
            out.push(format!("    {c}"));
        }
    }
    let n = plan.steps.len();
    if plan.is_noop() {
        out.push("  nothing to change".into());
    } else {
        out.push(format!(
            "  {n} migration step(s){}, {}",
            if plan.metadata.is_some() {
                " and a metadata update"
            } else {
                ""
            },
            if segmented {
                "in transactions around the step(s) that run outside one"
            } else {
                "in one transaction"
            }
        ));
    }
    out
}

/// Lines describing planning problems.
pub(crate) fn problem_lines(problems: &[Problem]) -> Vec<String> {
    let mut out = Vec::new();
    for p in problems {
        out.push(format!("  ✗ {}", p.message));
        for c in &p.causes {
            out.push(format!("      {c}"));
        }
    }
    out
}

/// One deployment of `log`: `#12 2026-11-22 10:00:00 UTC deploy v1.3.0 (abc) -> v1.4.0 (def)
/// -0 +3 ok 1.2s by Jane <j@x> (role app)  (target v1.4.0)`, and the error of a failed one.
pub(crate) fn deployment_lines(
    repo: &Repo,
    d: &git_migrate_core::ledger::DeploymentSummary,
) -> Vec<String> {
    let c = |x: &Option<String>| {
        x.as_deref()
            .map(|c| describe_commit(repo, c))
            .unwrap_or_else(|| "(empty)".into())
    };
    let took = d
        .duration_ms
        .map(|ms| {
            if ms < 1000 {
                format!("  {ms}ms")
            } else {
                format!("  {:.1}s", ms as f64 / 1000.0)
            }
        })
        .unwrap_or_default();
    let mut out = vec![format!(
        "#{:<4} {}  {:<8} {} -> {}  -{} +{}  {}{took}  by {}{}",
        d.id,
        d.started_at,
        d.kind,
        c(&d.from_commit),
        c(&d.to_commit),
        d.reverted.len(),
        d.applied.len(),
        d.status,
        d.actor.as_deref().unwrap_or("unknown"),
        d.target_ref
            .as_deref()
            .map(|r| format!("  (target {r})"))
            .unwrap_or_default()
    )];
    if let Some(e) = &d.error {
        out.push(format!("      error: {e}"));
    }
    out
}
