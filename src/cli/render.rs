//! Rendering plans, states and histories as text (pure: values in, strings out). What the text
//! says about commits (tags, subjects) comes through [`CommitNames`], which the repository
//! answers and the unit tests answer from a table.

use git_migrate_core::plan::{Plan, Problem, Step};
use git_migrate_core::source::{short, Repo};

/// What rendering needs to know of commits.
pub(crate) trait CommitNames {
    /// "v1.4.0 (1a2b3c4d5e)", see [`describe_commit`].
    fn describe(&self, commit: &str) -> String;
    /// The commit's subject line.
    fn summary(&self, commit: &str) -> Option<String>;
}

impl CommitNames for Repo {
    fn describe(&self, commit: &str) -> String {
        describe_commit(self, commit)
    }

    fn summary(&self, commit: &str) -> Option<String> {
        git2::Oid::from_str(commit)
            .ok()
            .and_then(|o| Repo::summary(self, o))
    }
}

/// A repository's commit names, each commit described once: a table of many rows (a fleet's
/// databases, `status --table`'s versions) names a handful of commits many times, and each
/// `describe` walks the tags.
pub(crate) struct DescribeOnce<'a> {
    repo: &'a Repo,
    seen: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

impl<'a> DescribeOnce<'a> {
    /// Names the commits of `repo`.
    pub(crate) fn new(repo: &'a Repo) -> Self {
        DescribeOnce {
            repo,
            seen: Default::default(),
        }
    }
}

impl CommitNames for DescribeOnce<'_> {
    fn describe(&self, commit: &str) -> String {
        self.seen
            .borrow_mut()
            .entry(commit.to_string())
            .or_insert_with(|| describe_commit(self.repo, commit))
            .clone()
    }

    fn summary(&self, commit: &str) -> Option<String> {
        CommitNames::summary(self.repo, commit)
    }
}

/// `git migrate diff`'s text: a SQL script (the schema statements, run in one transaction,
/// from `from` to `to`) whose comments name each object, then the metadata changes as
/// comments, so the whole output stays a script `psql -1 -f` runs. `None`: that part was left
/// out.
pub(crate) fn diff_text(
    from: &str,
    to: &str,
    statements: Option<&[git_migrate_core::schema::Statement]>,
    metadata: Option<&[git_migrate_core::metadata::MetadataChange]>,
) -> String {
    let mut out = format!("-- git migrate diff: {from} -> {to}\n");
    match statements {
        None => {}
        Some([]) => out.push_str("-- schema: no differences\n"),
        Some(st) => {
            let objects: std::collections::BTreeSet<_> = st.iter().map(|s| &s.object).collect();
            out.push_str(&format!(
                "-- schema: {} statement(s) on {} object(s); run them in one transaction\n\n",
                st.len(),
                objects.len()
            ));
            out.push_str(&git_migrate_core::schema::script(st));
        }
    }
    match metadata {
        None => {}
        Some([]) => out.push_str("-- metadata: no differences\n"),
        Some(changes) => {
            out.push_str(&format!("-- metadata: {} change(s)\n", changes.len()));
            for c in changes {
                out.push_str(&format!("--   {c}\n"));
            }
        }
    }
    out.trim_end().to_string()
}

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
pub fn label(names: &impl CommitNames, rev: &str, commit: &str) -> String {
    let d = names.describe(commit);
    if d.starts_with(rev) {
        d
    } else {
        format!("{rev} = {d}")
    }
}

/// Lines describing a plan.
/// `segmented`: some steps run outside a transaction (no-transaction migrations), so the plan
/// commits in several transactions around them.
pub(crate) fn plan_lines(
    names: &impl CommitNames,
    plan: &Plan,
    show_sql: bool,
    segmented: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let to = match &plan.to_commit {
        Some(c) => {
            let mut s = label(names, &plan.target_ref, c);
            if let Some(summary) = names.summary(c) {
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
        Some(c) => format!("at {}", names.describe(c)),
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
    names: &impl CommitNames,
    d: &git_migrate_core::ledger::DeploymentSummary,
) -> Vec<String> {
    let c = |x: &Option<String>| {
        x.as_deref()
            .map(|c| names.describe(c))
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

#[cfg(test)]
mod tests {
    use super::*;
    use git_migrate_core::plan::{DownOrigin, MetadataPlan, Mode, ProblemKind};
    use std::collections::HashMap;

    /// Commits named from a table, as a repository would name them.
    struct Names(HashMap<&'static str, (&'static str, Option<&'static str>)>);

    impl CommitNames for Names {
        fn describe(&self, commit: &str) -> String {
            self.0
                .get(commit)
                .map(|(d, _)| d.to_string())
                .unwrap_or_else(|| short(commit))
        }

        fn summary(&self, commit: &str) -> Option<String> {
            self.0.get(commit).and_then(|(_, s)| s.map(str::to_string))
        }
    }

    fn names() -> Names {
        Names(HashMap::from([
            ("to", ("v2.0.0 (to)", Some("Reviews"))),
            ("from", ("v1.0.0 (from)", None)),
        ]))
    }

    fn plan(mode: Mode, steps: Vec<Step>) -> Plan {
        Plan {
            mode,
            target_ref: "v2.0.0".into(),
            from_commit: Some("from".into()),
            to_commit: Some("to".into()),
            dirty: false,
            steps,
            metadata: None,
            warnings: vec![],
            accepted: vec![],
            destroys: vec![],
            capture: vec![],
        }
    }

    fn revert(version: i64, noop: bool, sql: &str) -> Step {
        Step::Revert {
            version,
            name: "orders".into(),
            down: DownOrigin::Nowhere,
            down_sha256: String::new(),
            noop,
            sql: sql.into(),
        }
    }

    fn apply(version: i64, out_of_order: Option<&str>) -> Step {
        Step::Apply {
            version,
            name: "reviews".into(),
            location: format!("migrations/{version}_reviews"),
            up_path: format!("migrations/{version}_reviews/up.sql"),
            up_blob: "b".into(),
            down: None,
            out_of_order: out_of_order.map(str::to_string),
        }
    }

    #[test]
    fn a_plan_names_its_target_source_steps_and_transactions() {
        let down = DownOrigin::Nowhere.to_string();
        let mut p = plan(
            Mode::Deploy,
            vec![
                revert(2, false, "DROP TABLE orders;\nSELECT 1;"),
                revert(1, true, ""),
                apply(3, Some("out of order")),
            ],
        );
        p.destroys = vec!["2_orders: table public.orders (about 10 rows)".into()];
        p.metadata = Some(MetadataPlan {
            from_sha256: None,
            to_sha256: "sha".into(),
            changes: vec![],
        });
        assert_eq!(
            plan_lines(&names(), &p, true, false),
            vec![
                "Plan: deploy to v2.0.0 (to) \"Reviews\"".to_string(),
                "  database: at v1.0.0 (from)".into(),
                format!("  revert  2_orders  (down from {down})"),
                "          | DROP TABLE orders;".into(),
                "          | SELECT 1;".into(),
                format!("  revert  1_orders  (down from {down}; empty: recorded without running)"),
                "  apply   3_reviews  (out of order)".into(),
                "  destroys data (computed downs):".into(),
                "    2_orders: table public.orders (about 10 rows)".into(),
                "  metadata: 1 change(s)".into(),
                "  3 migration step(s) and a metadata update, in one transaction".into(),
            ]
        );
        // Without --sql the SQL stays out; segmented plans say so.
        let lines = plan_lines(&names(), &p, false, true);
        assert!(!lines.iter().any(|l| l.contains("DROP TABLE")), "{lines:?}");
        assert!(
            lines
                .last()
                .unwrap()
                .ends_with("in transactions around the step(s) that run outside one"),
            "{lines:?}"
        );
    }

    #[test]
    fn each_mode_has_its_own_first_line_and_an_empty_plan_says_so() {
        let first = |mode| plan_lines(&names(), &plan(mode, vec![]), false, false)[0].clone();
        assert_eq!(
            first(Mode::Deploy),
            "Plan: deploy to v2.0.0 (to) \"Reviews\""
        );
        assert_eq!(
            first(Mode::Rollback),
            "Plan: rollback to v2.0.0 (to) \"Reviews\""
        );
        assert_eq!(
            first(Mode::Metadata),
            "Plan: apply the metadata of v2.0.0 (to) \"Reviews\""
        );
        assert_eq!(
            first(Mode::Apply),
            "Plan: apply migrations of v2.0.0 (to) \"Reviews\" (metadata left as it is)"
        );
        let mut p = plan(Mode::Deploy, vec![]);
        p.from_commit = None;
        p.to_commit = None;
        p.target_ref = "HEAD".into();
        assert_eq!(
            plan_lines(&names(), &p, false, false),
            vec![
                "Plan: deploy to HEAD",
                "  database: nothing deployed yet",
                "  nothing to change"
            ]
        );
        // A label does not repeat a revision that its description already starts with.
        assert_eq!(label(&names(), "v2.0.0", "to"), "v2.0.0 (to)");
        assert_eq!(label(&names(), "HEAD", "to"), "HEAD = v2.0.0 (to)");
    }

    #[test]
    fn problems_and_deployments_render_one_line_each_with_details_below() {
        let problems = vec![Problem {
            kind: ProblemKind::MissingDown,
            version: Some(2),
            message: "cannot revert 2_orders: it has no down migration".into(),
            causes: vec!["looked in v1.0.0".into()],
            hints: vec!["not shown here".into()],
        }];
        assert_eq!(
            problem_lines(&problems),
            vec![
                "  ✗ cannot revert 2_orders: it has no down migration",
                "      looked in v1.0.0"
            ]
        );
        let d = git_migrate_core::ledger::DeploymentSummary {
            id: 12,
            kind: "deploy".into(),
            target_ref: Some("v2.0.0".into()),
            from_commit: Some("from".into()),
            to_commit: Some("to".into()),
            started_at: "2026-11-22 10:00:00 UTC".into(),
            actor: Some("Jane <j@x> (role app)".into()),
            worktree_dirty: false,
            reverted: vec![],
            applied: vec![3, 4, 5],
            status: "failed".into(),
            duration_ms: Some(1234),
            error: Some("relation \"x\" does not exist".into()),
        };
        assert_eq!(
            deployment_lines(&names(), &d),
            vec![
                "#12   2026-11-22 10:00:00 UTC  deploy   v1.0.0 (from) -> v2.0.0 (to)  -0 +3  failed  1.2s  by Jane <j@x> (role app)  (target v2.0.0)",
                "      error: relation \"x\" does not exist",
            ]
        );
        let quick = git_migrate_core::ledger::DeploymentSummary {
            duration_ms: Some(53),
            from_commit: None,
            error: None,
            ..d
        };
        assert!(deployment_lines(&names(), &quick)[0].contains("(empty) -> v2.0.0 (to)"));
        assert!(deployment_lines(&names(), &quick)[0].contains("  53ms  "));
    }
}
