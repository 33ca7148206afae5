//! The command layer's error: a kind (which picks the exit code), a message, causes and hints.

use git_migrate_core::execute::ExecError;
use git_migrate_core::gather::GatherError;
use git_migrate_core::ledger::LedgerError;
use git_migrate_core::plan::Problem;
use git_migrate_core::source::SourceError;

/// Exit codes (design §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 1: findings or drift (`status --exit-code`).
    Findings = 1,
    /// 2: usage or configuration error.
    Usage = 2,
    /// 3: plan refused (policy, missing down, out of order, modified, not confirmed).
    Refused = 3,
    /// 4: database or git failure (deploy rolled back).
    Failure = 4,
    /// 5: lock not acquired in time.
    Lock = 5,
    /// 130: interrupted by Ctrl-C (the open transaction was rolled back).
    Interrupted = 130,
}

/// An error on its way to the terminal.
#[derive(Debug)]
pub(crate) struct CommandError {
    /// Kind, hence exit code.
    pub kind: Kind,
    /// `error: …`
    pub message: String,
    /// `caused by: …`
    pub causes: Vec<String>,
    /// `hint: …`
    pub hints: Vec<String>,
    /// Machine-readable details for `--json`.
    pub problems: Vec<Problem>,
    /// The command printed its `--json` document already (a fleet's, which holds each
    /// database's error): no error document follows it on stdout.
    pub document_printed: bool,
}

/// The one way past a plan file that no longer holds (`deploy --plan`).
pub(crate) const PLAN_FILE_HINT: &str =
    "make a new plan and review it: git migrate plan <rev> --out FILE";

impl CommandError {
    /// A new error.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
            causes: vec![],
            hints: vec![],
            problems: vec![],
            document_printed: false,
        }
    }

    /// With `--json`, the command's document already says what failed (see
    /// [`CommandError::document_printed`]).
    pub(crate) fn quiet_in_json(mut self) -> Self {
        self.document_printed = true;
        self
    }

    /// The message and its causes on one line (for a table cell).
    pub(crate) fn one_line(&self) -> String {
        std::iter::once(self.message.as_str())
            .chain(self.causes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// Adds a cause line.
    pub(crate) fn cause(mut self, c: impl Into<String>) -> Self {
        self.causes.push(c.into());
        self
    }

    /// Adds a hint line.
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hints.push(h.into());
        self
    }

    /// From the planner's problems: one error listing all of them.
    pub fn refused(what: &str, problems: Vec<Problem>) -> Self {
        let mut e = CommandError::new(
            Kind::Refused,
            format!("{what}: {} problem(s), nothing was changed", problems.len()),
        );
        for p in &problems {
            e.causes.push(p.message.clone());
            for c in &p.causes {
                e.causes.push(format!("  {c}"));
            }
            for h in &p.hints {
                if !e.hints.contains(h) {
                    e.hints.push(h.clone());
                }
            }
        }
        e.problems = problems;
        e
    }
}

fn chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = e.source();
    while let Some(c) = s {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push(text);
        }
        s = c.source();
    }
    out
}

impl From<SourceError> for CommandError {
    fn from(e: SourceError) -> Self {
        let kind = match &e {
            SourceError::Open { .. }
            | SourceError::NoCommits { .. }
            | SourceError::ProjectOutside(_)
            | SourceError::UnknownRevision { .. }
            | SourceError::NotACommit { .. }
            | SourceError::Bare { .. }
            | SourceError::Project(_)
            | SourceError::Config(_)
            | SourceError::Unfollowed { .. }
            | SourceError::Layout { .. } => Kind::Usage,
            _ => Kind::Failure,
        };
        let mut ce = CommandError::new(kind, e.to_string());
        if let SourceError::Layout { problems, .. } = &e {
            ce.causes = problems.iter().map(|p| p.to_string()).collect();
        } else {
            ce.causes = chain(&e);
        }
        match &e {
            SourceError::Open { .. } => {
                ce.hints
                    .push("run inside a git repository or pass -C <path>".into());
                if ce
                    .causes
                    .iter()
                    .any(|c| c.contains("not owned by current user"))
                {
                    ce.hints.push("the repository belongs to another user: add it with `git config --global --add safe.directory <path>`".into());
                }
            }
            SourceError::UnknownRevision { .. } => ce.hints.push(
                "check the name with `git rev-parse <rev>`; fetch tags with `git fetch --tags`"
                    .into(),
            ),
            SourceError::MissingCommit { .. } => ce
                .hints
                .push("CI clones are often shallow: use fetch-depth: 0".into()),
            SourceError::Project(p) if p.is_database() => {}
            SourceError::Project(_) | SourceError::ProjectOutside(_) => ce
                .hints
                .push("pass --project <dir> to name the folder that holds config.yaml".into()),
            SourceError::Config(git_migrate_core::config::HasuraConfigError::Missing { .. }) => ce
                .hints
                .push("check --project / git-migrate.yaml `project:`; it must name the folder holding config.yaml at that revision".into()),
            SourceError::Config(_) => ce
                .hints
                .push("fix config.yaml in a new commit (see docs for the keys git-migrate reads)".into()),
            SourceError::NotACommit { .. } => ce
                .hints
                .push("name a commit, a tag or a branch (e.g. v1.4.0, main, HEAD~2)".into()),
            SourceError::NoCommits { .. } => ce
                .hints
                .push("commit the project first; --worktree reads uncommitted files".into()),
            SourceError::Bare { .. } => ce
                .hints
                .push("in a bare repository name a revision instead (e.g. HEAD or a tag)".into()),
            _ => {}
        }
        for h in e.hints() {
            if !ce.hints.contains(&h) {
                ce.hints.push(h);
            }
        }
        ce
    }
}

impl From<LedgerError> for CommandError {
    fn from(e: LedgerError) -> Self {
        let mut ce = CommandError::new(Kind::Failure, e.to_string());
        ce.causes = chain(&e);
        ce.hints = e.hints();
        ce
    }
}

impl From<GatherError> for CommandError {
    fn from(e: GatherError) -> Self {
        match e {
            GatherError::Source(s) => s.into(),
            GatherError::Ledger(l) => l.into(),
            GatherError::Metadata(m) => CommandError::new(Kind::Usage, m.to_string())
                .hint("fix the metadata file in a new commit"),
        }
    }
}

impl From<ExecError> for CommandError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Migration(f) => {
                let git_migrate_core::execute::MigrationFailure {
                    direction,
                    label,
                    file,
                    message,
                    code,
                    position,
                    line_text,
                    extra,
                    blockers,
                    lock_retries,
                    ..
                } = *f;
                let lock_timeout = code == git_migrate_core::execute::LOCK_NOT_AVAILABLE;
                let mut ce = CommandError::new(
                    Kind::Failure,
                    format!("{direction} migration {label} failed; the deployment was rolled back and nothing changed"),
                );
                let loc = match position {
                    Some((l, c)) => format!("{file}:{l}:{c}"),
                    None => file,
                };
                ce.causes.push(format!(
                    "{loc}: {message}{}",
                    if code.is_empty() {
                        String::new()
                    } else {
                        format!(" (SQLSTATE {code})")
                    }
                ));
                if let (Some(t), Some((_, c))) = (line_text, position) {
                    ce.causes.push(format!("  | {t}"));
                    ce.causes
                        .push(format!("  | {}^", " ".repeat(c.saturating_sub(1))));
                }
                ce.causes.extend(extra);
                if lock_timeout {
                    lock_timeout_help(&mut ce, &blockers, lock_retries);
                    return ce;
                }
                ce.hints
                    .push("fix the migration in a new commit and deploy again".into());
                if direction == "down" {
                    ce.hints.push("or pass --compute-downs=all to compute the downs from the schema instead of running the written ones".into());
                }
                ce
            }
            ExecError::LockTimeout { timeout, holder } => {
                let mut ce = CommandError::new(
                    Kind::Lock,
                    format!(
                        "another deployment holds the lock on this database; gave up after {}s",
                        timeout.as_secs()
                    ),
                );
                if let Some(h) = holder {
                    ce.causes.push(format!("held by {h}"));
                }
                ce.hints
                    .push("wait for it to finish, or raise --lock-timeout".into());
                ce
            }
            ExecError::Inconsistent(problems) => {
                let mut ce = CommandError::new(
                    Kind::Refused,
                    format!(
                        "the metadata does not match the schema after the migrations ({} problem(s)); the deployment was rolled back and nothing changed",
                        problems.len()
                    ),
                );
                ce.causes = problems.iter().map(|p| p.to_string()).collect();
                ce.hints
                    .push("fix the metadata (or the migrations) in a new commit".into());
                ce.hints.push(
                    "or pass --allow-inconsistent-metadata to deploy anyway, with warnings".into(),
                );
                ce
            }
            ExecError::ActionsSdl(_) => CommandError::new(
                Kind::Usage,
                format!("{e}; the deployment was rolled back and nothing changed"),
            )
            .hint("fix actions.graphql / actions.yaml in a new commit")
            .hint(
                "or deploy with --skip-hasura-catalog and apply the metadata with the Hasura CLI",
            ),
            ExecError::EndStateMismatch {
                ref expected_from,
                ref differences,
                ..
            } => {
                let mut ce = CommandError::new(
                    Kind::Refused,
                    format!("{e}; the deployment was rolled back and nothing changed"),
                );
                ce.causes.push(format!(
                    "{} object(s) differ from what {expected_from} gives (expected → now):",
                    differences.len()
                ));
                ce.causes.extend(
                    differences
                        .iter()
                        .take(40)
                        .map(|d| format!("  {}", d.against_recorded())),
                );
                if differences.len() > 40 {
                    ce.causes
                        .push(format!("  … and {} more", differences.len() - 40));
                }
                ce.hints.push("a down migration in the plan does not reverse its up (`git migrate verify` names which), or the schema was changed by hand since: pass --compute-downs=all to compute every down from the schema instead".into());
                ce.hints.push("or fix the down in a new commit and pass --down-from REV".into());
                ce.hints.push(
                    "or pass --allow-mismatch to commit anyway; the difference is recorded".into(),
                );
                ce
            }
            ExecError::Moved => CommandError::new(Kind::Refused, e.to_string())
                .hint("run the command again to see the new plan"),
            ExecError::PlanFileStale(ref moved) => {
                let mut ce = CommandError::new(
                    Kind::Refused,
                    format!("{e}: the plan file is stale, nothing was changed"),
                );
                ce.causes = moved.clone();
                ce.hint(PLAN_FILE_HINT)
            }
            ExecError::Refused(problems) => {
                CommandError::refused("the plan cannot be carried out", problems)
            }
            ExecError::Source(s) => s.into(),
            ExecError::Gather(g) => g.into(),
            ExecError::Ledger(l) => l.into(),
            ExecError::CommitUncertain(_) => CommandError::new(
                Kind::Failure,
                format!("{e}; the deployment may or may not have been committed"),
            )
            .hint("see where the database is with `git migrate status`")
            .hint("running the same command again is safe: it does nothing if the deployment committed, and redoes it if it did not"),
            ExecError::Db { .. } => {
                let mut ce = CommandError::new(Kind::Failure, format!("{e}; nothing was changed"));
                ce.causes = chain(&e);
                ce
            }
            ExecError::TransactionControl(found) => {
                let mut ce = CommandError::new(
                    Kind::Refused,
                    format!(
                        "{} statement(s) in the migrations control the transaction themselves, which would end the deployment transaction half-way; nothing was changed",
                        found.len()
                    ),
                );
                for f in &found {
                    ce.causes.push(format!(
                        "{}:{}:{}: {} (migration {})",
                        f.file, f.line, f.column, f.statement, f.label
                    ));
                }
                ce.hints.push(git_migrate_core::project::txcontrol::HINT.into());
                ce
            }
            ExecError::Interrupted(None) => {
                CommandError::new(Kind::Interrupted, "interrupted: rolled back, nothing changed")
            }
            ExecError::Interrupted(Some(state)) => {
                let mut ce = partial_error(
                    Kind::Interrupted,
                    "interrupted".into(),
                    &state,
                    vec![],
                );
                if state.dirty.is_none() {
                    ce.message = format!(
                        "interrupted: the open transaction was rolled back, but deployment #{} is partial (the steps around its no-transaction migrations committed separately)",
                        state.deployment_id
                    );
                }
                ce
            }
            ExecError::Partial { error, state } => {
                let inner = CommandError::from(*error);
                let what = inner
                    .message
                    .trim_end_matches("; the deployment was rolled back and nothing changed")
                    .trim_end_matches("; nothing was changed")
                    .to_string();
                let mut ce = partial_error(inner.kind, what, &state, inner.causes);
                if state.dirty.is_none() {
                    ce.hints.extend(inner.hints);
                }
                ce
            }
            ExecError::LockLost => CommandError::new(Kind::Failure, e.to_string())
                .hint("the open transaction was rolled back; check the connection and deploy again"),
            ExecError::LockConnection(_) => CommandError::new(Kind::Failure, format!("{e}; nothing was changed"))
                .hint("a deployment with no-transaction migrations needs a second connection to hold the deploy lock"),
        }
    }
}

/// What a migration that timed out waiting for a lock adds (issue 16): the retries, who held
/// the lock, how to end that session, and the settings.
fn lock_timeout_help(
    ce: &mut CommandError,
    blockers: &[git_migrate_core::execute::Blocker],
    lock_retries: u32,
) {
    ce.causes.push(match lock_retries {
        0 => "a statement waited longer than the lock timeout for a lock (not retried)".into(),
        1 => {
            "a statement waited longer than the lock timeout for a lock, again after 1 retry".into()
        }
        n => format!(
            "a statement waited longer than the lock timeout for a lock, again after {n} retries"
        ),
    });
    if blockers.is_empty() {
        ce.causes
            .push("the session holding the lock was not seen (it may have ended meanwhile)".into());
    }
    for b in blockers {
        ce.causes.push(format!("blocked by {b}"));
    }
    if let Some(b) = blockers.first() {
        ce.hints.push(format!(
            "end the blocking session if it should not be running: SELECT pg_terminate_backend({}); (or pg_cancel_backend), then deploy again",
            b.pid
        ));
    }
    ce.hints
        .push("or deploy again later, when it has finished".into());
    ce.hints.push("or allow a longer wait with --statement-lock-timeout SECS / --lock-retries N (policy.statement_lock_timeout, policy.lock_retries in git-migrate.yaml)".into());
}

/// A failure (or interrupt) after part of a deployment with no-transaction migrations was
/// committed: what is committed, what is dirty, and how to repair it.
fn partial_error(
    kind: Kind,
    what: String,
    state: &git_migrate_core::execute::PartialState,
    causes: Vec<String>,
) -> CommandError {
    let id = state.deployment_id;
    let mut ce = match &state.dirty {
        Some(d) => {
            let v = d.version;
            let message = if what.contains(&d.label) {
                // "up migration V_name failed"
                format!("{what} outside a transaction: it is marked dirty and deployment #{id} is partial")
            } else {
                format!(
                    "{what}: {} migration {} runs outside a transaction and did not finish; it is marked dirty and deployment #{id} is partial",
                    d.direction.as_str(),
                    d.label
                )
            };
            let mut ce = CommandError::new(kind, message);
            match d.direction {
                git_migrate_core::ledger::dirty::DirtyDirection::Up => {
                    ce.hints.push(format!("check the database: if its up.sql did complete (e.g. the index exists and is valid), record it with `git migrate repair --done {v}`"));
                    ce.hints.push(format!("if it did not, undo what it left (e.g. DROP INDEX CONCURRENTLY an INVALID index), then `git migrate repair --undone {v}`; deploy again after either"));
                }
                git_migrate_core::ledger::dirty::DirtyDirection::Down => {
                    ce.hints.push(format!("check the database: if its down.sql did complete, record the revert with `git migrate repair --done {v}`"));
                    ce.hints.push(format!("if it did not, undo what it left, then `git migrate repair --undone {v}` (it stays applied); deploy again after either"));
                }
            }
            ce
        }
        None => CommandError::new(
            kind,
            format!("{what}; deployment #{id} is partial: the steps before it committed, the rest did not run"),
        ),
    };
    ce.causes = causes;
    if !state.done.is_empty() {
        ce.causes
            .push(format!("committed: {}", state.done.join(", ")));
    }
    if state.dirty.is_none() {
        ce.hints.push(
            "fix the cause and deploy again: the committed steps are recorded in the ledger".into(),
        );
    }
    ce
}

impl From<git_migrate_core::config::ToolConfigError> for CommandError {
    fn from(e: git_migrate_core::config::ToolConfigError) -> Self {
        CommandError::new(Kind::Usage, e.to_string())
            .hint("fix git-migrate.yaml (see docs/configuration.md)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::json::{text, ErrorDoc};
    use crate::cli::ui::{register_secret, Ui};
    use git_migrate_core::execute::MigrationFailure;
    use git_migrate_core::plan::ProblemKind;
    use std::time::Duration;

    /// The lines `main` prints on stderr, and the `--json` document it prints on stdout.
    fn rendered(e: &CommandError) -> (String, String) {
        let ui = Ui {
            quiet: false,
            verbose: 0,
            color: false,
            color_err: false,
        };
        (ui.error_lines(e).join("\n"), text(&ErrorDoc::new(e)))
    }

    fn problem(message: &str, causes: &[&str], hints: &[&str]) -> Problem {
        Problem {
            kind: ProblemKind::MissingDown,
            version: Some(3),
            message: message.into(),
            causes: causes.iter().map(|c| c.to_string()).collect(),
            hints: hints.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn every_kind_exits_with_the_code_the_help_documents() {
        let help = crate::cli::command()
            .get_long_about()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for (kind, code, documented) in [
            (Kind::Findings, 1, "1 drift"),
            (Kind::Usage, 2, "2 usage or configuration error"),
            (Kind::Refused, 3, "3 plan refused"),
            (Kind::Failure, 4, "4 database or git failure"),
            (Kind::Lock, 5, "5 lock not acquired in time"),
            (Kind::Interrupted, 130, "130 interrupted"),
        ] {
            assert_eq!(kind as u8, code, "{kind:?}");
            assert!(help.contains(documented), "{documented:?} not in {help:?}");
            let (_, json) = rendered(&CommandError::new(kind, "x"));
            let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(doc["error"]["exit_code"], code, "{kind:?}");
        }
    }

    #[test]
    fn an_unknown_revision_is_a_usage_error_with_its_cause_and_a_hint() {
        let e = CommandError::from(SourceError::UnknownRevision {
            rev: "v9".into(),
            source: git2::Error::from_str("revspec 'v9' not found"),
        });
        assert_eq!(e.kind, Kind::Usage);
        assert_eq!(e.message, "unknown revision 'v9'");
        assert_eq!(e.causes, ["revspec 'v9' not found"]);
        assert!(e.hints.iter().any(|h| h.contains("git rev-parse")), "{e:?}");
        let (stderr, json) = rendered(&e);
        assert_eq!(
            stderr.lines().collect::<Vec<_>>()[..2],
            [
                "error: unknown revision 'v9'",
                "caused by: revspec 'v9' not found"
            ]
        );
        assert!(stderr.contains("hint: check the name with `git rev-parse <rev>`"));
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["error"]["exit_code"], 2);
        assert_eq!(doc["error"]["causes"][0], "revspec 'v9' not found");
        assert_eq!(
            doc["error"]["hints"],
            serde_json::to_value(&e.hints).unwrap()
        );
    }

    #[test]
    fn a_commit_missing_from_a_shallow_clone_is_a_failure_with_a_hint() {
        let e = CommandError::from(SourceError::MissingCommit {
            commit: "c1".into(),
        });
        assert_eq!(e.kind, Kind::Failure);
        assert!(
            e.hints.iter().any(|h| h.contains("fetch-depth: 0")),
            "{e:?}"
        );
    }

    #[test]
    fn a_failed_migration_names_the_file_position_and_sqlstate() {
        let failure = |direction| {
            ExecError::Migration(Box::new(MigrationFailure {
                direction,
                label: "3_c".into(),
                version: 3,
                file: "migrations/3_c/up.sql".into(),
                message: "syntax error at or near \"TABEL\"".into(),
                code: "42601".into(),
                position: Some((2, 8)),
                line_text: Some("CREATE TABEL t ();".into()),
                extra: vec!["more".into()],
                blockers: vec![],
                lock_retries: 0,
            }))
        };
        let e = CommandError::from(failure("up"));
        assert_eq!(e.kind, Kind::Failure);
        assert_eq!(
            e.message,
            "up migration 3_c failed; the deployment was rolled back and nothing changed"
        );
        assert_eq!(
            e.causes,
            [
                "migrations/3_c/up.sql:2:8: syntax error at or near \"TABEL\" (SQLSTATE 42601)",
                "  | CREATE TABEL t ();",
                "  |        ^",
                "more",
            ]
        );
        assert_eq!(e.hints.len(), 1);
        let down = CommandError::from(failure("down"));
        assert!(down.hints.iter().any(|h| h.contains("--compute-downs=all")));
    }

    #[test]
    fn a_migration_lock_timeout_exits_4_naming_the_blocker() {
        let blocker = git_migrate_core::execute::Blocker {
            pid: 4242,
            application_name: "report".into(),
            user: "app".into(),
            state: "idle in transaction".into(),
            in_transaction_secs: Some(61.0),
            query: "LOCK TABLE t".into(),
            locks: vec!["AccessExclusiveLock on t".into()],
        };
        let failure = |blockers: Vec<_>, lock_retries| {
            CommandError::from(ExecError::Migration(Box::new(MigrationFailure {
                direction: "up",
                label: "2_alter".into(),
                version: 2,
                file: "migrations/2_alter/up.sql".into(),
                message: "canceling statement due to lock timeout".into(),
                code: "55P03".into(),
                position: None,
                line_text: None,
                extra: vec![],
                blockers,
                lock_retries,
            })))
        };
        let e = failure(vec![blocker], 3);
        assert_eq!(e.kind, Kind::Failure);
        assert!(
            e.causes.iter().any(|c| c.contains("again after 3 retries")),
            "{e:?}"
        );
        assert!(
            e.causes.iter().any(|c| c.starts_with(
                "blocked by pid 4242 (report, user app, idle in transaction, in its transaction for 61.0s)"
            )),
            "{e:?}"
        );
        assert!(
            e.hints[0].contains("SELECT pg_terminate_backend(4242)"),
            "{e:?}"
        );
        assert!(e.hints.iter().any(|h| h.contains("--lock-retries")));
        assert!(!e.hints.iter().any(|h| h.contains("fix the migration")));
        let e = failure(vec![], 0);
        assert!(
            e.causes.iter().any(|c| c.contains("(not retried)")),
            "{e:?}"
        );
        assert!(e.causes.iter().any(|c| c.contains("was not seen")), "{e:?}");
        assert!(!e.hints.iter().any(|h| h.contains("pg_terminate_backend")));
    }

    #[test]
    fn a_lock_timeout_exits_5_and_an_interrupt_130() {
        let e = CommandError::from(ExecError::LockTimeout {
            timeout: Duration::from_secs(60),
            holder: None,
        });
        assert_eq!(e.kind, Kind::Lock);
        assert!(e.message.ends_with("gave up after 60s"), "{}", e.message);
        assert!(e.hints.iter().any(|h| h.contains("--lock-timeout")));
        let e = CommandError::from(ExecError::Interrupted(None));
        assert_eq!(e.kind, Kind::Interrupted);
        assert_eq!(e.message, "interrupted: rolled back, nothing changed");
    }

    #[test]
    fn a_refusal_lists_every_problem_with_its_causes_and_each_hint_once() {
        let problems = vec![
            problem(
                "cannot revert 3_c",
                &["looked in the ledger"],
                &["use --down-from"],
            ),
            problem(
                "cannot revert 2_b",
                &[],
                &["use --down-from", "or --allow-empty-down"],
            ),
        ];
        let e = CommandError::from(ExecError::Refused(problems.clone()));
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(
            e.message,
            "the plan cannot be carried out: 2 problem(s), nothing was changed"
        );
        assert_eq!(
            e.causes,
            [
                "cannot revert 3_c",
                "  looked in the ledger",
                "cannot revert 2_b"
            ]
        );
        assert_eq!(e.hints, ["use --down-from", "or --allow-empty-down"]);
        assert_eq!(e.problems, problems);
        let (_, json) = rendered(&e);
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            doc["error"]["problems"],
            serde_json::to_value(&problems).unwrap()
        );
    }

    #[test]
    fn a_moved_database_and_a_bad_tool_config_say_what_to_do() {
        let e = CommandError::from(ExecError::Moved);
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(e.hints, ["run the command again to see the new plan"]);
        let bad =
            git_migrate_core::config::ToolConfig::parse("environments: [", "git-migrate.yaml")
                .unwrap_err();
        let e = CommandError::from(bad);
        assert_eq!(e.kind, Kind::Usage);
        assert!(e.message.contains("git-migrate.yaml"), "{}", e.message);
        assert_eq!(
            e.hints,
            ["fix git-migrate.yaml (see docs/configuration.md)"]
        );
    }

    #[test]
    fn a_registered_password_never_appears_in_a_rendered_error() {
        // With a quote and a backslash, which JSON escapes: scrubbing the printed document
        // would not find them.
        let password = r#"s3"cr\et-error-test"#;
        register_secret(password);
        let url = format!("postgresql://app:{password}@db/prod");
        let mut e = CommandError::new(Kind::Failure, format!("cannot connect to {url}"))
            .cause(format!("password authentication failed for {url}"))
            .hint(format!("check PGPASSWORD={password}"));
        e.problems = vec![problem(&format!("at {url}"), &[password], &[password])];
        let (stderr, json) = rendered(&e);
        let escaped = serde_json::to_string(password).unwrap();
        let escaped = escaped.trim_matches('"');
        for shown in [&stderr, &json] {
            assert!(!shown.contains(password), "{shown}");
            assert!(!shown.contains(escaped), "{shown}");
            assert!(shown.contains("postgresql://app:***@db/prod"), "{shown}");
        }
        assert!(stderr.contains("hint: check PGPASSWORD=***"), "{stderr}");
    }
}
