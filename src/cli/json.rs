//! The JSON documents of `--json`, see docs/json.md: one type per document (and one per part),
//! built from what a command gathered by the pure functions here, and turned into text by
//! [`text`].
//!
//! Keys print in alphabetical order at every depth. The documents were `json!` literals, whose
//! objects are sorted maps (serde_json without its `preserve_order` feature), and the core's
//! types they carry (`Problem`, `Step`, `DeploymentSummary`, …) declare their fields in another
//! order; [`text`] keeps that order by going through a [`serde_json::Value`]. The types here
//! declare their fields in the order they print.
//!
//! This module uses no command module (they use it), and does no I/O; [`text`] reads the
//! process's secret registry.

use super::error::CommandError;
use git_migrate_core::check::range::RangeReport;
use git_migrate_core::check::Finding;
use git_migrate_core::config::Environment;
use git_migrate_core::hooks::{Binary, HooksReport};
use git_migrate_core::ledger::adopt;
use git_migrate_core::ledger::dirty::DirtyDirection;
use git_migrate_core::ledger::DeploymentSummary;
use git_migrate_core::metadata::consistency::Inconsistency;
use git_migrate_core::metadata::MetadataChange;
use git_migrate_core::plan::{AcceptedEdit, MetadataPlan, Mode, Plan, Problem, Step};
use git_migrate_core::project::Version;
use git_migrate_core::verify::fingerprint::Difference;
use serde::Serialize;
use std::path::Path;

/// A document as `--json` prints it: pretty, keys sorted, every registered secret scrubbed
/// from every string before it is escaped (a password holding `"` or `\` is written escaped,
/// where scrubbing the printed text would not find it).
pub(crate) fn text<T: Serialize>(doc: &T) -> String {
    let mut v = serde_json::to_value(doc).unwrap_or_default();
    git_migrate_core::db::secrets::scrub_json(&mut v);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// A version and its name: `pending` and `to_revert` of [`StatusDoc`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionName {
    /// Name.
    pub name: String,
    /// Version.
    pub version: Version,
}

impl VersionName {
    /// The versions a plan reverts (`revert`) or applies, in the plan's order.
    pub(crate) fn of_steps(steps: &[Step], revert: bool) -> Vec<VersionName> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Revert { version, name, .. } if revert => Some((*version, name)),
                Step::Apply { version, name, .. } if !revert => Some((*version, name)),
                _ => None,
            })
            .map(|(version, name)| VersionName {
                name: name.clone(),
                version,
            })
            .collect()
    }
}

/// `status --json` (docs/json.md, "`status --json`"; `environment` with `--env`, "`status
/// --env E --json`"; `migrations` with `--table`, "`status --table --json`").
#[derive(Serialize, Debug)]
pub(crate) struct StatusDoc {
    /// Applied migrations whose up file was edited since, each described in a line.
    pub accepted_edits: Vec<String>,
    /// Rows in the ledger.
    pub applied: usize,
    /// The ledger names exactly the target commit.
    pub at_target_commit: bool,
    /// The database, password redacted.
    pub database: String,
    /// The commit the database is at; `null` when none.
    pub deployed: Option<Deployed>,
    /// With `--env`: the release facts of the environment (absent without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentFacts>,
    /// A database the Hasura CLI manages and git-migrate has not adopted; else `null`.
    pub hasura: Option<Unadopted>,
    /// Nothing pending, nothing to revert, metadata equal, no problems, no schema drift.
    pub in_sync: bool,
    /// The last successful deployment; `null` when none.
    pub last_deployment: Option<DeploymentSummary>,
    /// Whether the ledger schema exists.
    pub ledger: bool,
    /// The metadata against the target's.
    pub metadata: MetadataSync,
    /// With `--table`: every version of the target or the database (absent without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<Vec<VersionRow>>,
    /// Migrations of the target not applied.
    pub pending: Vec<VersionName>,
    /// Why a deploy would be refused.
    pub problems: Vec<Problem>,
    /// The schema changed outside git-migrate since the last deployment; else `null`.
    pub schema_drift: Option<SchemaDrift>,
    /// Numbered folders that hold no up.sql or up.yaml (among those read).
    pub skipped_folders: Vec<String>,
    /// What the database is compared with.
    pub target: Target,
    /// Applied migrations not in the target.
    pub to_revert: Vec<VersionName>,
}

/// `deployed` of [`StatusDoc`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deployed {
    /// Commit id.
    pub commit: String,
    /// `v1.1.0 (ef17143e87)`.
    pub describe: String,
    /// Deployed from uncommitted files.
    pub dirty: bool,
}

/// `target` of [`StatusDoc`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Its commit; `null` for the index or the working tree.
    pub commit: Option<String>,
    /// The revision as typed.
    #[serde(rename = "ref")]
    pub reference: String,
}

/// `metadata` of [`StatusDoc`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetadataSync {
    /// What a deploy would change.
    pub changes: Vec<MetadataChange>,
    /// The live metadata is the target's.
    pub in_sync: bool,
}

/// `schema_drift` of [`StatusDoc`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaDrift {
    /// What differs from the recorded schema.
    pub objects: Vec<DriftObject>,
    /// The deployment whose schema is compared with.
    pub since_deployment: i64,
}

impl SchemaDrift {
    /// The differences from the schema deployment `since` recorded.
    pub(crate) fn new(since: i64, differences: &[Difference]) -> SchemaDrift {
        SchemaDrift {
            objects: differences
                .iter()
                .map(|d| DriftObject {
                    change: d.against_recorded(),
                    kind: d.kind.clone(),
                    name: d.name.clone(),
                })
                .collect(),
            since_deployment: since,
        }
    }
}

/// One object of [`SchemaDrift`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriftObject {
    /// How it differs, in a sentence.
    pub change: String,
    /// `table`, `column`, `index`, …
    pub kind: String,
    /// Qualified name.
    pub name: String,
}

/// `hasura` of [`StatusDoc`]: a database the Hasura CLI manages, not adopted yet (docs/json.md,
/// "`status --table --json`").
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unadopted {
    /// Always `false`.
    pub adopted: bool,
    /// What a deploy would adopt; `null` when dirty versions block it.
    pub adoption: Option<Adoption>,
    /// Versions Hasura's state lists.
    pub versions: i64,
}

impl Unadopted {
    /// The state of a database with `versions` in Hasura's state.
    pub(crate) fn new(versions: i64, adoption: Option<&adopt::Adoption>) -> Unadopted {
        Unadopted {
            adopted: false,
            adoption: adoption.map(Adoption::new),
            versions,
        }
    }
}

/// `environment` of [`StatusDoc`] with `--env E` (docs/json.md, "`status --env E --json`").
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvironmentFacts {
    /// The first tag that contains the deployed commit.
    pub contained_in: Option<String>,
    /// Commits HEAD has beyond it; `null` when HEAD does not descend from it.
    pub head_ahead_by: Option<usize>,
    /// Environment name.
    pub name: String,
    /// The newest deployment of any status.
    pub newest_deployment: Option<DeploymentSummary>,
    /// `promote_from` of git-migrate.yaml.
    pub promote_from: Option<String>,
    /// `require_tag` of git-migrate.yaml.
    pub require_tag: Option<String>,
    /// Tags at the deployed commit.
    pub tags: Vec<String>,
}

impl EnvironmentFacts {
    /// `env`'s settings with the facts read about its database.
    pub(crate) fn new(
        env: &Environment,
        tags: Vec<String>,
        contained_in: Option<String>,
        head_ahead_by: Option<usize>,
        newest_deployment: Option<DeploymentSummary>,
    ) -> EnvironmentFacts {
        EnvironmentFacts {
            contained_in,
            head_ahead_by,
            name: env.name.clone(),
            newest_deployment,
            promote_from: env.promote_from.clone(),
            require_tag: env.require_tag.clone(),
            tags,
        }
    }
}

/// One row of Hasura's `migrate status` table, with git-migrate's columns: `migrations` of
/// [`StatusDoc`] with `--table` (docs/json.md, "`status --table --json`").
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionRow {
    /// Commit it was applied from.
    pub applied_commit: Option<String>,
    /// `ok`, `changed` (up.sql differs from what ran), `unknown`, or empty when not applied.
    pub checksum: &'static str,
    /// Applied (Hasura's DATABASE STATUS).
    pub database: bool,
    /// Name.
    pub name: String,
    /// In the target (Hasura's SOURCE STATUS).
    pub source: bool,
    /// Version.
    pub version: Version,
}

/// `plan --json`, `deploy --dry-run --json`, and what `deploy`/`apply`/`metadata apply` print
/// when there is nothing to do (docs/json.md, "`plan --json`, `deploy --dry-run --json`").
#[derive(Serialize, Debug)]
pub(crate) struct PlanDoc {
    /// Edited applied migrations whose new checksum is recorded.
    pub accepted: Vec<AcceptedEdit>,
    /// What adopting a database the Hasura CLI manages will record (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adoption>,
    /// Versions whose down is captured as they are applied.
    pub capture: Vec<Version>,
    /// The database, password redacted.
    pub database: String,
    /// What the computed downs destroy.
    pub destroys: Vec<String>,
    /// The target is the index or the working tree.
    pub dirty: bool,
    /// The commit the database is at.
    pub from_commit: Option<String>,
    /// The metadata change; `null` when none.
    pub metadata: Option<MetadataPlan>,
    /// `deploy`, `rollback`, `metadata` or `apply`.
    pub mode: Mode,
    /// Versions of the steps that run outside the deployment transaction.
    pub no_transaction: Vec<Version>,
    /// Notes on the migration files.
    pub notes: Vec<String>,
    /// Reverts, newest first, then applies, oldest first.
    pub steps: Vec<PlanStep>,
    /// The revision as typed.
    pub target_ref: String,
    /// The commit the database will be at.
    pub to_commit: Option<String>,
    /// The warnings about the files read, then the plan's.
    pub warnings: Vec<String>,
}

/// One of [`PlanDoc::steps`]: the plan's step (`action` says which), and with `--sql` the SQL
/// of a revert.
#[derive(Serialize, Debug)]
pub(crate) struct PlanStep {
    /// The step.
    #[serde(flatten)]
    pub step: Step,
    /// With `--sql`, a revert's SQL (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

/// What a plan document adds to the plan.
pub(crate) struct PlanExtras {
    /// The database, password redacted.
    pub database: String,
    /// Warnings about the files read, printed before the plan's.
    pub file_warnings: Vec<String>,
    /// Versions whose step runs outside the deployment transaction.
    pub no_transaction: Vec<Version>,
    /// Notes on the migration files.
    pub notes: Vec<String>,
    /// The adoption the run records first, if any.
    pub adopt: Option<Adoption>,
    /// `--sql`: the SQL of every revert.
    pub show_sql: bool,
}

impl PlanDoc {
    /// `plan` with what the command adds to it.
    pub(crate) fn new(plan: &Plan, extras: PlanExtras) -> PlanDoc {
        let Plan {
            mode,
            target_ref,
            from_commit,
            to_commit,
            dirty,
            steps,
            metadata,
            warnings,
            accepted,
            destroys,
            capture,
        } = plan;
        PlanDoc {
            accepted: accepted.clone(),
            adopt: extras.adopt,
            capture: capture.clone(),
            database: extras.database,
            destroys: destroys.clone(),
            dirty: *dirty,
            from_commit: from_commit.clone(),
            metadata: metadata.clone(),
            mode: *mode,
            no_transaction: extras.no_transaction,
            notes: extras.notes,
            steps: steps
                .iter()
                .map(|s| PlanStep {
                    step: s.clone(),
                    sql: match s {
                        Step::Revert { sql, .. } if extras.show_sql => Some(sql.clone()),
                        _ => None,
                    },
                })
                .collect(),
            target_ref: target_ref.clone(),
            to_commit: to_commit.clone(),
            warnings: extras
                .file_warnings
                .into_iter()
                .chain(warnings.iter().cloned())
                .collect(),
        }
    }
}

/// `deploy --json`, `rollback --json`, `apply --json`, `metadata apply --json` and `promote
/// --json` after running (docs/json.md, "`deploy --json`, `rollback --json` (after running)").
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct DeployDoc {
    /// Versions applied, in order.
    pub applied: Vec<Version>,
    /// The commit the database is at now; `null` for the empty state.
    pub at: Option<String>,
    /// `null` when another deployment reached the same target while this one waited.
    pub deployment_id: Option<i64>,
    /// How many times the deployment was run again after a migration timed out waiting for
    /// a lock (issue 16).
    pub lock_retries: u32,
    /// The metadata was replaced.
    pub metadata_changed: bool,
    /// Versions reverted, in order.
    pub reverted: Vec<Version>,
    /// How long the run took.
    pub seconds: f64,
}

impl DeployDoc {
    /// The result of running `plan` (the one run under the lock).
    pub(crate) fn new(plan: &Plan, deployment_id: Option<i64>, seconds: f64) -> DeployDoc {
        DeployDoc {
            applied: plan.applied(),
            at: plan.to_commit.clone(),
            deployment_id,
            lock_retries: 0,
            metadata_changed: plan.metadata.is_some(),
            reverted: plan.reverted(),
            seconds,
        }
    }
}

/// `log --json`: the deployments, newest first; with `--env E` wrapped with the environment's
/// name (docs/json.md, "`log --json`, `log --env E --json`").
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub(crate) enum LogDoc {
    /// Without `--env`: an array.
    Deployments(Vec<LogEntry>),
    /// With `--env E`.
    Environment {
        /// The deployments.
        deployments: Vec<LogEntry>,
        /// E.
        environment: String,
    },
}

/// One deployment of [`LogDoc`], with the tags of its commits so that scripts need no git.
#[derive(Serialize, Debug)]
pub(crate) struct LogEntry {
    /// The deployment.
    #[serde(flatten)]
    pub deployment: DeploymentSummary,
    /// Tags at `from_commit`.
    pub from_tags: Vec<String>,
    /// Tags at `to_commit`.
    pub to_tags: Vec<String>,
}

impl LogDoc {
    /// `history` with the tags `tags_at` gives for each commit, wrapped with `environment`'s name
    /// when given.
    pub(crate) fn new(
        history: Vec<DeploymentSummary>,
        tags_at: impl Fn(&str) -> Vec<String>,
        environment: Option<&str>,
    ) -> LogDoc {
        let tags = |c: &Option<String>| c.as_deref().map(&tags_at).unwrap_or_default();
        let entries = history
            .into_iter()
            .map(|d| LogEntry {
                from_tags: tags(&d.from_commit),
                to_tags: tags(&d.to_commit),
                deployment: d,
            })
            .collect();
        match environment {
            Some(e) => LogDoc::Environment {
                deployments: entries,
                environment: e.to_string(),
            },
            None => LogDoc::Deployments(entries),
        }
    }
}

/// `status --all-envs --json` (docs/json.md, "`status --all-envs --json`").
#[derive(Serialize, Debug)]
pub(crate) struct AllEnvsDoc {
    /// One entry per environment, in file order.
    pub environments: Vec<EnvState>,
}

/// What one environment's database is at, as read from its ledger: an entry of [`AllEnvsDoc`],
/// and what `promote` reads of its source environment.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct EnvState {
    /// Commits HEAD has that it lacks, when HEAD descends from it.
    pub behind_head: Option<usize>,
    /// Commit its last successful deployment reached.
    pub commit: Option<String>,
    /// The first tag that contains it.
    pub contained_in: Option<String>,
    /// The database, password redacted.
    pub database: String,
    /// `git describe` of it (nearest tag before it and the distance).
    pub describe: Option<String>,
    /// Dirty (unfinished no-transaction) migrations.
    pub dirty: Vec<Version>,
    /// Why it could not be read.
    pub error: Option<String>,
    /// The newest deployment of any status.
    pub last: Option<DeploymentSummary>,
    /// Environment name.
    pub name: String,
    /// Tags pointing at that commit.
    pub tags: Vec<String>,
}

impl EnvState {
    /// An environment not read yet: its name and nothing else.
    pub(crate) fn named(name: &str) -> EnvState {
        EnvState {
            name: name.to_string(),
            database: String::new(),
            commit: None,
            tags: vec![],
            describe: None,
            contained_in: None,
            behind_head: None,
            last: None,
            dirty: vec![],
            error: None,
        }
    }
}

/// The document every command prints with `--json` when it fails, except for findings (exit
/// 1), which have their own documents (docs/json.md, "Errors").
#[derive(Serialize, Debug)]
pub(crate) struct ErrorDoc {
    /// The error.
    pub error: ErrorBody,
}

/// `error` of [`ErrorDoc`].
#[derive(Serialize, Debug)]
pub(crate) struct ErrorBody {
    /// `caused by:` lines.
    pub causes: Vec<String>,
    /// The process's exit code.
    pub exit_code: u8,
    /// `hint:` lines.
    pub hints: Vec<String>,
    /// `error:` line.
    pub message: String,
    /// The planner's problems, when it refused.
    pub problems: Vec<Problem>,
}

impl ErrorDoc {
    /// `e` as a document.
    pub(crate) fn new(e: &CommandError) -> ErrorDoc {
        ErrorDoc {
            error: ErrorBody {
                causes: e.causes.clone(),
                exit_code: e.kind as u8,
                hints: e.hints.clone(),
                message: e.message.clone(),
                problems: e.problems.clone(),
            },
        }
    }
}

/// `metadata inconsistency list --json` and `metadata inconsistency status --json`
/// (docs/json.md, "`metadata inconsistency list --json`").
#[derive(Serialize, Debug)]
pub(crate) struct InconsistencyDoc {
    /// No inconsistency.
    pub consistent: bool,
    /// Every object of the live metadata that does not match the schema.
    pub inconsistencies: Vec<Inconsistency>,
}

impl InconsistencyDoc {
    /// The document of `inconsistencies`.
    pub(crate) fn new(inconsistencies: Vec<Inconsistency>) -> InconsistencyDoc {
        InconsistencyDoc {
            consistent: inconsistencies.is_empty(),
            inconsistencies,
        }
    }
}

/// `metadata diff --json` (docs/json.md, "`metadata diff --json`").
#[derive(Serialize, Debug)]
pub(crate) struct MetadataDiffDoc {
    /// What changes from `from` to `to`.
    pub changes: Vec<MetadataChange>,
    /// `live`, or a revision's label.
    pub from: String,
    /// A revision's label.
    pub to: String,
}

/// `diff --json` (docs/json.md, "`diff --json`").
#[derive(Serialize, Debug)]
pub(crate) struct DiffDoc {
    /// Whether anything differs (the exit code is then 1).
    pub differences: bool,
    /// `live`, a revision's label, or `the working tree`.
    pub from: String,
    /// The metadata changes (absent with `--schema-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<MetadataChange>>,
    /// The schema change (absent with `--metadata-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaDiff>,
    /// As `from`.
    pub to: String,
}

/// The schema part of `diff --json`.
#[derive(Serialize, Debug)]
pub(crate) struct SchemaDiff {
    /// Each object a statement creates, alters or drops, once per action.
    pub objects: Vec<DiffObject>,
    /// The statements, in the order they run.
    pub statements: Vec<DiffStatement>,
}

/// An object of a schema diff.
#[derive(Serialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DiffObject {
    /// `create`, `alter` or `drop`.
    pub action: &'static str,
    /// `table`, `column`, `index`, …
    pub kind: &'static str,
    /// Qualified name.
    pub name: String,
}

/// A statement of a schema diff.
#[derive(Serialize, Debug)]
pub(crate) struct DiffStatement {
    /// `create`, `alter` or `drop`.
    pub action: &'static str,
    /// The data it destroys, when it does.
    pub destroys: Option<String>,
    /// The object's kind.
    pub kind: &'static str,
    /// The object's qualified name.
    pub name: String,
    /// A caveat for whoever runs it.
    pub note: Option<String>,
    /// The SQL, with its semicolon.
    pub sql: String,
}

fn action_name(a: git_migrate_core::schema::Action) -> &'static str {
    match a {
        git_migrate_core::schema::Action::Create => "create",
        git_migrate_core::schema::Action::Alter => "alter",
        git_migrate_core::schema::Action::Drop => "drop",
    }
}

impl DiffDoc {
    /// The document of a diff from `from` to `to`.
    pub(crate) fn new(
        from: &str,
        to: &str,
        statements: Option<&[git_migrate_core::schema::Statement]>,
        metadata: Option<Vec<MetadataChange>>,
    ) -> DiffDoc {
        let schema = statements.map(|st| {
            let objects: std::collections::BTreeSet<DiffObject> = st
                .iter()
                .map(|s| DiffObject {
                    action: action_name(s.action),
                    kind: s.object.kind.as_str(),
                    name: s.object.name.clone(),
                })
                .collect();
            SchemaDiff {
                objects: objects.into_iter().collect(),
                statements: st
                    .iter()
                    .map(|s| DiffStatement {
                        action: action_name(s.action),
                        destroys: s.destroys.clone(),
                        kind: s.object.kind.as_str(),
                        name: s.object.name.clone(),
                        note: s.note.clone(),
                        sql: s.to_string(),
                    })
                    .collect(),
            }
        });
        DiffDoc {
            differences: schema.as_ref().is_some_and(|s| !s.statements.is_empty())
                || metadata.as_ref().is_some_and(|m| !m.is_empty()),
            from: from.to_string(),
            metadata,
            schema,
            to: to.to_string(),
        }
    }
}

/// `create --from-live --json` / `create --from REV --json` (docs/json.md).
#[derive(Serialize, Debug)]
pub(crate) struct CreateFromDoc {
    /// down.sql's path.
    pub down: Option<String>,
    /// What the down destroys.
    pub down_destroys: Vec<String>,
    /// down.sql's text.
    pub down_sql: Option<String>,
    /// Its number of statements.
    pub down_statements: usize,
    /// The state the migration starts from.
    pub from: String,
    /// The folder.
    pub path: Option<String>,
    /// Why the round trip did not prove it (absent when it did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Whether up → down → up in a scratch database proved it.
    pub proven: bool,
    /// The state it ends in.
    pub to: String,
    /// up.sql's path.
    pub up: Option<String>,
    /// up.sql's text.
    pub up_sql: Option<String>,
    /// Its number of statements.
    pub up_statements: usize,
    /// Its version.
    pub version: Option<Version>,
    /// Whether the folder was written (not with --dry-run, nor when nothing differs).
    pub written: bool,
}

impl CreateFromDoc {
    /// Nothing differs: nothing written.
    pub(crate) fn unchanged(from: &str, to: &str) -> CreateFromDoc {
        CreateFromDoc {
            down: None,
            down_destroys: vec![],
            down_sql: None,
            down_statements: 0,
            from: from.into(),
            path: None,
            problem: None,
            proven: true,
            to: to.into(),
            up: None,
            up_sql: None,
            up_statements: 0,
            version: None,
            written: false,
        }
    }

    /// A migration written (or shown) and its proof.
    pub(crate) fn new(
        (from, to): (&str, &str),
        version: Version,
        folder: &str,
        drift: &git_migrate_core::authoring::drift::DriftMigration,
        verdict: &git_migrate_core::verify::round_trip::RoundTrip,
        written: bool,
    ) -> CreateFromDoc {
        let problem = (*verdict != git_migrate_core::verify::round_trip::RoundTrip::Reversed)
            .then(|| verdict.to_string());
        CreateFromDoc {
            down: Some(format!("{folder}/down.sql")),
            down_destroys: drift
                .down_destroys()
                .iter()
                .map(|d| d.to_string())
                .collect(),
            down_sql: Some(drift.down.clone()),
            down_statements: drift.down_statements.len(),
            from: from.into(),
            path: Some(folder.into()),
            proven: problem.is_none(),
            problem,
            to: to.into(),
            up: Some(format!("{folder}/up.sql")),
            up_sql: Some(drift.up.clone()),
            up_statements: drift.up_statements.len(),
            version: Some(version),
            written,
        }
    }
}

/// `repair --json` (docs/json.md, "`repair --json`").
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepairDoc {
    /// The change, in a sentence.
    pub change: String,
    /// The database, password redacted.
    pub database: String,
    /// The `repair` deployment recorded (absent with `--dry-run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<i64>,
    /// The direction of a dirty row (absent for a row that is not dirty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<DirtyDirection>,
    /// `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// The migration's name.
    pub name: String,
    /// `done`, `undone` or `accept`.
    pub repair: String,
    /// The migration's version.
    pub version: Version,
}

/// The adoption of a database the Hasura CLI manages: what the ledger records, with the
/// versions; `adopt` of [`PlanDoc`], `adoption` of [`Unadopted`], and [`AdoptDoc`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Adoption {
    /// Dirty versions adopted as applied (`--accept-dirty`).
    pub accepted_dirty: Vec<Version>,
    /// The Hasura database name (in [`AdoptDoc`]: the database, password redacted).
    pub database: String,
    /// Hasura's state is exactly the migrations of the revision.
    pub exact: bool,
    /// Always `false`: adopting runs no migration.
    pub executed: bool,
    /// Dirty versions dropped from Hasura's state (`--forget-dirty`).
    pub forgotten_dirty: Vec<Version>,
    /// Adopted versions the revision lacks.
    pub missing_from_revision: Vec<Version>,
    /// Always `adopt`.
    pub mode: &'static str,
    /// Versions of the revision that Hasura's state does not list.
    pub not_applied: Vec<Version>,
    /// The revision's commit.
    pub source_commit: Option<String>,
    /// The store the versions come from.
    pub store: String,
    /// The revision as typed.
    pub target_ref: String,
    /// The commit the ledger will name; `null` unless `exact`.
    pub to_commit: Option<String>,
    /// Every adopted version, ascending.
    pub versions: Vec<AdoptedVersion>,
    /// What to know before adopting.
    pub warnings: Vec<String>,
}

/// One of [`Adoption::versions`].
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdoptedVersion {
    /// The revision has its files.
    pub in_revision: bool,
    /// Name (empty when the revision lacks it).
    pub name: String,
    /// Checksum of its up.sql; `null` when the revision lacks it.
    pub up_sha256: Option<String>,
    /// Version.
    pub version: Version,
}

impl Adoption {
    /// `a` as a document part: the keys of [`adopt::Adoption::record`], the versions and the
    /// commit the ledger will name.
    pub(crate) fn new(a: &adopt::Adoption) -> Adoption {
        Adoption {
            accepted_dirty: a.accepted_dirty.clone(),
            database: a.database.clone(),
            exact: a.exact(),
            executed: false,
            forgotten_dirty: a.forgotten_dirty.clone(),
            missing_from_revision: a.missing.clone(),
            mode: "adopt",
            not_applied: a.pending.clone(),
            source_commit: a.commit.clone(),
            store: a.store.to_string(),
            target_ref: a.reference.clone(),
            to_commit: a.to_commit(),
            versions: a
                .rows
                .iter()
                .map(|r| AdoptedVersion {
                    in_revision: r.in_revision,
                    name: r.row.name.clone(),
                    up_sha256: Some(r.row.up_sha256.clone()).filter(|s| !s.is_empty()),
                    version: r.row.version,
                })
                .collect(),
            warnings: a.warnings(),
        }
    }
}

/// `adopt --json` (docs/json.md, "`adopt --json`"): the [`Adoption`], whose `database` is the
/// database's URL (password redacted) here, with `dry_run: true` or the deployment recorded.
#[derive(Serialize, Debug)]
pub(crate) struct AdoptDoc {
    /// The adoption.
    #[serde(flatten)]
    pub adoption: Adoption,
    /// The `adopt` deployment recorded (absent with `--dry-run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<i64>,
    /// `true` with `--dry-run` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

impl AdoptDoc {
    /// `a` adopted into `database` (redacted) as deployment `deployment_id`, or shown by
    /// `--dry-run` when `None`.
    pub(crate) fn new(
        a: &adopt::Adoption,
        database: String,
        deployment_id: Option<i64>,
    ) -> AdoptDoc {
        AdoptDoc {
            adoption: Adoption {
                database,
                ..Adoption::new(a)
            },
            deployment_id,
            dry_run: deployment_id.is_none().then_some(true),
        }
    }
}

/// `check --json` (docs/json.md, "`check --json`, `verify --json`"; docs/check.md).
#[derive(Serialize, Debug)]
pub(crate) struct CheckDoc {
    /// No open finding (allowed ones and notes do not count).
    pub ok: bool,
    /// One per range checked.
    pub ranges: Vec<CheckedRange>,
}

/// One of [`CheckDoc::ranges`].
#[derive(Serialize, Debug)]
pub(crate) struct CheckedRange {
    /// How many commits the range has.
    pub commits: usize,
    /// What the rules found (allowed ones carry `allowed_by`).
    pub findings: Vec<Finding>,
    /// `A..B`, `the index`, …
    pub label: String,
    /// New migrations at the tip, ascending.
    pub new_versions: Vec<Version>,
    /// Old mistakes in the files read (a YAML key written twice).
    pub notes: Vec<String>,
    /// Why nothing was checked, when nothing was.
    pub skipped: Option<String>,
    /// `Migration-Allow` trailers that could not be understood.
    pub unreadable_allowances: Vec<UnreadableAllowance>,
}

/// One of [`CheckedRange::unreadable_allowances`].
#[derive(Serialize, Debug)]
pub(crate) struct UnreadableAllowance {
    /// Where it was written.
    pub source: String,
    /// The text.
    pub text: String,
}

impl CheckDoc {
    /// The reports with their notes (`notes[i]` for `reports[i]`; missing: none).
    pub(crate) fn new(ok: bool, reports: &[RangeReport], notes: &[Vec<String>]) -> CheckDoc {
        CheckDoc {
            ok,
            ranges: reports
                .iter()
                .enumerate()
                .map(|(i, r)| CheckedRange {
                    commits: r.range.commits.len(),
                    findings: r.findings.clone(),
                    label: r.range.label.clone(),
                    new_versions: r.new_versions.clone(),
                    notes: notes.get(i).cloned().unwrap_or_default(),
                    skipped: r.skipped.clone(),
                    unreadable_allowances: r
                        .bad_allows
                        .iter()
                        .map(|b| UnreadableAllowance {
                            source: b.source.clone(),
                            text: b.text.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// `verify --json` (docs/json.md, "`check --json`, `verify --json`").
#[derive(Serialize, Debug)]
pub(crate) struct VerifyDoc {
    /// What failed.
    pub findings: Vec<Finding>,
    /// How many have no down.
    pub no_down: usize,
    /// Nothing failed.
    pub ok: bool,
    /// How many downs reversed their up.
    pub reversed: usize,
    /// The revision verified.
    pub revision: String,
    /// How long it took.
    pub seconds: f64,
    /// How many migrations were verified.
    pub verified: usize,
}

/// `hooks install --json`, `hooks uninstall --json` (docs/json.md, "`hooks install --json`,
/// `hooks uninstall --json`").
#[derive(Serialize, Debug)]
pub(crate) struct HooksDoc {
    /// How the scripts call git-migrate (install only).
    pub binary: Option<String>,
    /// `install` or `uninstall`.
    pub command: String,
    /// `core.hooksPath` as configured, when set.
    pub core_hooks_path: Option<String>,
    /// Per hook, in the order asked for.
    pub hooks: Vec<HookOutcome>,
    /// The folder the hooks are in.
    pub hooks_dir: String,
}

/// One of [`HooksDoc::hooks`].
#[derive(Serialize, Debug)]
pub(crate) struct HookOutcome {
    /// `installed`, `updated`, `unchanged`, `replaced`, `removed`, `restored`,
    /// `not-installed` or `left-foreign`.
    pub action: &'static str,
    /// The backup involved.
    pub backup: Option<String>,
    /// The command the hook runs (install only).
    pub command: Option<String>,
    /// `pre-commit`, `pre-push`, `pre-receive`.
    pub hook: &'static str,
    /// Its path.
    pub path: String,
}

impl HooksDoc {
    /// What `command` (`install` or `uninstall`) did.
    pub(crate) fn new(command: &str, report: &HooksReport) -> HooksDoc {
        let path = |p: &Path| p.display().to_string();
        HooksDoc {
            binary: report.binary.as_ref().map(Binary::display),
            command: command.to_string(),
            core_hooks_path: report.dir.hooks_path.clone(),
            hooks: report
                .outcomes
                .iter()
                .map(|o| HookOutcome {
                    action: o.action.as_str(),
                    backup: o.backup.as_deref().map(path),
                    command: o.command.clone(),
                    hook: o.hook.name(),
                    path: path(&o.path),
                })
                .collect(),
            hooks_dir: path(&report.dir.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git_migrate_core::hooks::{Action, Hook, HooksDir, Outcome};
    use git_migrate_core::ledger::cli_state::StateStore;
    use git_migrate_core::ledger::LedgerRow;
    use git_migrate_core::plan::{DownOrigin, ProblemKind};
    use git_migrate_core::verify::fingerprint::Change;
    use std::path::PathBuf;

    fn deployment(id: i64, error: Option<&str>) -> DeploymentSummary {
        DeploymentSummary {
            id,
            kind: "deploy".into(),
            target_ref: Some("v2".into()),
            from_commit: Some("c1".into()),
            to_commit: Some("c2".into()),
            started_at: "2026-01-02 03:04:05+00".into(),
            actor: Some("Jane <j@x> (role app)".into()),
            worktree_dirty: false,
            reverted: vec![],
            applied: vec![2],
            status: if error.is_some() { "failed" } else { "ok" }.into(),
            duration_ms: Some(1200),
            error: error.map(str::to_string),
        }
    }

    fn plan(sql: &str) -> Plan {
        Plan {
            mode: Mode::Deploy,
            target_ref: "v2".into(),
            from_commit: Some("c1".into()),
            to_commit: Some("c2".into()),
            dirty: false,
            steps: vec![
                Step::Revert {
                    version: 3,
                    name: "c".into(),
                    down: DownOrigin::Commit {
                        commit: "c1".into(),
                        path: "migrations/3_c/down.sql".into(),
                    },
                    down_sha256: "sha256:d3".into(),
                    noop: false,
                    sql: sql.into(),
                },
                Step::Apply {
                    version: 4,
                    name: "d".into(),
                    location: "migrations/4_d".into(),
                    up_path: "migrations/4_d/up.sql".into(),
                    up_blob: "b4".into(),
                    down: None,
                    out_of_order: None,
                },
            ],
            metadata: None,
            warnings: vec!["the plan's warning".into()],
            accepted: vec![],
            destroys: vec![],
            capture: vec![4],
        }
    }

    fn adoption() -> adopt::Adoption {
        let row = |version: Version, name: &str, up_sha256: &str| adopt::AdoptedRow {
            row: LedgerRow {
                version,
                name: name.into(),
                up_sha256: up_sha256.into(),
                up_blob: None,
                down_sha256: None,
                down_sql: None,
                down_blob: None,
                folder_tree: None,
                computed_down: None,
            },
            applied_commit: None,
            in_revision: !name.is_empty(),
        };
        adopt::Adoption {
            store: StateStore::SchemaMigrations,
            database: "default".into(),
            reference: "HEAD".into(),
            commit: Some("c2".into()),
            dirty_tree: false,
            rows: vec![row(1, "a", "sha256:a1"), row(9, "", "")],
            missing: vec![9],
            pending: vec![],
            accepted_dirty: vec![],
            forgotten_dirty: vec![],
            other_store: None,
        }
    }

    #[test]
    fn the_status_document_prints_every_key_sorted_at_every_depth_and_null_for_none() {
        let doc = StatusDoc {
            accepted_edits: vec![],
            applied: 1,
            at_target_commit: false,
            database: "postgresql://app:***@db/prod".into(),
            deployed: Some(Deployed {
                commit: "c1".into(),
                describe: "v1 (c1)".into(),
                dirty: false,
            }),
            environment: None,
            hasura: None,
            in_sync: false,
            last_deployment: Some(deployment(7, None)),
            ledger: true,
            metadata: MetadataSync {
                changes: vec![MetadataChange {
                    section: "tables".into(),
                    object: "public.t".into(),
                    change: "added",
                    details: vec![],
                }],
                in_sync: false,
            },
            migrations: None,
            pending: VersionName::of_steps(&plan("").steps, false),
            problems: vec![Problem {
                kind: ProblemKind::OutOfOrder,
                version: Some(4),
                message: "4_d is out of order".into(),
                causes: vec![],
                hints: vec!["pass --allow-out-of-order".into()],
            }],
            schema_drift: Some(SchemaDrift::new(
                7,
                &[Difference {
                    kind: "table".into(),
                    name: "public.x".into(),
                    change: Change::Extra { after: "{}".into() },
                }],
            )),
            skipped_folders: vec!["migrations/5_notes".into()],
            target: Target {
                commit: None,
                reference: "HEAD".into(),
            },
            to_revert: VersionName::of_steps(&plan("").steps, true),
        };
        assert_eq!(
            text(&doc),
            r#"{
  "accepted_edits": [],
  "applied": 1,
  "at_target_commit": false,
  "database": "postgresql://app:***@db/prod",
  "deployed": {
    "commit": "c1",
    "describe": "v1 (c1)",
    "dirty": false
  },
  "hasura": null,
  "in_sync": false,
  "last_deployment": {
    "actor": "Jane <j@x> (role app)",
    "applied": [
      2
    ],
    "duration_ms": 1200,
    "from_commit": "c1",
    "id": 7,
    "kind": "deploy",
    "reverted": [],
    "started_at": "2026-01-02 03:04:05+00",
    "status": "ok",
    "target_ref": "v2",
    "to_commit": "c2",
    "worktree_dirty": false
  },
  "ledger": true,
  "metadata": {
    "changes": [
      {
        "change": "added",
        "details": [],
        "object": "public.t",
        "section": "tables"
      }
    ],
    "in_sync": false
  },
  "pending": [
    {
      "name": "d",
      "version": 4
    }
  ],
  "problems": [
    {
      "causes": [],
      "hints": [
        "pass --allow-out-of-order"
      ],
      "kind": "out-of-order",
      "message": "4_d is out of order",
      "version": 4
    }
  ],
  "schema_drift": {
    "objects": [
      {
        "change": "table public.x is there now, not in the recorded schema",
        "kind": "table",
        "name": "public.x"
      }
    ],
    "since_deployment": 7
  },
  "skipped_folders": [
    "migrations/5_notes"
  ],
  "target": {
    "commit": null,
    "ref": "HEAD"
  },
  "to_revert": [
    {
      "name": "c",
      "version": 3
    }
  ]
}"#
        );
    }

    #[test]
    fn the_status_document_has_environment_and_migrations_only_when_asked() {
        let env = Environment {
            name: "prod".into(),
            database_url: Some("postgresql://app:pw@db/prod".into()),
            database_urls: vec![],
            database_urls_command: None,
            require_tag: Some("v*".into()),
            promote_from: None,
            confirm: true,
            forward_only: false,
        };
        let facts = EnvironmentFacts::new(&env, vec!["v1".into()], None, Some(3), None);
        assert_eq!(
            text(&facts),
            r#"{
  "contained_in": null,
  "head_ahead_by": 3,
  "name": "prod",
  "newest_deployment": null,
  "promote_from": null,
  "require_tag": "v*",
  "tags": [
    "v1"
  ]
}"#
        );
        let row = VersionRow {
            applied_commit: Some("c1".into()),
            checksum: "ok",
            database: true,
            name: "a".into(),
            source: true,
            version: 1,
        };
        let doc = |environment, migrations| StatusDoc {
            accepted_edits: vec![],
            applied: 0,
            at_target_commit: false,
            database: String::new(),
            deployed: None,
            environment,
            hasura: Some(Unadopted::new(2, None)),
            in_sync: false,
            last_deployment: None,
            ledger: false,
            metadata: MetadataSync {
                changes: vec![],
                in_sync: true,
            },
            migrations,
            pending: vec![],
            problems: vec![],
            schema_drift: None,
            skipped_folders: vec![],
            target: Target {
                commit: None,
                reference: "HEAD".into(),
            },
            to_revert: vec![],
        };
        let keys = |d: &StatusDoc| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_str(&text(d)).unwrap();
            v.as_object().unwrap().keys().cloned().collect()
        };
        let plain = doc(None, None);
        assert!(!keys(&plain).contains(&"environment".to_string()));
        assert!(!keys(&plain).contains(&"migrations".to_string()));
        assert!(text(&plain).contains(
            r#"  "hasura": {
    "adopted": false,
    "adoption": null,
    "versions": 2
  },"#
        ));
        let full = doc(Some(facts), Some(vec![row]));
        let t = text(&full);
        assert!(t.contains(r#"  "environment": {"#), "{t}");
        assert!(
            t.contains(
                r#"  "migrations": [
    {
      "applied_commit": "c1",
      "checksum": "ok",
      "database": true,
      "name": "a",
      "source": true,
      "version": 1
    }
  ],"#
            ),
            "{t}"
        );
        assert_eq!(keys(&full).len(), keys(&plain).len() + 2);
    }

    #[test]
    fn the_plan_document_adds_what_the_command_knows_to_the_plan() {
        let doc = PlanDoc::new(
            &plan("DROP TABLE c;"),
            PlanExtras {
                database: "postgresql://app:***@db/prod".into(),
                file_warnings: vec!["a file's warning".into()],
                no_transaction: vec![4],
                notes: vec!["a note".into()],
                adopt: None,
                show_sql: true,
            },
        );
        assert_eq!(
            text(&doc),
            r#"{
  "accepted": [],
  "capture": [
    4
  ],
  "database": "postgresql://app:***@db/prod",
  "destroys": [],
  "dirty": false,
  "from_commit": "c1",
  "metadata": null,
  "mode": "deploy",
  "no_transaction": [
    4
  ],
  "notes": [
    "a note"
  ],
  "steps": [
    {
      "action": "revert",
      "down": {
        "commit": "c1",
        "from": "commit",
        "path": "migrations/3_c/down.sql"
      },
      "down_sha256": "sha256:d3",
      "name": "c",
      "noop": false,
      "sql": "DROP TABLE c;",
      "version": 3
    },
    {
      "action": "apply",
      "down": null,
      "location": "migrations/4_d",
      "name": "d",
      "out_of_order": null,
      "up_blob": "b4",
      "up_path": "migrations/4_d/up.sql",
      "version": 4
    }
  ],
  "target_ref": "v2",
  "to_commit": "c2",
  "warnings": [
    "a file's warning",
    "the plan's warning"
  ]
}"#
        );
    }

    #[test]
    fn the_plan_document_carries_every_field_of_the_plan_unchanged() {
        let p = plan("DROP TABLE c;");
        let doc = PlanDoc::new(
            &p,
            PlanExtras {
                database: String::new(),
                file_warnings: vec![],
                no_transaction: vec![],
                notes: vec![],
                adopt: Some(Adoption::new(&adoption())),
                show_sql: false,
            },
        );
        let doc: serde_json::Value = serde_json::from_str(&text(&doc)).unwrap();
        let serde_json::Value::Object(plan) = serde_json::to_value(&p).unwrap() else {
            panic!("a plan is an object");
        };
        for (k, v) in &plan {
            assert_eq!(doc.get(k), Some(v), "{k}");
        }
        for k in ["adopt", "database", "no_transaction", "notes"] {
            assert!(doc.get(k).is_some(), "{k}");
        }
        assert_eq!(doc.as_object().unwrap().len(), plan.len() + 4);
        // Without --sql, no step carries its SQL.
        assert!(!doc.to_string().contains("DROP TABLE"));
    }

    #[test]
    fn the_deploy_document_writes_null_for_no_deployment_and_seconds_as_a_float() {
        let doc = DeployDoc::new(&plan(""), None, 0.31);
        assert_eq!(
            text(&doc),
            r#"{
  "applied": [
    4
  ],
  "at": "c2",
  "deployment_id": null,
  "lock_retries": 0,
  "metadata_changed": false,
  "reverted": [
    3
  ],
  "seconds": 0.31
}"#
        );
        assert!(text(&DeployDoc::new(&plan(""), Some(7), 2.0)).contains("\"deployment_id\": 7,"));
        assert!(text(&DeployDoc::new(&plan(""), Some(7), 2.0)).contains("\"seconds\": 2.0\n"));
    }

    #[test]
    fn the_log_document_is_an_array_or_wrapped_with_the_environment() {
        let tags = |c: &str| {
            if c == "c2" {
                vec!["v2".to_string()]
            } else {
                vec![]
            }
        };
        let history = vec![deployment(8, Some("boom")), deployment(7, None)];
        let all = text(&LogDoc::new(history.clone(), tags, None));
        assert_eq!(
            all,
            r#"[
  {
    "actor": "Jane <j@x> (role app)",
    "applied": [
      2
    ],
    "duration_ms": 1200,
    "error": "boom",
    "from_commit": "c1",
    "from_tags": [],
    "id": 8,
    "kind": "deploy",
    "reverted": [],
    "started_at": "2026-01-02 03:04:05+00",
    "status": "failed",
    "target_ref": "v2",
    "to_commit": "c2",
    "to_tags": [
      "v2"
    ],
    "worktree_dirty": false
  },
  {
    "actor": "Jane <j@x> (role app)",
    "applied": [
      2
    ],
    "duration_ms": 1200,
    "from_commit": "c1",
    "from_tags": [],
    "id": 7,
    "kind": "deploy",
    "reverted": [],
    "started_at": "2026-01-02 03:04:05+00",
    "status": "ok",
    "target_ref": "v2",
    "to_commit": "c2",
    "to_tags": [
      "v2"
    ],
    "worktree_dirty": false
  }
]"#
        );
        let wrapped: serde_json::Value =
            serde_json::from_str(&text(&LogDoc::new(history, tags, Some("prod")))).unwrap();
        assert_eq!(wrapped["environment"], "prod");
        assert_eq!(
            wrapped["deployments"],
            serde_json::from_str::<serde_json::Value>(&all).unwrap()
        );
        assert_eq!(wrapped.as_object().unwrap().len(), 2);
        assert_eq!(text(&LogDoc::new(vec![], tags, None)), "[]");
    }

    #[test]
    fn the_adoption_carries_every_key_the_ledger_records_with_the_same_value() {
        let a = adoption();
        let doc = serde_json::to_value(Adoption::new(&a)).unwrap();
        let serde_json::Value::Object(record) = a.record() else {
            panic!("a record is an object");
        };
        for (k, v) in &record {
            assert_eq!(doc.get(k), Some(v), "{k}");
        }
        assert_eq!(doc.as_object().unwrap().len(), record.len() + 2);
        assert_eq!(doc["to_commit"], serde_json::Value::Null);
        assert_eq!(
            doc["versions"].to_string(),
            r#"[{"in_revision":true,"name":"a","up_sha256":"sha256:a1","version":1},{"in_revision":false,"name":"","up_sha256":null,"version":9}]"#
        );
    }

    #[test]
    fn the_adopt_document_names_the_database_url_and_says_dry_run_or_the_deployment() {
        let a = adoption();
        let url = "postgresql://app:***@db/prod";
        let dry: serde_json::Value =
            serde_json::from_str(&text(&AdoptDoc::new(&a, url.into(), None))).unwrap();
        assert_eq!(dry["database"], url);
        assert_eq!(dry["dry_run"], true);
        assert!(dry.get("deployment_id").is_none());
        let done: serde_json::Value =
            serde_json::from_str(&text(&AdoptDoc::new(&a, url.into(), Some(3)))).unwrap();
        assert_eq!(done["database"], url);
        assert_eq!(done["deployment_id"], 3);
        assert!(done.get("dry_run").is_none());
        let shown = text(&AdoptDoc::new(&a, url.into(), Some(3)));
        assert!(
            shown.starts_with("{\n  \"accepted_dirty\": [],\n  \"database\": \"postgresql:"),
            "{shown}"
        );
    }

    #[test]
    fn the_error_document_nests_everything_under_error_with_the_exit_code() {
        let mut e = CommandError::new(super::super::error::Kind::Refused, "refused")
            .cause("because")
            .hint("do this");
        e.problems = vec![Problem {
            kind: ProblemKind::EmptyDown,
            version: Some(2),
            message: "empty".into(),
            causes: vec![],
            hints: vec![],
        }];
        assert_eq!(
            text(&ErrorDoc::new(&e)),
            r#"{
  "error": {
    "causes": [
      "because"
    ],
    "exit_code": 3,
    "hints": [
      "do this"
    ],
    "message": "refused",
    "problems": [
      {
        "causes": [],
        "hints": [],
        "kind": "empty-down",
        "message": "empty",
        "version": 2
      }
    ]
  }
}"#
        );
    }

    #[test]
    fn the_repair_document_names_the_direction_of_a_dirty_row_and_the_deployment_once_run() {
        let doc = |direction, deployment_id| RepairDoc {
            change: "repair --done: 5_e is recorded as applied".into(),
            database: "postgresql://app:***@db/prod".into(),
            deployment_id,
            direction,
            dry_run: deployment_id.is_none(),
            name: "e".into(),
            repair: "done".into(),
            version: 5,
        };
        assert_eq!(
            text(&doc(Some(DirtyDirection::Down), Some(9))),
            r#"{
  "change": "repair --done: 5_e is recorded as applied",
  "database": "postgresql://app:***@db/prod",
  "deployment_id": 9,
  "direction": "down",
  "dry_run": false,
  "name": "e",
  "repair": "done",
  "version": 5
}"#
        );
        assert_eq!(
            text(&doc(None, None)),
            r#"{
  "change": "repair --done: 5_e is recorded as applied",
  "database": "postgresql://app:***@db/prod",
  "dry_run": true,
  "name": "e",
  "repair": "done",
  "version": 5
}"#
        );
    }

    #[test]
    fn the_hooks_document_names_each_hook_and_what_was_done() {
        let report = HooksReport {
            dir: HooksDir {
                path: PathBuf::from("/r/.git/hooks"),
                hooks_path: None,
            },
            binary: Some(Binary::OnPath),
            outcomes: vec![Outcome {
                hook: Hook::PreCommit,
                path: PathBuf::from("/r/.git/hooks/pre-commit"),
                action: Action::Replaced,
                backup: Some(PathBuf::from("/r/.git/hooks/pre-commit.pre-git-migrate")),
                command: Some("git-migrate check --staged".into()),
            }],
        };
        assert_eq!(
            text(&HooksDoc::new("install", &report)),
            r#"{
  "binary": "git-migrate",
  "command": "install",
  "core_hooks_path": null,
  "hooks": [
    {
      "action": "replaced",
      "backup": "/r/.git/hooks/pre-commit.pre-git-migrate",
      "command": "git-migrate check --staged",
      "hook": "pre-commit",
      "path": "/r/.git/hooks/pre-commit"
    }
  ],
  "hooks_dir": "/r/.git/hooks"
}"#
        );
    }

    #[test]
    fn the_check_document_has_one_entry_per_range_with_its_notes() {
        use git_migrate_core::check::range::CheckRange;
        use git_migrate_core::check::{BadAllow, Rule};
        use git_migrate_core::source::TreeRef;
        let report = RangeReport {
            range: CheckRange {
                label: "main..HEAD".into(),
                base: None,
                tip: TreeRef::Git {
                    tree: git2::Oid::ZERO_SHA1,
                    commit: None,
                },
                commits: vec![git2::Oid::ZERO_SHA1, git2::Oid::ZERO_SHA1],
            },
            findings: vec![Finding {
                rule: Rule::MissingDown,
                commit: Some("c2".into()),
                path: "migrations/4_d".into(),
                version: Some(4),
                message: "no down".into(),
                hint: "write one".into(),
                allowed_by: None,
                line: None,
            }],
            bad_allows: vec![BadAllow {
                text: "nonsense".into(),
                source: "commit c2".into(),
            }],
            new_versions: vec![4],
            project: None,
            skipped: None,
        };
        assert_eq!(
            text(&CheckDoc::new(false, &[report], &[])),
            r#"{
  "ok": false,
  "ranges": [
    {
      "commits": 2,
      "findings": [
        {
          "allowed_by": null,
          "commit": "c2",
          "hint": "write one",
          "message": "no down",
          "path": "migrations/4_d",
          "rule": "missing-down",
          "version": 4
        }
      ],
      "label": "main..HEAD",
      "new_versions": [
        4
      ],
      "notes": [],
      "skipped": null,
      "unreadable_allowances": [
        {
          "source": "commit c2",
          "text": "nonsense"
        }
      ]
    }
  ]
}"#
        );
    }

    #[test]
    fn the_inconsistency_document_is_consistent_only_without_inconsistencies() {
        assert_eq!(
            text(&InconsistencyDoc::new(vec![])),
            "{\n  \"consistent\": true,\n  \"inconsistencies\": []\n}"
        );
        let doc = InconsistencyDoc::new(vec![Inconsistency {
            object: "table public.t".into(),
            message: "table does not exist".into(),
        }]);
        assert_eq!(
            text(&doc),
            r#"{
  "consistent": false,
  "inconsistencies": [
    {
      "message": "table does not exist",
      "object": "table public.t"
    }
  ]
}"#
        );
    }

    #[test]
    fn text_scrubs_a_registered_secret_even_where_json_escapes_it() {
        let secret = r#"pa"ss\word-json-test"#;
        super::super::ui::register_secret(secret);
        let doc = MetadataDiffDoc {
            changes: vec![],
            from: format!("live at postgresql://app:{secret}@db/prod"),
            to: "v2".into(),
        };
        let t = text(&doc);
        let escaped = serde_json::to_string(secret).unwrap();
        assert!(!t.contains(secret), "{t}");
        assert!(!t.contains(escaped.trim_matches('"')), "{t}");
        assert!(t.contains("live at postgresql://app:***@db/prod"), "{t}");
    }
}
