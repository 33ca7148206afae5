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
}

impl CommandError {
    /// A new error.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
            causes: vec![],
            hints: vec![],
            problems: vec![],
        }
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
                    ..
                } = *f;
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
