//! `git migrate check` (design §8): rules over the changes a range of commits (or the index)
//! makes to a project, read straight from git objects.
//!
//! [`rules`] is pure: facts in, findings out. [`range`] is the edge that turns `A..B`,
//! `--staged`, pre-push and pre-receive input into ranges and reads exactly the facts the rules
//! need, so the cost follows the changed files, not the length of the history.

pub mod range;
pub mod rules;

use crate::project::Version;
use serde::Serialize;

/// The rules, with stable ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A new migration without a non-empty down.sql.
    MissingDown,
    /// A migration that existed before the range was changed, renamed or deleted.
    EditedMigration,
    /// A new version not above the highest version at the merge base.
    OutOfOrder,
    /// Two migrations with the same version.
    DuplicateVersion,
    /// A folder or file in the migrations folder that would never run.
    BadName,
    /// A metadata file that does not parse.
    MetadataParse,
    /// A broken `!include`.
    MetadataInclude,
    /// A no-transaction migration with more than one statement.
    NoTransactionMixed,
    /// A migration that starts or ends a transaction itself (`COMMIT`, `BEGIN`, …).
    TransactionControl,
    /// A note, not a finding: a whole-file `BEGIN … COMMIT` wrapper, which runs inside the
    /// deployment transaction with the wrapper ignored.
    TransactionWrapper,
    /// `--verify`: up, down or up again failed in the scratch database.
    VerifySql,
    /// `--verify`: the down does not bring the schema back to what it was before the up.
    VerifyDown,
    /// A rule of the migration linter ([`crate::lint`]): squawk's, `down-drops-data` or
    /// `up-drops-tracked`. A warning is shown and never fails the check.
    Lint {
        /// The lint rule's id.
        id: &'static str,
        /// Whether it is configured as a warning (else an error).
        warning: bool,
    },
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 12] = [
        Rule::MissingDown,
        Rule::EditedMigration,
        Rule::OutOfOrder,
        Rule::DuplicateVersion,
        Rule::BadName,
        Rule::MetadataParse,
        Rule::MetadataInclude,
        Rule::NoTransactionMixed,
        Rule::TransactionControl,
        Rule::TransactionWrapper,
        Rule::VerifySql,
        Rule::VerifyDown,
    ];

    /// The stable id.
    pub fn id(self) -> &'static str {
        match self {
            Rule::MissingDown => "missing-down",
            Rule::EditedMigration => "edited-migration",
            Rule::OutOfOrder => "out-of-order",
            Rule::DuplicateVersion => "duplicate-version",
            Rule::BadName => "bad-name",
            Rule::MetadataParse => "metadata-parse",
            Rule::MetadataInclude => "metadata-include",
            Rule::NoTransactionMixed => "no-transaction-mixed",
            Rule::TransactionControl => "transaction-control",
            Rule::TransactionWrapper => "transaction-wrapper",
            Rule::VerifySql => "verify-sql",
            Rule::VerifyDown => "verify-down",
            Rule::Lint { id, .. } => id,
        }
    }

    /// Whether findings of this rule are notes: shown, never failing the check.
    pub fn is_note(self) -> bool {
        matches!(
            self,
            Rule::TransactionWrapper | Rule::Lint { warning: true, .. }
        )
    }

    /// Parses an id: one of [`Rule::ALL`], or a lint rule's.
    pub fn parse(id: &str) -> Option<Rule> {
        Rule::ALL
            .into_iter()
            .find(|r| r.id() == id)
            .or_else(|| crate::lint::rule_id(id).map(|id| Rule::Lint { id, warning: false }))
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which rule.
    pub rule: Rule,
    /// The commit that made the change (short id), `the index`, or `None` before attribution.
    pub commit: Option<String>,
    /// Path in the repository.
    pub path: String,
    /// The migration version, when there is one.
    pub version: Option<Version>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// When a `Migration-Allow` trailer allows it: the commit (short id) or `GIT_MIGRATE_ALLOW`.
    pub allowed_by: Option<String>,
    /// The line in `path`, when the rule points at one (lint rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Finding {
    /// The key a `Migration-Allow` trailer names: the version, else the path.
    pub fn key(&self) -> String {
        self.version
            .map(|v| v.to_string())
            .unwrap_or_else(|| self.path.clone())
    }
}

/// One `Migration-Allow: <rule> <key>…` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    /// The rule allowed.
    pub rule: Rule,
    /// Versions (or paths) it is allowed for.
    pub keys: Vec<String>,
    /// Where it was written (short commit id, or `GIT_MIGRATE_ALLOW`).
    pub source: String,
}

/// An allowance that could not be understood (reported, never silently ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadAllow {
    /// The text.
    pub text: String,
    /// Where.
    pub source: String,
}

/// Trailer key in commit messages.
pub(crate) const ALLOW_TRAILER: &str = "Migration-Allow";

/// Parses one allowance value (`missing-down 1700000000009 1700000000010`).
pub(crate) fn parse_allow(value: &str, source: &str) -> Result<Allow, BadAllow> {
    let bad = || BadAllow {
        text: value.trim().to_string(),
        source: source.to_string(),
    };
    let mut words = value.split_whitespace();
    let rule = words.next().and_then(Rule::parse).ok_or_else(bad)?;
    let keys: Vec<String> = words.map(|w| w.trim_end_matches(',').to_string()).collect();
    if keys.is_empty() {
        return Err(bad());
    }
    Ok(Allow {
        rule,
        keys,
        source: source.to_string(),
    })
}

/// Parses the `Migration-Allow` trailers of a commit message.
pub(crate) fn allows_in_message(message: &str, source: &str) -> (Vec<Allow>, Vec<BadAllow>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    // Trailers are the last paragraph of `Key: value` lines; be lenient and accept the key
    // anywhere at the start of a line, which is what people write.
    for line in message.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case(ALLOW_TRAILER) {
            match parse_allow(v, source) {
                Ok(a) => ok.push(a),
                Err(b) => bad.push(b),
            }
        }
    }
    (ok, bad)
}

/// Marks findings that an allowance covers. Returns how many stay unallowed.
pub(crate) fn apply_allows(findings: &mut [Finding], allows: &[Allow]) -> usize {
    let mut open = 0;
    for f in findings.iter_mut() {
        let key = f.key();
        if let Some(a) = allows
            .iter()
            .find(|a| a.rule.id() == f.rule.id() && a.keys.contains(&key))
        {
            f.allowed_by = Some(a.source.clone());
        } else {
            open += 1;
        }
    }
    open
}

/// The migration linter over what a plan runs (`plan`, `deploy`, `rollback`, `apply` show
/// these as warnings before anything runs; they never refuse), one line per finding:
/// `lint <rule>: <path>:<line>@<commit>: <message> (fix: <help>)`.
///
/// The ups a plan applies run in one transaction, so they are linted as one text, in order: a
/// table an earlier migration of the same deployment creates is new, and an index on it needs
/// no `CONCURRENTLY`. A no-transaction up, and each written down a plan reverts with, is linted
/// on its own.
pub fn plan_lint_warnings(
    steps: &[crate::plan::Step],
    texts: &[crate::source::StepSql],
    config: &crate::lint::LintConfig,
) -> Vec<String> {
    use crate::lint::{lint_sql, File, LintFinding, Severity};
    use crate::plan::{DownOrigin, Step};
    if !config.enabled {
        return vec![];
    }
    let line = |sql: &crate::source::StepSql, f: LintFinding, line: usize| {
        let (path, at) = match sql.file.rsplit_once(" @ ") {
            Some((p, c)) => (p, format!("@{c}")),
            None => (sql.file.as_str(), String::new()),
        };
        let kind = if f.severity == Severity::Error {
            ""
        } else {
            " (warning)"
        };
        let fix = f.help.map(|h| format!(" (fix: {h})")).unwrap_or_default();
        format!(
            "lint {}{kind}: {path}:{line}{at}: {}{fix}",
            f.rule, f.message
        )
    };
    let mut out = Vec::new();
    // The transactional ups, as one text: (first line of each, its text).
    let mut together = String::new();
    let mut starts: Vec<(usize, &crate::source::StepSql)> = Vec::new();
    for (step, sql) in steps.iter().zip(texts) {
        match step {
            Step::Apply { .. } if !sql.no_transaction => {
                starts.push((together.matches('\n').count() + 1, sql));
                together.push_str(&sql.text);
                together.push_str("\n;\n");
            }
            Step::Apply { .. } => out.extend(
                lint_sql(&sql.text, File::Up, true, config)
                    .into_iter()
                    .map(|f| {
                        let l = f.line;
                        line(sql, f, l)
                    }),
            ),
            Step::Revert {
                down: DownOrigin::Computed { .. },
                ..
            }
            | Step::Revert { noop: true, .. } => {}
            Step::Revert { .. } => out.extend(
                lint_sql(&sql.text, File::Down, sql.no_transaction, config)
                    .into_iter()
                    .map(|f| {
                        let l = f.line;
                        line(sql, f, l)
                    }),
            ),
        }
    }
    for f in lint_sql(&together, File::Up, false, config) {
        let Some((first, sql)) = starts.iter().rev().find(|(first, _)| *first <= f.line) else {
            continue;
        };
        let l = f.line - first + 1;
        out.push(line(sql, f, l));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.id()), Some(r));
        }
        assert_eq!(Rule::parse("nope"), None);
    }

    #[test]
    fn trailers() {
        let msg = "Drop the legacy table\n\nIt cannot come back.\n\nMigration-Allow: missing-down 1700000000009\nmigration-allow: edited-migration 1, 2\nMigration-Allow: bogus 3\nMigration-Allow: missing-down\n";
        let (ok, bad) = allows_in_message(msg, "abc");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].rule, Rule::MissingDown);
        assert_eq!(ok[1].keys, vec!["1", "2"]);
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn allowing() {
        let f = |rule, v| Finding {
            rule,
            commit: None,
            path: "p".into(),
            version: Some(v),
            message: String::new(),
            hint: String::new(),
            allowed_by: None,
            line: None,
        };
        let mut fs = vec![
            f(Rule::MissingDown, 9),
            f(Rule::MissingDown, 10),
            f(Rule::OutOfOrder, 9),
        ];
        let allows = vec![parse_allow("missing-down 9", "c1").unwrap()];
        assert_eq!(apply_allows(&mut fs, &allows), 2);
        assert_eq!(fs[0].allowed_by.as_deref(), Some("c1"));
        assert_eq!(fs[1].allowed_by, None);
        assert_eq!(fs[2].allowed_by, None);
    }
}
